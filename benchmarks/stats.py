"""Samples and their summary: n, median, p90, p99, min, max, and a throughput.

Percentiles are nearest-rank: the p-th percentile of n sorted samples is the
sample at rank ceil(p/100 * n) (1-based). It is always a measured value, never
an interpolation; with fewer than 100 samples p99 is the maximum, and with
fewer than 10 p90 is too. The median is :func:`statistics.median` (the mean of
the two middle samples when n is even).

Most rows are durations in milliseconds; a few are other quantities (memory in
MiB, CPU in µs per operation), and say so in ``unit``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Literal

import msgspec

from benchmarks.cpu import CpuPerOp


class Throughput(msgspec.Struct, frozen=True):
    """How many ``unit`` things per second (events/s, requests/s, rows/s)."""

    value: float
    unit: str


class Target(msgspec.Struct, frozen=True):
    """A bound one figure of a row must keep (issue 14's table): its median or its throughput."""

    goal: str  # the words for it
    statistic: Literal["median", "throughput"]
    bound: float
    unit: str  # the unit of the bound: the row's unit, or its throughput's
    at_least: bool = False  # True: the figure must be >= bound; False: <= bound

    def describe(self) -> str:
        """``median <= 0.5 ms``, ``throughput >= 3,000 req/s``."""
        return f"{self.statistic} {'>=' if self.at_least else '<='} {self.bound:,g} {self.unit}"


class Summary(msgspec.Struct, frozen=True):
    """One scenario's result, in ``unit`` (milliseconds unless the row says otherwise)."""

    group: str
    name: str
    n: int
    median: float
    p90: float
    p99: float
    min: float
    max: float
    unit: str = "ms"
    throughput: Throughput | None = None
    cpu: CpuPerOp | None = None
    target: Target | None = None
    holds: bool | None = None  # None: no target for this row


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
    """Summarize durations measured in seconds, as milliseconds."""
    return summarize_values(group, name, [s * 1000 for s in seconds], "ms", throughput, cpu)


def summarize_values(
    group: str,
    name: str,
    values: Sequence[float],
    unit: str,
    throughput: Throughput | None = None,
    cpu: CpuPerOp | None = None,
) -> Summary:
    """Summarize values already in ``unit`` (MiB, µs, ms)."""
    ordered = sorted(values)
    return Summary(
        group=group,
        name=name,
        n=len(ordered),
        median=statistics.median(ordered),
        p90=percentile(ordered, 90),
        p99=percentile(ordered, 99),
        min=ordered[0],
        max=ordered[-1],
        unit=unit,
        throughput=throughput,
        cpu=cpu,
    )


def aggregate(group: str, name: str, value: float, n: int, unit: str) -> Summary:
    """One figure averaged over ``n`` operations (CPU per operation): every statistic is it."""
    return Summary(group, name, n, value, value, value, value, value, unit)


def per_second(count: float, seconds: float, unit: str) -> Throughput:
    """``count`` things done in ``seconds``, as a rate."""
    return Throughput(count / seconds if seconds > 0 else math.inf, unit)
