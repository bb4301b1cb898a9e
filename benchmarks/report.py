"""Turning summaries into text: aligned tables for people, JSON for programs."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from benchmarks.cpu import CpuPerOp
from benchmarks.machine import Machine
from benchmarks.stats import Summary, Throughput
from benchmarks.targets import Verdict

PERCENTILES = "nearest-rank"

_TIMES = (
    "group", "scenario", "n", "median", "p90", "p99", "min", "max", "throughput", "target", "holds"
)  # fmt: skip
_CPU = ("group", "scenario", "this process", "daemon", "workers")
_TARGETS = ("target (issue 14)", "measured", "bound", "holds", "row")
# Left-aligned columns; the others are numbers, right-aligned.
_LEFT = {"group", "scenario", "throughput", "target", "holds", "target (issue 14)", "bound", "row"}
# Decimals shown per unit; the JSON has every digit.
_DECIMALS = {"ms": 3, "µs": 1, "MiB": 2}


class Report(msgspec.Struct, frozen=True):
    """What ``--json`` prints: the machine, the plan's name, one entry per scenario, and
    every target with its verdict."""

    machine: Machine
    plan: str
    percentiles: str
    results: list[Summary]
    targets: list[Verdict]


def format_text(report: Report) -> str:
    note = (
        f"times in ms (a scenario that names another unit is in it);"
        f" percentiles {report.percentiles}; plan {report.plan}"
    )
    parts = [format_machine(report.machine), note, "", format_times(report.results)]
    if any(summary.cpu is not None for summary in report.results):
        parts += ["", "CPU ms per operation", "", format_cpu(report.results)]
    parts += ["", "Targets", "", format_targets(report.targets)]
    return "\n".join(parts) + "\n"


def format_json(report: Report) -> str:
    return msgspec.json.format(msgspec.json.encode(report), indent=2).decode() + "\n"


def format_machine(machine: Machine) -> str:
    packages = ", ".join(f"{name} {version}" for name, version in machine.packages.items())
    return "\n".join(
        [
            f"date:     {machine.date}",
            f"machine:  {machine.cores} cores, {machine.cpu}, {machine.platform}",
            f"load:     {machine.load_before} before the run, {machine.load_after} after"
            " (1-minute load average)",
            f"vmctl:    {machine.vmctl}",
            f"python:   {machine.python}, SQLite {machine.sqlite}",
            f"packages: {packages}",
        ]
    )


def format_times(summaries: Sequence[Summary]) -> str:
    """One row per scenario: n, the time percentiles and the throughput."""
    return _table(_TIMES, [_times_row(summary) for summary in summaries])


def format_cpu(summaries: Sequence[Summary]) -> str:
    """One row per scenario that measured CPU: milliseconds per operation in each process."""
    rows = [
        (summary.group, summary.name, *_cpu_cells(summary.cpu))
        for summary in summaries
        if summary.cpu is not None
    ]
    return _table(_CPU, rows)


def format_targets(verdicts: Sequence[Verdict]) -> str:
    """One row per target: the figure its row measured, the bound, PASS or MISS."""
    rows = [
        (
            verdict.target.goal,
            "not run" if verdict.figure is None else _figure(verdict.figure, verdict.target.unit),
            verdict.target.describe(),
            _holds(verdict.holds),
            f"{verdict.group} / {verdict.scenario}",
        )
        for verdict in verdicts
    ]
    return _table(_TARGETS, rows)


def _times_row(summary: Summary) -> tuple[str, ...]:
    values = (summary.median, summary.p90, summary.p99, summary.min, summary.max)
    decimals = _DECIMALS.get(summary.unit, 3)
    return (
        summary.group,
        summary.name,
        str(summary.n),
        *(f"{value:.{decimals}f}" for value in values),
        _throughput(summary.throughput),
        "" if summary.target is None else summary.target.describe(),
        _holds(summary.holds),
    )


def _holds(holds: bool | None) -> str:
    return "" if holds is None else "PASS" if holds else "MISS"


def _figure(value: float, unit: str) -> str:
    if unit in _DECIMALS:
        return f"{value:,.{_DECIMALS[unit]}f} {unit}"
    return f"{value:,.0f} {unit}"  # a rate


def _throughput(throughput: Throughput | None) -> str:
    return "" if throughput is None else f"{throughput.value:,.0f} {throughput.unit}"


def _cpu_cells(cpu: CpuPerOp | None) -> tuple[str, str, str]:
    assert cpu is not None
    return _ms(cpu.this_process_ms), _ms(cpu.daemon_ms), _ms(cpu.workers_ms)


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Aligned columns under ``header`` and a rule; text left, numbers right."""
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = [_line(header, row, widths) for row in (header, *rows)]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _line(header: Sequence[str], row: Sequence[str], widths: Sequence[int]) -> str:
    cells = [
        cell.ljust(width) if name in _LEFT else cell.rjust(width)
        for name, cell, width in zip(header, row, widths, strict=True)
    ]
    return "  ".join(cells).rstrip()
