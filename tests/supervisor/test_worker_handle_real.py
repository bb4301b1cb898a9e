"""The worker handle with the real QuickJS worker (python -m vmctl.worker)."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from supervisor.handles import Run, decoded, repl, ticking
from vmctl.api.models import Limits
from vmctl.supervisor.config import HARD_DEADLINE_GRACE, STOP_GRACE
from vmctl.supervisor.workers import Outcome, SpawnSpec, WorkerHandle, open_worker

SLACK = 2.0  # scheduling slack on a loaded 2-core machine


@pytest.fixture
def spec(tmp_path: Path) -> SpawnSpec:
    return SpawnSpec(argv=(sys.executable, "-m", "vmctl.worker"), cwd=str(tmp_path), mem_mb=256)


def test_native_operation_ignoring_the_soft_interrupt_is_killed_at_the_hard_deadline(
    spec: SpawnSpec, run: Run
) -> None:
    # One native replaceAll runs for seconds (about 4 s here) and never reaches
    # the engine's interrupt handler: only the supervisor's kill stops it.
    limits = Limits(cpu_ms=200, wall_ms=200, mem_mb=256, max_events=100, max_output_kb=64)
    code = "'x'.repeat(4e7).replaceAll('x', 'yy').length"

    async def main() -> tuple[Outcome, WorkerHandle, float]:
        handle = await open_worker(spec)
        started = time.monotonic()
        try:
            return await handle.execute(repl(code), limits), handle, time.monotonic() - started
        finally:
            await handle.aclose()

    outcome, handle, elapsed = run(main())
    assert (outcome.status, outcome.limit, outcome.limit_value) == ("timeout", "wall_ms", 200)
    assert [e.type for e in outcome.events] == ["system"]
    assert not handle.alive
    assert handle.exit_reason == (
        "killed by signal 9 (SIGKILL) by the supervisor: hard deadline wall_ms=200 exceeded"
    )
    assert 0.2 + HARD_DEADLINE_GRACE <= elapsed < 0.2 + HARD_DEADLINE_GRACE + SLACK
    # Measured from /proc: it was busy (a waiting worker shows ~0), though a loaded machine
    # may have given it only a part of the 1.2 s.
    assert outcome.metrics.cpu_ms > 100


def test_console_flood_is_stopped_by_max_events_and_the_loop_stays_responsive(
    spec: SpawnSpec, run: Run
) -> None:
    limits = Limits(
        cpu_ms=10_000, wall_ms=10_000, mem_mb=256, max_events=20_000, max_output_kb=4096
    )

    async def main() -> tuple[Outcome, Outcome, list[float], float]:
        gaps: list[float] = []
        handle = await open_worker(spec)
        try:
            await handle.execute(repl("globalThis.before = 41"), limits)
            ticker = asyncio.create_task(ticking(gaps))
            started = time.monotonic()
            flood = await handle.execute(
                repl("for (let i = 0; ; i++) console.log('line', i)"), limits, echo="flood"
            )
            elapsed = time.monotonic() - started
            ticker.cancel()
            return flood, await handle.execute(repl("before + 1"), limits), gaps, elapsed
        finally:
            await handle.aclose()

    flood, after, gaps, elapsed = run(main())
    assert (flood.status, flood.limit, flood.limit_value) == ("error", "max_events", 20_000)
    assert [e.type for e in flood.events] == ["input_echo"] + ["console"] * 19_999 + ["system"]
    assert flood.events[1].payload == {"level": "log", "text": "line 0"}
    assert flood.events[-2].payload == {"level": "log", "text": "line 19998"}
    assert elapsed < STOP_GRACE + SLACK
    # The loop kept turning while the frames poured in: the ticker ran throughout.
    assert gaps and max(gaps) < 0.5
    # The worker obeyed the Cancel (no kill): its state is intact.
    assert after.status == "ok" and decoded(after.events[-1].payload)["json"] == 42


def test_busy_loop_is_stopped_softly_at_wall_ms_and_the_worker_stays(
    spec: SpawnSpec, run: Run
) -> None:
    limits = Limits(cpu_ms=5000, wall_ms=200, mem_mb=256, max_events=100, max_output_kb=64)

    async def main() -> tuple[Outcome, Outcome]:
        handle = await open_worker(spec)
        try:
            stopped = await handle.execute(repl("globalThis.kept = 1; while (true) {}"), limits)
            return stopped, await handle.execute(repl("kept"), limits)
        finally:
            await handle.aclose()

    stopped, after = run(main())
    assert (stopped.status, stopped.code, stopped.limit) == (
        "timeout",
        "EXECUTION_TIMEOUT",
        "wall_ms",
    )
    assert (
        stopped.events[-1].payload["message"] == "Execution stopped: wall_ms limit of 200 reached"
    )
    assert stopped.metrics.wall_ms < 200 + HARD_DEADLINE_GRACE * 1000
    assert decoded(after.events[-1].payload)["json"] == 1
