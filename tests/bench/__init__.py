"""Tests of the benchmark command (benchmarks/): it runs and prints, whatever the timings.

Named ``bench``, not ``benchmarks``: test folders are packages rooted at tests/,
and a ``benchmarks`` one would shadow the top-level package it tests.
"""
