"""Workers forked by the fork server, through the worker handle: same guarantees, and a
fork server that fails only ever makes workers spawn the slow way.

Forked workers are the fork server's children; when it dies they are reparented to the
test process (a subreaper, see tests/conftest.py), whose leak check reaps them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from supervisor.handles import LIMITS, PluginSpec, Run, decoded, repl
from vmctl.supervisor.workers import (
    Launcher,
    SpawnSpec,
    WorkerHandle,
    WorkerStartError,
    open_worker,
)
from vmctl.supervisor.workers import forked as forked_module
from vmctl.supervisor.workers import forkserver as forkserver_module
from vmctl.supervisor.workers.forked import UNKNOWN_STATUS, ForkedChild
from vmctl.supervisor.workers.forkserver import (
    WORKER_ARGV,
    ForkServer,
    ForkServerError,
    open_forkserver,
)
from vmctl.supervisor.workers.spawn import worker_rlimits


@pytest.fixture
def spec(tmp_path: Path) -> SpawnSpec:
    return SpawnSpec(argv=WORKER_ARGV, cwd=str(tmp_path), mem_mb=64)


@contextlib.asynccontextmanager
async def opened_forkserver() -> AsyncIterator[ForkServer]:
    server = await open_forkserver()
    try:
        yield server
    finally:
        await server.aclose()


@contextlib.asynccontextmanager
async def opened_worker(spec: SpawnSpec, server: ForkServer) -> AsyncIterator[WorkerHandle]:
    handle = await open_worker(spec, Launcher(server))
    try:
        yield handle
    finally:
        await handle.aclose()


def parent_of(pid: int) -> int:
    return int(psutil.Process(pid).ppid())


def test_a_forked_worker_keeps_the_isolation_of_a_spawned_one(spec: SpawnSpec, run: Run) -> None:
    async def main() -> dict[str, Any]:
        async with opened_forkserver() as server, opened_worker(spec, server) as handle:
            pid = handle.pid
            process = psutil.Process(pid)
            facts = {
                "forked": process.ppid() == server.pid,
                "own group": os.getsid(pid) == pid == os.getpgid(pid),
                "cwd": process.cwd(),
                "limits": [process.rlimit(which) for which, _ in worker_rlimits(spec.mem_mb)],
                "fds": sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd")),
            }
            outcome = await handle.execute(repl("6 * 7"), LIMITS)
            await handle.aclose()
            facts["value"] = decoded(outcome.events[-1].payload)["json"]
            facts["end"] = (await handle.wait_exited(), handle.exit_reason)
            return facts

    facts = run(main())
    assert facts["forked"] and facts["own group"]
    assert facts["cwd"] == spec.cwd
    assert facts["limits"] == [(value, value) for _, value in worker_rlimits(spec.mem_mb)]
    assert facts["fds"] == [0, 1, 2, 3]  # stdio and the frame fd: nothing of the daemon's
    assert facts["value"] == 42
    assert facts["end"] == (0, "exited with code 0")


def test_a_forked_workers_death_is_reported_at_once_with_its_signal(
    spec: SpawnSpec, run: Run
) -> None:
    async def main() -> tuple[str, int, str | None]:
        async with opened_forkserver() as server, opened_worker(spec, server) as handle:
            running = asyncio.create_task(handle.execute(repl("while (true) {}"), LIMITS))
            await asyncio.sleep(0)  # one turn: the request goes out
            os.kill(handle.pid, signal.SIGSEGV)
            outcome = await running
            return outcome.status, await handle.wait_exited(), handle.exit_reason

    assert run(main()) == ("crashed", -signal.SIGSEGV, "killed by signal 11 (SIGSEGV)")


def test_a_forked_worker_that_cannot_start_fails_with_its_exit_code_and_stderr(
    spec: SpawnSpec, run: Run, tmp_path: Path
) -> None:
    missing = SpawnSpec(argv=spec.argv, cwd=str(tmp_path / "missing"), mem_mb=spec.mem_mb)

    async def main() -> tuple[str, bool]:
        async with opened_forkserver() as server:
            with pytest.raises(WorkerStartError) as failure:
                await open_worker(missing, Launcher(server))
            return str(failure.value), server.alive

    message, alive = run(main())
    assert message.startswith("worker failed to start: exited with code 127; stderr tail:")
    assert "cannot start: [Errno 2] No such file or directory" in message
    assert alive  # the worker's own failure: the fork server serves on


def test_workers_die_with_their_fork_server_and_later_ones_are_spawned(
    spec: SpawnSpec, run: Run, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> tuple[int, str | None, bool, int]:
        async with opened_forkserver() as server, opened_worker(spec, server) as handle:
            os.kill(server.pid, signal.SIGKILL)
            code = await handle.wait_exited()
            async with opened_worker(spec, server) as spawned:
                return code, handle.exit_reason, server.alive, parent_of(spawned.pid)

    code, reason, alive, parent = run(main())
    assert code == UNKNOWN_STATUS
    assert reason == "exit status unknown: its fork server was killed by signal 9"
    assert not alive and parent == os.getpid()
    assert "the fork server (pid" in caplog.text and "workers are spawned without it" in caplog.text


def test_closing_the_fork_server_kills_the_workers_it_still_has(spec: SpawnSpec, run: Run) -> None:
    async def main() -> tuple[int, str | None]:
        async with opened_forkserver() as server, opened_worker(spec, server) as handle:
            await server.aclose()
            return await handle.wait_exited(), handle.exit_reason

    assert run(main()) == (UNKNOWN_STATUS, "exit status unknown: its fork server was closed")


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        ((sys.executable, "-c", "import sys; sys.exit(3)"), "it exited with code 3"),
        (("/nonexistent/python",), "it could not be started: [Errno 2]"),
    ],
)
def test_a_fork_server_that_does_not_start_leaves_workers_spawned(
    spec: SpawnSpec,
    run: Run,
    monkeypatch: pytest.MonkeyPatch,
    argv: tuple[str, ...],
    fragment: str,
) -> None:
    monkeypatch.setattr(forkserver_module, "FORKSERVER_ARGV", argv)

    async def main() -> tuple[str, bool, int]:
        with pytest.raises(ForkServerError) as failure:
            await open_forkserver()
        server = ForkServer()
        await server.start()
        try:
            ready = await server.wait_ready()
            async with opened_worker(spec, server) as handle:
                return str(failure.value), ready, parent_of(handle.pid)
        finally:
            await server.aclose()

    message, ready, parent = run(main())
    assert message.startswith("the fork server did not start: ") and fragment in message
    assert not ready and parent == os.getpid()


def test_a_stuck_fork_server_is_killed_and_workers_are_spawned(
    spec: SpawnSpec, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(forkserver_module, "FORK_TIMEOUT", 0.3)

    async def main() -> tuple[bool, int, str | None]:
        async with opened_forkserver() as server:
            os.kill(server.pid, signal.SIGSTOP)
            async with opened_worker(spec, server) as handle:
                return server.alive, parent_of(handle.pid), server.lost_reason

    alive, parent, reason = run(main())
    assert not alive and parent == os.getpid()
    assert reason == "was killed: it did not answer a fork request within 0.3 s"


def test_a_death_the_fork_server_does_not_report_is_still_seen(
    spec: SpawnSpec, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(forked_module, "STATUS_WAIT", 0.2)

    async def main() -> tuple[int, str | None, int]:
        async with opened_forkserver() as server, opened_worker(spec, server) as handle:
            os.kill(server.pid, signal.SIGSTOP)  # it cannot reap, nor report
            os.kill(handle.pid, signal.SIGTERM)
            return await handle.wait_exited(), handle.exit_reason, handle.pid

    code, reason, pid = run(main())
    assert code == UNKNOWN_STATUS
    assert reason == (
        "exit status unknown: its fork server was killed:"
        f" it did not report the exit of worker {pid} within 0.2 s"
    )


def test_plugins_and_workers_with_their_own_variables_are_spawned(
    spec: SpawnSpec, plugin: PluginSpec, run: Run
) -> None:
    with_env = SpawnSpec(argv=spec.argv, cwd=spec.cwd, mem_mb=spec.mem_mb, env={"X": "1"})

    async def main() -> list[int]:
        async with opened_forkserver() as server:
            parents = []
            for each in (plugin("echo"), with_env):
                async with opened_worker(each, server) as handle:
                    parents.append(parent_of(handle.pid))
            return parents

    assert run(main()) == [os.getpid(), os.getpid()]


@pytest.mark.parametrize(
    "stage",
    [
        "close_child_ends",  # the request is sent
        "forked",  # the fork server answered: the worker runs
        "connect",  # its pipes are on the loop: the handle awaits its Hello
    ],
)
def test_a_start_cancelled_at_each_stage_leaves_nothing_and_the_fork_server_serves(
    spec: SpawnSpec, run: Run, monkeypatch: pytest.MonkeyPatch, stage: str
) -> None:
    cancels: list[Callable[[], object]] = []
    forked: list[int] = []
    original = getattr(ForkedChild, stage)

    def then_cancel(child: ForkedChild) -> None:
        forked.append(child.get_pid())
        if cancels:
            cancels.pop()()

    if stage == "connect":

        async def hooked_connect(child: ForkedChild) -> None:
            await original(child)
            then_cancel(child)

        monkeypatch.setattr(ForkedChild, stage, hooked_connect)
    else:

        def hooked(child: ForkedChild, *args: Any) -> None:
            original(child, *args)
            then_cancel(child)

        monkeypatch.setattr(ForkedChild, stage, hooked)

    async def main() -> bool:
        async with opened_forkserver() as server:
            starting = asyncio.create_task(open_worker(spec, Launcher(server)))
            cancels.append(starting.cancel)
            with pytest.raises(asyncio.CancelledError):
                await starting
            assert server.alive
            async with opened_worker(spec, server) as handle:
                return parent_of(handle.pid) == server.pid

    assert run(main())
    assert not cancels  # the hook ran and cancelled the first start
    if forked[0]:  # it was forked before the cancel: it is dead now (and reaped)
        with pytest.raises(psutil.NoSuchProcess):
            psutil.Process(forked[0])
