"""The worker handle against misbehaving workers (testdata/plugins/): it fails fast, kills, reaps.

Each test bounds the elapsed time; the autouse fixture of tests/conftest.py
fails any test that leaves a process of the worker (grandchildren included).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from supervisor.handles import LIMITS, PluginSpec, Run, WaitDead, repl, ticking, types
from vmctl.api.models import Limits
from vmctl.protocol import MAX_LINE_BYTES
from vmctl.supervisor.config import (
    ASK_GRACE,
    DRAIN_GRACE,
    HARD_DEADLINE_GRACE,
    STOP_GRACE,
    TERM_GRACE,
)
from vmctl.supervisor.workers import (
    Outcome,
    SpawnSpec,
    WorkerHandle,
    WorkerStartError,
    open_worker,
)

# Startup of a Python fixture worker plus scheduling slack on a loaded 2-core machine.
SLACK = 2.0


class Timed:
    """Elapsed wall time of a block."""

    def __enter__(self) -> Timed:
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.elapsed = time.monotonic() - self.started


async def execute_once(
    spec: SpawnSpec, code: str = "x", limits: Limits = LIMITS, echo: str | None = None
) -> tuple[Outcome, WorkerHandle]:
    handle = await open_worker(spec)
    try:
        return await handle.execute(repl(code), limits, echo), handle
    finally:
        await handle.aclose()


def start_failure(run: Run, spec: SpawnSpec) -> tuple[str, float]:
    async def main() -> None:
        await open_worker(spec)

    with Timed() as timed, pytest.raises(WorkerStartError) as failure:
        run(main())
    return str(failure.value), timed.elapsed


# -- before the handshake -----------------------------------------------------


def test_never_handshakes_fails_at_the_handshake_timeout(plugin: PluginSpec, run: Run) -> None:
    message, elapsed = start_failure(run, plugin("never_handshakes", handshake_timeout=0.5))
    assert message.startswith("worker failed to start: killed by signal 9 (SIGKILL) by the")
    assert "no handshake within 0.5 s" in message
    assert "never_handshakes: loading forever" in message
    assert elapsed < 0.5 + SLACK


def test_exits_before_handshake_fails_at_once_with_code_and_stderr(
    plugin: PluginSpec, run: Run
) -> None:
    message, elapsed = start_failure(run, plugin("exits_before_handshake"))
    assert message.startswith("worker failed to start: exited with code 3; stderr tail:")
    assert "fatal: the engine could not be loaded" in message
    assert elapsed < SLACK  # not the 10 s handshake timeout


def test_wrong_protocol_version_is_refused(plugin: PluginSpec, run: Run) -> None:
    message, elapsed = start_failure(run, plugin("wrong_protocol_version"))
    assert "protocol violation: the worker speaks protocol version 2, not 1" in message
    assert elapsed < SLACK


def test_noise_before_handshake_is_refused(plugin: PluginSpec, run: Run) -> None:
    message, elapsed = start_failure(run, plugin("noise_before_handshake"))
    assert "by the supervisor: protocol violation: bad reply frame" in message
    assert elapsed < SLACK


def test_unstartable_command_fails_with_the_os_error(plugin: PluginSpec, run: Run) -> None:
    spec = plugin("echo")
    message, _ = start_failure(run, SpawnSpec(("/nonexistent/worker",), spec.cwd, spec.mem_mb))
    assert message.startswith("could not start the worker '/nonexistent/worker': [Errno 2]")


def test_cancelled_start_cleans_up_and_propagates(plugin: PluginSpec, run: Run) -> None:
    async def main() -> None:
        async with asyncio.timeout(0.3):  # cancels open_worker while it waits for the Hello
            await open_worker(plugin("never_handshakes"))

    with Timed() as timed, pytest.raises(TimeoutError):
        run(main())
    assert timed.elapsed < 0.3 + SLACK


# -- during a request ---------------------------------------------------------


def test_noise_after_handshake_kills_the_worker(plugin: PluginSpec, run: Run) -> None:
    with Timed() as timed:
        outcome, handle = run(execute_once(plugin("noise_after_handshake")))
    assert (outcome.status, outcome.code, types(outcome)) == (
        "crashed",
        "WORKER_CRASHED",
        ["system"],
    )
    assert str(handle.exit_reason).startswith(
        "killed by signal 9 (SIGKILL) by the supervisor: protocol violation: bad reply frame"
    )
    assert outcome.message == f"worker {handle.exit_reason}"
    assert outcome.events[0].payload == {
        "level": "error",
        "message": f"Worker crashed: {handle.exit_reason}",
    }
    assert timed.elapsed < SLACK


def test_hanging_request_is_killed_at_the_hard_deadline(plugin: PluginSpec, run: Run) -> None:
    limits = Limits(cpu_ms=100, wall_ms=200, mem_mb=64, max_events=50, max_output_kb=64)

    async def main() -> tuple[Outcome, WorkerHandle, float]:
        handle = await open_worker(plugin("hangs_on_request"))
        with Timed() as timed:
            outcome = await handle.execute(repl(), limits)
        await handle.aclose()
        return outcome, handle, timed.elapsed

    outcome, handle, elapsed = run(main())
    assert (outcome.status, outcome.code, outcome.limit, outcome.limit_value) == (
        "timeout",
        "EXECUTION_TIMEOUT",
        "wall_ms",
        200,
    )
    assert types(outcome) == ["system"]
    assert "did not stop within 1 s and was killed" in str(outcome.message)
    assert handle.exit_reason == (
        "killed by signal 9 (SIGKILL) by the supervisor: hard deadline wall_ms=200 exceeded"
    )
    assert 0.2 + HARD_DEADLINE_GRACE <= elapsed < 0.2 + HARD_DEADLINE_GRACE + SLACK
    assert outcome.metrics.wall_ms >= 1200


def test_answer_after_the_deadline_is_not_waited_for(plugin: PluginSpec, run: Run) -> None:
    limits = Limits(cpu_ms=300, wall_ms=300, mem_mb=64, max_events=50, max_output_kb=64)
    with Timed() as timed:
        outcome, handle = run(execute_once(plugin("answers_after_deadline"), limits=limits))
    assert (outcome.status, outcome.limit) == ("timeout", "wall_ms")
    assert "hard deadline wall_ms=300 exceeded" in str(handle.exit_reason)
    assert timed.elapsed < 0.3 + HARD_DEADLINE_GRACE + SLACK  # the answer was 5 s away


def test_cancel_of_a_hanging_request_kills_after_the_grace(plugin: PluginSpec, run: Run) -> None:
    async def main() -> tuple[Outcome, WorkerHandle, float]:
        handle = await open_worker(plugin("hangs_on_request"))
        task = asyncio.create_task(handle.execute(repl(), LIMITS))
        await asyncio.sleep(0)  # one loop turn: the request is in flight
        with Timed() as timed:
            await handle.cancel()
            outcome = await task
        await handle.aclose()
        return outcome, handle, timed.elapsed

    outcome, handle, elapsed = run(main())
    assert (outcome.status, types(outcome)) == ("cancelled", ["system"])
    assert handle.exit_reason == (
        "killed by signal 9 (SIGKILL) by the supervisor: request 1 did not stop within 1 s"
        " of its cancel"
    )
    assert STOP_GRACE <= elapsed < STOP_GRACE + SLACK


def test_dies_mid_request_is_a_crash_with_its_events_and_stderr(
    plugin: PluginSpec, run: Run
) -> None:
    with Timed() as timed:
        outcome, handle = run(execute_once(plugin("dies_mid_request"), echo="go"))
    assert outcome.status == "crashed"
    assert types(outcome) == ["input_echo", "console", "console", "system"]
    assert [e.payload.get("text") for e in outcome.events[1:3]] == ["first", "second"]
    assert handle.exit_reason == "killed by signal 11 (SIGSEGV)"
    assert str(outcome.message).startswith("worker killed by signal 11 (SIGSEGV); stderr tail:")
    assert "dies_mid_request: about to crash" in str(outcome.message)
    assert outcome.metrics.events == 4
    assert timed.elapsed < SLACK


def test_exit_while_idle_is_seen_by_a_watcher(plugin: PluginSpec, run: Run) -> None:
    async def main() -> tuple[int, WorkerHandle]:
        handle = await open_worker(plugin("exits_while_idle"))
        watcher = asyncio.create_task(handle.wait_exited())
        os.kill(handle.pid, signal.SIGUSR1)
        returncode = await watcher
        with pytest.raises(RuntimeError, match="not running"):
            await handle.execute(repl(), LIMITS)
        await handle.aclose()  # a no-op now
        return returncode, handle

    with Timed() as timed:
        returncode, handle = run(main())
    assert (returncode, handle.exit_reason, handle.alive) == (4, "exited with code 4", False)
    assert repr(handle) == f"<WorkerHandle pid={handle.pid} exited with code 4>"
    assert "exits_while_idle: leaving" in handle.stderr_tail()
    assert timed.elapsed < SLACK


def test_event_flood_is_cut_at_max_events_and_the_loop_stays_responsive(
    plugin: PluginSpec, run: Run
) -> None:
    limits = Limits(cpu_ms=10_000, wall_ms=10_000, mem_mb=64, max_events=100, max_output_kb=256)

    async def main() -> tuple[Outcome, WorkerHandle, list[float]]:
        gaps: list[float] = []
        ticks = asyncio.create_task(ticking(gaps))
        try:
            outcome, handle = await execute_once(plugin("floods_events"), limits=limits)
        finally:
            ticks.cancel()
        return outcome, handle, gaps

    with Timed() as timed:
        outcome, handle, gaps = run(main())
    assert (outcome.status, outcome.limit, outcome.limit_value) == (
        "error",
        "max_events",
        100,
    )
    assert types(outcome) == ["console"] * 100 + ["system"]
    assert outcome.events[99].payload["text"] == "flood 0.99"
    assert "did not stop within 1 s of its cancel" in str(handle.exit_reason)
    assert timed.elapsed < STOP_GRACE + SLACK
    assert len(gaps) > 20 and max(gaps) < 0.5


def test_closing_stdout_mid_request_gets_the_worker_killed(plugin: PluginSpec, run: Run) -> None:
    with Timed() as timed:
        outcome, handle = run(execute_once(plugin("closes_stdout")))
    assert outcome.status == "crashed"
    assert handle.exit_reason == "killed by signal 9 (SIGKILL) by the supervisor: closed its stdout"
    assert timed.elapsed < DRAIN_GRACE + SLACK


def test_huge_line_is_a_protocol_violation(plugin: PluginSpec, run: Run) -> None:
    with Timed() as timed:
        outcome, handle = run(execute_once(plugin("huge_line")))
    assert outcome.status == "crashed"
    assert handle.exit_reason == (
        "killed by signal 9 (SIGKILL) by the supervisor: protocol violation:"
        f" a line longer than the maximum of {MAX_LINE_BYTES} bytes"
    )
    assert timed.elapsed < SLACK


@pytest.mark.parametrize(
    ("mode", "violation"),
    [
        (
            "unknown-id",
            "protocol violation: console frame for request 1001, which is not in flight",
        ),
        ("second-hello", "protocol violation: a second hello frame"),
    ],
)
def test_unexpected_frame_kills_the_worker(
    plugin: PluginSpec, run: Run, mode: str, violation: str
) -> None:
    with Timed() as timed:
        outcome, handle = run(execute_once(plugin("unexpected_frame", mode)))
    assert outcome.status == "crashed"
    assert str(handle.exit_reason).endswith(violation)
    assert timed.elapsed < SLACK


def test_split_frames_are_reassembled(plugin: PluginSpec, run: Run) -> None:
    with Timed() as timed:
        outcome, handle = run(execute_once(plugin("split_frame"), code="hi"))
    assert (outcome.status, types(outcome)) == ("ok", ["console", "value"])
    assert outcome.events[0].payload == {"level": "log", "text": "got hi"}
    assert (outcome.metrics.cpu_ms, handle.exit_reason) == (0.5, "exited with code 0")
    assert timed.elapsed < SLACK


def test_stderr_spew_is_drained_into_a_bounded_tail_and_the_log(
    plugin: PluginSpec, run: Run, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"

    async def main() -> tuple[list[Outcome], str]:
        handle = await open_worker(plugin("spews_stderr", stderr_log=str(log)))
        try:
            outcomes = [await handle.execute(repl(), LIMITS) for _ in range(2)]
            return outcomes, handle.stderr_tail()
        finally:
            await handle.aclose()

    with Timed() as timed:
        outcomes, tail = run(main())
    assert [o.status for o in outcomes] == ["ok", "ok"]
    assert len(tail) <= 8 * 1024 and tail.endswith("spew done\n")
    per_request = 64 * 65535 + len("spew done\n")
    assert log.stat().st_size == 2 * per_request
    assert timed.elapsed < 5 + SLACK


# -- closing ------------------------------------------------------------------


def test_close_of_a_hung_worker_uses_sigterm(plugin: PluginSpec, run: Run) -> None:
    async def main() -> tuple[Outcome, WorkerHandle, float]:
        handle = await open_worker(plugin("hangs_on_request"))
        task = asyncio.create_task(handle.execute(repl(), LIMITS))
        await asyncio.sleep(0)  # one loop turn: the request is in flight
        with Timed() as timed:
            await handle.aclose()
        return await task, handle, timed.elapsed

    outcome, handle, elapsed = run(main())
    assert outcome.status == "cancelled"
    assert handle.exit_reason == (
        "killed by signal 15 (SIGTERM) by the supervisor: closed; it did not exit when asked"
    )
    assert ASK_GRACE <= elapsed < ASK_GRACE + SLACK


def test_close_of_a_worker_ignoring_sigterm_ends_with_sigkill(plugin: PluginSpec, run: Run) -> None:
    async def main() -> tuple[WorkerHandle, float]:
        handle = await open_worker(plugin("ignores_sigterm"))
        with Timed() as timed:
            await handle.aclose()
        return handle, timed.elapsed

    handle, elapsed = run(main())
    assert handle.exit_reason == (
        "killed by signal 9 (SIGKILL) by the supervisor: closed; it ignored SIGTERM"
    )
    assert ASK_GRACE + TERM_GRACE <= elapsed < ASK_GRACE + TERM_GRACE + SLACK


def test_closing_many_workers_takes_as_long_as_one(plugin: PluginSpec, run: Run) -> None:
    async def main() -> tuple[list[WorkerHandle], float]:
        handles = await asyncio.gather(*(open_worker(plugin("ignores_sigterm")) for _ in range(6)))
        with Timed() as timed:
            await asyncio.gather(*(handle.aclose() for handle in handles))
        return handles, timed.elapsed

    handles, elapsed = run(main())
    assert all("ignored SIGTERM" in str(handle.exit_reason) for handle in handles)
    assert elapsed < ASK_GRACE + TERM_GRACE + 1.0


def grandchild_of(handle: WorkerHandle) -> int:
    return int(handle.hello.engine_version.removeprefix("grandchild="))


def test_grandchild_does_not_outlive_a_closed_worker(
    plugin: PluginSpec, run: Run, wait_dead: WaitDead
) -> None:
    async def main() -> tuple[WorkerHandle, int, float]:
        handle = await open_worker(plugin("spawns_grandchild"))
        grandchild = grandchild_of(handle)
        with Timed() as timed:
            await handle.aclose()
        return handle, grandchild, timed.elapsed

    handle, grandchild, elapsed = run(main())
    # The worker exited when asked; its grandchild, which ignores SIGTERM and
    # held the worker's pipes, was killed with the group.
    assert handle.exit_reason == "exited with code 0"
    wait_dead(grandchild)
    assert elapsed < SLACK


def test_crash_is_seen_at_once_although_a_grandchild_holds_the_pipes(
    plugin: PluginSpec, run: Run, wait_dead: WaitDead
) -> None:
    async def main() -> tuple[Outcome, WorkerHandle, int]:
        handle = await open_worker(plugin("spawns_grandchild"))
        grandchild = grandchild_of(handle)
        try:
            return await handle.execute(repl("exit"), LIMITS), handle, grandchild
        finally:
            await handle.aclose()

    with Timed() as timed:
        outcome, handle, grandchild = run(main())
    assert (outcome.status, handle.exit_reason) == ("crashed", "exited with code 7")
    wait_dead(grandchild)
    assert timed.elapsed < SLACK
