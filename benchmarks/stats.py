"""Samples and their summary: n, median, p90, p99, min, max, and a throughput.

Percentiles are nearest-rank: the p-th percentile of n sorted samples is the
sample at rank ceil(p/100 * n) (1-based). It is always a measured value, never
an interpolation; with fewer than 100 samples p99 is the maximum, and with
fewer than 10 p90 is too. The median is :func:`statistics.median` (the mean of
the two middle samples when n is even).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

import msgspec

from benchmarks.cpu import CpuPerOp


class Throughput(msgspec.Struct, frozen=True):
    """How many ``unit`` things per second (events/s, requests/s, rows/s)."""

    value: float
    unit: str


class Summary(msgspec.Struct, frozen=True):
    """One scenario's result; durations in milliseconds."""

    group: str
    name: str
    n: int
    median_ms: float
    p90_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float
    throughput: Throughput | None = None
    cpu: CpuPerOp | None = None


def percentile(ordered: Sequence[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile (0 < p <= 100) of samples sorted ascending."""
    if not ordered:
        raise ValueError("no samples")
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {p}")
    rank = math.ceil(p / 100 * len(ordered))
    return ordered[max(rank, 1) - 1]


def summarize(
    group: str,
    name: str,
    seconds: Sequence[float],
    throughput: Throughput | None = None,
    cpu: CpuPerOp | None = None,
) -> Summary:
    """Summarize durations measured in seconds."""
    ordered = sorted(s * 1000 for s in seconds)
    return Summary(
        group=group,
        name=name,
        n=len(ordered),
        median_ms=statistics.median(ordered),
        p90_ms=percentile(ordered, 90),
        p99_ms=percentile(ordered, 99),
        min_ms=ordered[0],
        max_ms=ordered[-1],
        throughput=throughput,
        cpu=cpu,
    )


def per_second(count: float, seconds: float, unit: str) -> Throughput:
    """``count`` things done in ``seconds``, as a rate."""
    return Throughput(count / seconds if seconds > 0 else math.inf, unit)
