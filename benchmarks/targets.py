"""Issue 14's targets: which row each one is about, and whether it holds.

Each target bounds one figure of one row (its median, or its throughput);
:func:`judge` marks the rows, :func:`verdicts` lists every target with its
figure, or with none when its row did not run (``--only``). A target that does
not hold is a finding, not a failure: the exit status says only whether every
scenario ran.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from benchmarks.live import FLOOD_ROW, RSS_ROW
from benchmarks.sessions import AT_ONCE_ROW, EXEC_CPU_ROW, EXEC_ROW, FIRST_RESULT_ROW, PSS_ROW
from benchmarks.stats import Summary, Target

# (group, scenario) -> the target its row answers; in the order.
TARGETS: dict[tuple[str, str], Target] = {
    ("api", EXEC_ROW): Target("exec 1+1 over HTTP, persisted, p50", "median", 0.5, "ms"),
    ("api", AT_ONCE_ROW): Target(
        "throughput, 4 sessions driven at once", "throughput", 3000, "req/s", at_least=True
    ),
    ("api", FIRST_RESULT_ROW): Target("new session -> first result, p50", "median", 3, "ms"),
    ("live", FLOOD_ROW): Target(
        "100k console lines, persisted, to the answer", "median", 250, "ms"
    ),
    ("api", PSS_ROW): Target("idle session, PSS", "median", 3, "MiB"),
    ("api", EXEC_CPU_ROW): Target("daemon CPU per HTTP exec", "median", 250, "µs"),
    ("live", RSS_ROW): Target(
        "daemon RSS after a 100k-line flood, back within 5 MiB of before", "median", 5, "MiB"
    ),
}


class Verdict(msgspec.Struct, frozen=True):
    """One target, the figure its row measured, and whether it holds (None: not measured)."""

    group: str
    scenario: str
    target: Target
    figure: float | None
    holds: bool | None


def figure(summary: Summary, target: Target) -> float:
    """The figure of ``summary`` that ``target`` bounds."""
    if target.statistic == "median":
        return summary.median
    if summary.throughput is None:
        raise ValueError(f"{summary.name!r} has no throughput for {target.goal!r}")
    return summary.throughput.value


def holds(value: float, target: Target) -> bool:
    return value >= target.bound if target.at_least else value <= target.bound


def judge(results: Sequence[Summary]) -> list[Summary]:
    """The results, each row that a target is about carrying it and whether it holds."""
    judged = []
    for summary in results:
        target = TARGETS.get((summary.group, summary.name))
        if target is not None:
            verdict = holds(figure(summary, target), target)
            summary = msgspec.structs.replace(summary, target=target, holds=verdict)
        judged.append(summary)
    return judged


def verdicts(results: Sequence[Summary]) -> list[Verdict]:
    """Every target, in the issue's order, with its row's figure if the row ran."""
    rows = {(summary.group, summary.name): summary for summary in results}
    listed = []
    for (group, scenario), target in TARGETS.items():
        summary = rows.get((group, scenario))
        value = None if summary is None else figure(summary, target)
        verdict = None if value is None else holds(value, target)
        listed.append(Verdict(group, scenario, target, value, verdict))
    return listed
