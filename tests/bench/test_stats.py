"""Nearest-rank percentiles and the summary built on them."""

from __future__ import annotations

import pytest

from benchmarks.stats import percentile, summarize


def test_nearest_rank_percentile_is_a_sample_at_rank_ceil_p_n() -> None:
    ordered = [float(value) for value in range(1, 11)]  # 1..10

    assert percentile(ordered, 50) == 5.0
    assert percentile(ordered, 90) == 9.0
    assert percentile(ordered, 91) == 10.0
    assert percentile(ordered, 100) == 10.0
    assert percentile(ordered, 1) == 1.0


def test_p99_of_fewer_than_100_samples_is_the_maximum() -> None:
    ordered = [float(value) for value in range(1, 51)]

    assert percentile(ordered, 99) == 50.0


@pytest.mark.parametrize("p", [0, -1, 100.5])
def test_a_percentile_outside_0_to_100_is_refused(p: float) -> None:
    with pytest.raises(ValueError, match="percentile"):
        percentile([1.0], p)


def test_no_samples_is_refused() -> None:
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 50)


def test_summary_is_in_milliseconds() -> None:
    summary = summarize("g", "s", [0.003, 0.001, 0.002])

    assert summary.n == 3
    assert summary.median == pytest.approx(2.0)
    assert summary.min == pytest.approx(1.0)
    assert summary.max == pytest.approx(3.0)
    assert summary.p90 == pytest.approx(3.0)
