"""vmctl's benchmarks: ``python -m benchmarks`` (``make bench``) measures and prints.

Speed lives here, not in tests: every scenario uses the real components (a
real worker through its handle, a real daemon over HTTP, the real store) with
fixed iteration counts and timeouts, and reports medians and percentiles.
docs/benchmarks.md says how to run it and what each number means.
"""
