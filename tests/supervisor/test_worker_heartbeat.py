"""The heartbeat: an idle worker answers a ping at once; a stopped one is killed."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from supervisor.handles import Run
from vmctl.supervisor.workers import SpawnSpec, WorkerHandle, open_worker


@pytest.fixture
def spec(tmp_path: Path) -> SpawnSpec:
    return SpawnSpec(argv=(sys.executable, "-m", "vmctl.worker"), cwd=str(tmp_path), mem_mb=64)


def test_an_idle_worker_answers_every_heartbeat(spec: SpawnSpec, run: Run) -> None:
    async def main() -> list[bool]:
        handle = await open_worker(spec)
        try:
            return [await handle.heartbeat(5.0) for _ in range(20)]
        finally:
            await handle.aclose()

    assert run(main()) == [True] * 20


def test_a_stopped_worker_misses_its_heartbeat_and_is_killed(spec: SpawnSpec, run: Run) -> None:
    async def main() -> tuple[bool, WorkerHandle]:
        handle = await open_worker(spec)
        try:
            os.kill(handle.pid, signal.SIGSTOP)
            answered = await handle.heartbeat(0.5)
            await handle.wait_exited()
            return answered, handle
        finally:
            await handle.aclose()

    answered, handle = run(main())
    assert answered is False
    assert not handle.alive
    assert handle.exit_reason == (
        "killed by signal 9 (SIGKILL) by the supervisor: no answer to a heartbeat within 0.5 s"
    )
