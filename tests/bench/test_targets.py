"""Issue 14's targets: which figure each one bounds, PASS and MISS, and the rows not run."""

from __future__ import annotations

import json

import pytest

from benchmarks.machine import describe_machine
from benchmarks.report import PERCENTILES, Report, format_json, format_text
from benchmarks.stats import Summary, Target, Throughput, aggregate, summarize
from benchmarks.targets import TARGETS, figure, holds, judge, verdicts

AT_MOST = Target("latency", "median", 0.5, "ms")
AT_LEAST = Target("rate", "throughput", 3000, "req/s", at_least=True)


def _row(group: str, name: str, median_s: float, rate: float | None = None) -> Summary:
    throughput = None if rate is None else Throughput(rate, "req/s")
    return summarize(group, name, [median_s] * 3, throughput)


@pytest.mark.parametrize(
    ("value", "expected"), [(0.4, True), (0.5, True), (0.500001, False), (7.0, False)]
)
def test_an_upper_bound_holds_up_to_and_at_the_bound(value: float, expected: bool) -> None:
    assert holds(value, AT_MOST) is expected


@pytest.mark.parametrize(("value", "expected"), [(2999.9, False), (3000.0, True), (12_000.0, True)])
def test_a_lower_bound_holds_at_and_above_the_bound(value: float, expected: bool) -> None:
    assert holds(value, AT_LEAST) is expected


def test_the_figure_is_the_median_or_the_throughput_the_target_names() -> None:
    row = _row("api", "x", 0.002, rate=1234.0)

    assert figure(row, AT_MOST) == pytest.approx(2.0)
    assert figure(row, AT_LEAST) == 1234.0


def test_a_throughput_target_on_a_row_without_one_is_refused() -> None:
    with pytest.raises(ValueError, match="no throughput"):
        figure(_row("api", "x", 0.002), AT_LEAST)


def test_judge_marks_only_the_rows_a_target_is_about() -> None:
    (group, name), target = next(iter(TARGETS.items()))
    fast = _row(group, name, target.bound / 2000)  # half the bound, in seconds
    other = _row("api", "not a target row", 10.0)

    judged = judge([fast, other])

    assert judged[0].target == target
    assert judged[0].holds is True
    assert judged[1].target is None
    assert judged[1].holds is None


def test_verdicts_list_every_target_and_say_which_rows_did_not_run() -> None:
    (group, name), target = next(iter(TARGETS.items()))
    slow = _row(group, name, target.bound / 500)  # twice the bound

    listed = verdicts(judge([slow]))

    assert [(v.group, v.scenario) for v in listed] == list(TARGETS)
    assert listed[0].holds is False
    assert listed[0].figure == pytest.approx(target.bound * 2)
    assert all(v.figure is None and v.holds is None for v in listed[1:])


def test_the_issue_targets_are_all_there_with_their_bounds() -> None:
    bounds = {target.goal: (target.bound, target.unit) for target in TARGETS.values()}

    assert len(bounds) == 7
    assert bounds["exec 1+1 over HTTP, persisted, p50"] == (0.5, "ms")
    assert bounds["throughput, 4 sessions driven at once"] == (3000, "req/s")
    assert bounds["daemon CPU per HTTP exec"] == (250, "µs")
    assert bounds["idle session, PSS"] == (3, "MiB")


def _report(results: list[Summary]) -> Report:
    judged = judge(results)
    return Report(describe_machine(), "quick", PERCENTILES, judged, verdicts(judged))


def test_json_has_every_statistic_the_target_and_the_verdict_of_each_row() -> None:
    (group, name), target = next(iter(TARGETS.items()))
    rows = [_row(group, name, 0.001), aggregate("api", "cpu, µs", 800.0, 2000, "µs")]

    document = json.loads(format_json(_report(rows)))

    assert set(document) == {"machine", "plan", "percentiles", "results", "targets"}
    assert {"date", "cores", "load_before", "load_after", "vmctl"} <= set(document["machine"])
    for entry in document["results"]:
        assert {"n", "median", "p90", "p99", "min", "max", "unit", "throughput"} <= set(entry)
        assert {"target", "holds"} <= set(entry)
    first, cpu = document["results"]
    assert first["target"]["bound"] == target.bound
    assert first["holds"] is False  # 1 ms against 0.5 ms
    assert cpu["unit"] == "µs" and cpu["n"] == 2000 and cpu["p99"] == 800.0
    assert cpu["target"] is None and cpu["holds"] is None
    assert len(document["targets"]) == len(TARGETS)


def test_text_shows_pass_and_miss_beside_the_rows_and_in_the_targets_table() -> None:
    items = list(TARGETS.items())
    (group0, name0), target0 = items[0]
    (group1, name1), target1 = items[1]
    fast = _row(group0, name0, target0.bound / 2000)
    slow = _row(group1, name1, 0.001, rate=target1.bound / 2)

    text = format_text(_report([fast, slow]))

    row0 = next(line for line in text.splitlines() if line.startswith(group0) and name0 in line)
    row1 = next(line for line in text.splitlines() if line.startswith(group1) and name1 in line)
    assert row0.endswith("PASS") and target0.describe() in row0
    assert row1.endswith("MISS")
    table = text.split("\nTargets\n", 1)[1]
    assert table.count("not run") == len(TARGETS) - 2
