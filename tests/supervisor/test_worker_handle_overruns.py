"""Answers that come after cpu_ms or wall_ms, yet inside the hard deadline's grace: timeouts.

A native operation the soft interrupt cannot stop overruns its limits and may still
finish before the supervisor's kill. Its answer does not count: the execution is a
timeout naming the limit, and the worker, which survived, keeps its state.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from supervisor.handles import PluginSpec, Run, decoded, repl, types
from vmctl.api.models import Limits
from vmctl.supervisor.workers import Outcome, SpawnSpec, open_worker
from vmctl.supervisor.workers.outcome import OK, limit_reached, within_time

LIMITS = Limits(cpu_ms=300, wall_ms=400, mem_mb=64, max_events=50, max_output_kb=64)


def test_an_answer_within_both_limits_keeps_its_ending() -> None:
    assert within_time(OK, LIMITS, cpu_ms=300, wall_ms=400) is OK


@pytest.mark.parametrize(
    ("cpu_ms", "wall_ms", "named"),
    [(301, 10, "cpu_ms"), (1, 401, "wall_ms"), (900, 900, "cpu_ms")],
)
def test_an_answer_past_a_limit_is_a_timeout_naming_the_first_reached(
    cpu_ms: float, wall_ms: float, named: str
) -> None:
    ending = within_time(OK, LIMITS, cpu_ms, wall_ms)
    assert (ending.status, ending.code, ending.limit) == ("timeout", "EXECUTION_TIMEOUT", named)
    assert ending.limit_value == getattr(LIMITS, named)
    assert ending.note is not None and ending.note["limit"] == named


def test_an_ending_a_limit_gave_is_kept() -> None:
    memory = limit_reached("mem_mb", LIMITS)
    assert within_time(memory, LIMITS, cpu_ms=900, wall_ms=900) is memory


@pytest.mark.parametrize(
    ("code", "named", "kept_events"),
    [
        ("cpu", "cpu_ms", ["value", "system"]),
        ("wall", "wall_ms", ["value", "system"]),
        ("throw", "cpu_ms", ["exception", "system"]),
    ],
)
def test_a_worker_answering_past_its_limit_times_out_and_stays_up(
    plugin: PluginSpec, run: Run, code: str, named: str, kept_events: list[str]
) -> None:
    async def main() -> tuple[Outcome, Outcome, bool]:
        handle = await open_worker(plugin("overruns_its_limits"))
        try:
            late = await handle.execute(repl(code), LIMITS)
            return late, await handle.execute(repl("in time"), LIMITS), handle.alive
        finally:
            await handle.aclose()

    late, after, alive = run(main())
    assert (late.status, late.code, late.limit) == ("timeout", "EXECUTION_TIMEOUT", named)
    assert types(late) == kept_events
    message = late.events[-1].payload["message"]
    assert message.startswith(f"Execution timed out: {named} limit of {getattr(LIMITS, named)}")
    assert (late.metrics.cpu_ms if named == "cpu_ms" else late.metrics.wall_ms) > getattr(
        LIMITS, named
    )
    assert alive and after.status == "ok"


def test_a_bigint_operation_overrunning_cpu_ms_inside_the_grace_is_a_timeout(
    tmp_path: Path, run: Run
) -> None:
    # One BigInt power and toString: about 0.5 s of CPU here, in native code the
    # interrupt handler never sees, so the worker answers ok late, before the hard
    # deadline (wall_ms + 1 s). cpu_ms is 100: even on a faster machine it overruns.
    spec = SpawnSpec(argv=(sys.executable, "-m", "vmctl.worker"), cwd=str(tmp_path), mem_mb=256)
    limits = Limits(cpu_ms=100, wall_ms=3000, mem_mb=256, max_events=50, max_output_kb=64)
    code = "globalThis.kept = 1; (7n ** 150000n).toString().length"

    async def main() -> tuple[Outcome, Outcome, bool]:
        handle = await open_worker(spec)
        try:
            late = await handle.execute(repl(code), limits)
            return late, await handle.execute(repl("kept + 1"), limits), handle.alive
        finally:
            await handle.aclose()

    late, after, alive = run(main())
    assert (late.status, late.code, late.limit, late.limit_value) == (
        "timeout",
        "EXECUTION_TIMEOUT",
        "cpu_ms",
        100,
    )
    assert late.metrics.cpu_ms > 100
    # The worker was not killed: its globals are still there.
    assert alive and after.status == "ok" and after.value is not None
    assert after.value is not None and decoded(after.value)["json"] == 2
