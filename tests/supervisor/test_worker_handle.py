"""The worker handle with a well-behaved worker (plugins/echo.py): requests, limits, close."""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import uvloop

from supervisor.handles import LIMITS, PluginSpec, Run, WaitDead, decoded, repl, types
from vmctl.api.models import Limits
from vmctl.protocol import RunFile, RunStartup
from vmctl.supervisor.workers import Outcome, WorkerHandle, open_worker
from vmctl.supervisor.workers.outcome import payload_size
from vmctl.supervisor.workers.spawn import MIB, address_space_bytes


async def busy(handle: WorkerHandle, code: str) -> asyncio.Task[Outcome]:
    """Start ``code`` and return once it is in flight (one loop turn: execute sends at once)."""
    task = asyncio.create_task(handle.execute(repl(code), LIMITS))
    await asyncio.sleep(0)
    assert "busy" in repr(handle)
    return task


def test_open_worker_returns_after_hello_and_close_reaps(plugin: PluginSpec, run: Run) -> None:
    async def main() -> list[str]:
        handle = await open_worker(plugin("echo"))
        seen = [repr(handle), str(handle.alive), handle.hello.engine, str(handle.hello.pid)]
        await handle.aclose()
        return [*seen, repr(handle), str(handle.alive), str(handle.exit_reason), str(handle.pid)]

    idle, alive, engine, hello_pid, closed, alive_after, reason, pid = run(main())
    assert idle == f"<WorkerHandle pid={pid} idle>"
    assert (alive, engine, hello_pid) == ("True", "echo", pid)
    assert closed == f"<WorkerHandle pid={pid} exited with code 0>"
    assert (alive_after, reason) == ("False", "exited with code 0")


def test_execute_records_echo_events_and_value_in_order(plugin: PluginSpec, run: Run) -> None:
    async def main() -> Outcome:
        handle = await open_worker(plugin("echo"))
        try:
            return await handle.execute(repl("1+1"), LIMITS, echo="1+1")
        finally:
            await handle.aclose()

    outcome = run(main())
    assert outcome.status == "ok"
    assert [(e.type, decoded(e.payload)) for e in outcome.events] == [
        ("input_echo", {"text": "1+1"}),
        ("console", {"level": "log", "text": "1+1"}),
        ("value", {"type": "string", "preview": "1+1", "json": "1+1"}),
    ]
    assert outcome.metrics.events == 3
    assert outcome.metrics.output_bytes == sum(payload_size(e.payload) for e in outcome.events)
    assert outcome.metrics.cpu_ms == 0.1
    assert (outcome.code, outcome.message, outcome.limit, outcome.exception) == (None,) * 4


def test_run_file_and_startup_requests(plugin: PluginSpec, run: Run) -> None:
    async def main() -> tuple[Outcome, Outcome]:
        handle = await open_worker(plugin("echo"))
        try:
            file_run = await handle.execute(functools.partial(RunFile, path="a.js"), LIMITS)
            startup = await handle.execute(functools.partial(RunStartup), LIMITS)
            return file_run, startup
        finally:
            await handle.aclose()

    file_run, startup = run(main())
    assert (file_run.status, types(file_run)) == ("ok", ["console", "value"])
    assert file_run.events[0].payload == {"level": "log", "text": "a.js"}
    assert (startup.status, startup.events) == ("ok", [])


@pytest.mark.parametrize(
    ("code", "status", "error_code", "limit", "last_event"),
    [
        ("throw boom", "error", "JS_EXCEPTION", None, "exception"),
        ("fail TIMEOUT cpu_ms", "timeout", "EXECUTION_TIMEOUT", "cpu_ms", "system"),
        ("fail TIMEOUT wall_ms", "timeout", "EXECUTION_TIMEOUT", "wall_ms", "system"),
        ("fail MEMORY_LIMIT out of memory", "error", "MEMORY_LIMIT_EXCEEDED", "mem_mb", "system"),
        ("fail CANCELLED interrupted", "cancelled", "CANCELLED", None, "system"),
        ("fail FILE_NOT_FOUND no such file", "error", "FILE_NOT_FOUND", None, "system"),
        ("fail STARTUP_FAILED lib.js threw", "error", "STARTUP_FAILED", None, "system"),
    ],
)
def test_worker_error_codes_map_to_outcomes(
    plugin: PluginSpec,
    run: Run,
    code: str,
    status: str,
    error_code: str,
    limit: str | None,
    last_event: str,
) -> None:
    async def main() -> Outcome:
        handle = await open_worker(plugin("echo"))
        try:
            return await handle.execute(repl(code), LIMITS, echo=code)
        finally:
            await handle.aclose()

    outcome = run(main())
    assert (outcome.status, outcome.code, outcome.limit) == (status, error_code, limit)
    assert types(outcome) == ["input_echo", last_event]
    if limit is not None:
        assert outcome.limit_value == getattr(LIMITS, limit)
        assert outcome.events[-1].payload == {
            "level": "error",
            "message": f"Execution stopped: {limit} limit of {outcome.limit_value} reached",
            "limit": limit,
            "limit_value": outcome.limit_value,
        }
    if error_code == "JS_EXCEPTION":
        assert outcome.exception == {"message": "Error: boom", "name": "Error"}
        assert outcome.message == "Error: boom"
    else:
        assert outcome.exception is None
    if status == "error" and limit is None and error_code != "JS_EXCEPTION":
        assert outcome.events[-1].payload["code"] == error_code
        assert outcome.message == code.split(" ", 2)[2]


def test_worker_system_events_are_recorded(plugin: PluginSpec, run: Run) -> None:
    async def main() -> Outcome:
        handle = await open_worker(plugin("echo"))
        try:
            return await handle.execute(repl("system careful"), LIMITS)
        finally:
            await handle.aclose()

    outcome = run(main())
    assert (outcome.status, types(outcome)) == ("ok", ["system", "value"])
    assert outcome.events[0].payload == {"level": "warn", "message": "careful"}


def test_max_events_stops_the_run_and_the_worker_stays_usable(plugin: PluginSpec, run: Run) -> None:
    limits = Limits(2000, 5000, 64, max_events=10, max_output_kb=64)

    async def main() -> tuple[Outcome, Outcome, bool]:
        handle = await open_worker(plugin("echo"))
        try:
            stopped = await handle.execute(repl("console 1000"), limits, echo="console 1000")
            after = await handle.execute(repl("again"), limits)
            return stopped, after, handle.alive
        finally:
            await handle.aclose()

    stopped, after, alive = run(main())
    assert (stopped.status, stopped.code, stopped.limit, stopped.limit_value) == (
        "error",
        "OUTPUT_LIMIT_EXCEEDED",
        "max_events",
        10,
    )
    assert types(stopped) == ["input_echo"] + ["console"] * 9 + ["system"]
    assert stopped.events[-1].payload == {
        "level": "error",
        "message": "Execution stopped: max_events limit of 10 reached",
        "limit": "max_events",
        "limit_value": 10,
    }
    assert stopped.metrics.events == 11
    assert (after.status, alive) == ("ok", True)


@pytest.mark.parametrize(("count", "status"), [(7, "ok"), (8, "error")])
def test_max_output_kb_counts_payload_bytes_exactly(
    plugin: PluginSpec, run: Run, count: int, status: str
) -> None:
    # {"level":"log","text":"x...x"} is 25 bytes plus the text: 103 characters
    # make 128 bytes. Seven events and the value fit in 1 KiB; eight fill it
    # to the byte (still recorded) and the value then crosses it.
    limits = Limits(2000, 5000, 64, max_events=50, max_output_kb=1)

    async def main() -> Outcome:
        handle = await open_worker(plugin("echo"))
        try:
            return await handle.execute(repl(f"console {count} 103"), limits)
        finally:
            await handle.aclose()

    outcome = run(main())
    assert outcome.status == status
    assert types(outcome) == ["console"] * count + ["value" if status == "ok" else "system"]
    consoles = sum(payload_size(e.payload) for e in outcome.events if e.type == "console")
    assert consoles == 128 * count
    if status == "ok":
        assert outcome.metrics.output_bytes == consoles + payload_size(outcome.events[-1].payload)
    else:
        assert (outcome.limit, outcome.limit_value, outcome.metrics.output_bytes) == (
            "max_output_kb",
            1,
            1024,
        )


def test_oversized_echo_is_recorded_truncated_and_nothing_is_sent(
    plugin: PluginSpec, run: Run
) -> None:
    limits = Limits(2000, 5000, 64, max_events=50, max_output_kb=1)
    code = "é" * 3000

    async def main() -> tuple[Outcome, Outcome]:
        handle = await open_worker(plugin("echo"))
        try:
            refused = await handle.execute(repl(code), limits, echo=code)
            # Had the snippet been sent, its answer would now arrive for a request
            # no longer in flight: a protocol violation that kills the worker.
            after = await handle.execute(repl("next"), limits)
            return refused, after
        finally:
            await handle.aclose()

    refused, after = run(main())
    assert (refused.status, types(refused)) == ("error", ["input_echo", "system"])
    echoed = refused.events[0].payload["text"]
    assert echoed.endswith("…[truncated]") and code.startswith(echoed.removesuffix("…[truncated]"))
    assert refused.metrics.output_bytes == payload_size(refused.events[0].payload) <= 1024
    assert "by the input alone (6011 bytes)" in str(refused.message)
    assert (after.status, types(after)) == ("ok", ["console", "value"])


def test_a_second_concurrent_execute_is_refused(plugin: PluginSpec, run: Run) -> None:
    async def main() -> tuple[str, Outcome]:
        handle = await open_worker(plugin("echo"))
        try:
            first = await busy(handle, "hang")
            with pytest.raises(RuntimeError, match="one request at a time") as refused:
                await handle.execute(repl("second"), LIMITS)
            await handle.cancel()
            return str(refused.value), await first
        finally:
            await handle.aclose()

    message, first = run(main())
    assert "already running request 1" in message
    assert first.status == "cancelled"


def test_cancel_ends_the_run_as_cancelled_and_the_worker_survives(
    plugin: PluginSpec, run: Run
) -> None:
    async def main() -> tuple[Outcome, Outcome]:
        handle = await open_worker(plugin("echo"))
        try:
            task = await busy(handle, "hang")
            await handle.cancel()
            return await task, await handle.execute(repl("after"), LIMITS)
        finally:
            await handle.aclose()

    cancelled, after = run(main())
    assert (cancelled.status, cancelled.code, types(cancelled)) == (
        "cancelled",
        "CANCELLED",
        ["system"],
    )
    assert cancelled.events[0].payload["message"] == "Execution cancelled: cancel requested"
    assert after.status == "ok"


def test_cancel_with_nothing_in_flight_does_nothing(plugin: PluginSpec, run: Run) -> None:
    async def main() -> Outcome:
        handle = await open_worker(plugin("echo"))
        try:
            await handle.cancel()
            return await handle.execute(repl("fine"), LIMITS)
        finally:
            await handle.aclose()

    assert run(main()).status == "ok"


def test_close_during_a_request_ends_it_cancelled(plugin: PluginSpec, run: Run) -> None:
    async def main() -> tuple[Outcome, str | None]:
        handle = await open_worker(plugin("echo"))
        task = await busy(handle, "hang")
        await asyncio.gather(handle.aclose(), handle.aclose())  # concurrent and idempotent
        await handle.aclose()
        return await task, handle.exit_reason

    outcome, reason = run(main())
    assert (outcome.status, types(outcome)) == ("cancelled", ["system"])
    assert "the worker was closed" in outcome.events[0].payload["message"]
    assert reason == "exited with code 0"


def test_a_cancelled_caller_leaves_the_worker_idle(plugin: PluginSpec, run: Run) -> None:
    async def main() -> tuple[bool, Outcome]:
        handle = await open_worker(plugin("echo"))
        try:
            task = await busy(handle, "hang")
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # The request was stopped before the cancellation propagated.
            return handle.alive, await handle.execute(repl("after"), LIMITS)
        finally:
            await handle.aclose()

    alive, after = run(main())
    assert (alive, after.status) == (True, "ok")


def test_execute_after_exit_is_refused(plugin: PluginSpec, run: Run) -> None:
    async def main() -> None:
        handle = await open_worker(plugin("echo"))
        await handle.aclose()
        with pytest.raises(RuntimeError, match="not running"):
            await handle.execute(repl("late"), LIMITS)

    run(main())


def test_worker_runs_in_its_own_session_with_limits_and_a_minimal_env(
    plugin: PluginSpec, run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VMCTL_DAEMON_SECRET", "do-not-leak")

    async def main() -> tuple[int, dict[str, str], str, str, int, int]:
        handle = await open_worker(plugin("echo", env={"EXTRA": "1"}))
        try:
            pid = handle.pid
            process = psutil.Process(pid)
            limits = Path(f"/proc/{pid}/limits").read_text()
            return pid, process.environ(), process.cwd(), limits, os.getpgid(pid), os.getsid(pid)
        finally:
            await handle.aclose()

    pid, env, cwd, limits, pgid, sid = run(main())
    assert pgid == pid and sid == pid
    assert cwd == str(tmp_path)
    assert "VMCTL_DAEMON_SECRET" not in env
    assert env["EXTRA"] == "1" and env["HOME"] == str(tmp_path) and env["PYTHONSAFEPATH"] == "1"
    assert env["LC_ALL"] == "C.UTF-8"
    rows = {line[:26].strip(): line[26:].split() for line in limits.splitlines()[1:]}
    assert rows["Max address space"][:2] == [str(address_space_bytes(64))] * 2
    assert address_space_bytes(64) == 640 * MIB
    assert rows["Max open files"][:2] == ["256", "256"]
    assert rows["Max file size"][:2] == [str(64 * MIB)] * 2
    assert rows["Max core file size"][:2] == ["0", "0"]


_ORPHAN_DRIVER = """
import asyncio, sys
from vmctl.supervisor.workers import SpawnSpec, open_worker

async def main():
    handle = await open_worker(SpawnSpec(argv=(sys.executable, sys.argv[1]), cwd=".", mem_mb=64))
    print(handle.pid, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def test_worker_dies_with_its_supervisor(plugin: PluginSpec, wait_dead: WaitDead) -> None:
    echo = plugin("echo").argv[1]
    with subprocess.Popen(
        [sys.executable, "-c", _ORPHAN_DRIVER, echo], stdout=subprocess.PIPE, text=True
    ) as driver:
        try:
            assert driver.stdout is not None
            worker = int(driver.stdout.readline())
        finally:
            driver.kill()
    wait_dead(worker)  # by its parent-death signal: nobody else signals it


def test_worker_works_under_uvloop(plugin: PluginSpec) -> None:
    uvloop = pytest.importorskip("uvloop")

    async def main() -> tuple[Outcome, Outcome, str | None]:
        handle = await open_worker(plugin("echo"))
        ok = await handle.execute(repl("hi"), LIMITS)
        task = await busy(handle, "hang")
        await handle.aclose()
        return ok, await task, handle.exit_reason

    started = time.monotonic()
    ok, closed, reason = uvloop.run(main())
    assert (ok.status, closed.status, reason) == ("ok", "cancelled", "exited with code 0")
    assert time.monotonic() - started < 5


def test_a_spawned_worker_inherits_only_its_pipes_under_uvloop(
    plugin: PluginSpec, tmp_path: Path
) -> None:
    # The daemon runs on uvloop, whose subprocess_exec ignores close_fds.
    spec = plugin("echo")
    leaky = open(tmp_path / "held-by-the-daemon", "w")  # noqa: SIM115
    listener = socket.create_server(("127.0.0.1", 0))

    async def worker_fds() -> list[int]:
        handle = await open_worker(spec)
        try:
            return sorted(int(fd) for fd in os.listdir(f"/proc/{handle.pid}/fd"))
        finally:
            await handle.aclose()

    try:
        assert uvloop.run(asyncio.wait_for(worker_fds(), 30)) == [0, 1, 2]
    finally:
        leaky.close()
        listener.close()
