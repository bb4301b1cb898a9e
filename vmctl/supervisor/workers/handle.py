"""A worker, as the supervisor talks to it: handshake, one request at a time, limits, close.

- :func:`open_worker` starts the process (process.py: its own process group,
  resource limits, parent-death signal; spawn.py says how) through the
  launcher (launcher.py: forked by the fork server when it serves the command,
  else spawned), and returns once the worker's Hello arrived, raced against its
  exit under one timeout.
- Each stdout line is decoded on arrival and routed to the request in flight,
  whose events are counted against its limits as they come (outcome.py).
  Anything the protocol does not allow kills the worker. Deadlines are loop
  timers, so the limits hold whether or not anyone awaits the execution.
- The process's reap ends the request in flight as ``crashed`` at once.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import subprocess
import time
from typing import Protocol

from vmctl.api.models import Limits
from vmctl.protocol import (
    PROTOCOL_VERSION,
    Cancel,
    Console,
    ConsoleBatch,
    Error,
    ExecLimits,
    ExecRepl,
    Frame,
    Hello,
    JsException,
    Ok,
    Ping,
    Pong,
    ProtocolError,
    RunFile,
    RunStartup,
    Shutdown,
    System,
    Value,
    decode_reply,
    encode,
)
from vmctl.protocol.jail import Layer
from vmctl.supervisor.config import (
    ASK_GRACE,
    DRAIN_GRACE,
    HARD_DEADLINE_GRACE,
    KILL_WAIT,
    STOP_GRACE,
    TERM_GRACE,
)
from vmctl.supervisor.metrics import CrashCause
from vmctl.supervisor.workers.forkserver import ForkServerError
from vmctl.supervisor.workers.launcher import SPAWN_ONLY, Launcher
from vmctl.supervisor.workers.outcome import (
    OK,
    EventSink,
    ExecutionRecorder,
    Outcome,
    cancelled,
    crashed,
    event_payload,
    from_error,
    limit_reached,
    within_time,
)
from vmctl.supervisor.workers.process import WorkerProcess
from vmctl.supervisor.workers.sandboxing import SandboxRefused
from vmctl.supervisor.workers.spawn import SpawnSpec

logger = logging.getLogger(__name__)

# Long enough for a whole kill ladder, for a second aclose() that waits on the first.
_CLOSE_WAIT = ASK_GRACE + TERM_GRACE + KILL_WAIT + DRAIN_GRACE


class WorkerStartError(Exception):
    """The worker could not be started; the message has its exit status and stderr tail."""


class WorkerState(enum.Enum):
    STARTING = "starting"  # spawned, its Hello not yet received
    IDLE = "idle"  # handshake done, no request in flight
    BUSY = "busy"  # a request in flight (also one told to stop, until its terminal frame)
    DYING = "dying"  # killed (violation, deadline, ...) or its stdout closed: awaiting the reap
    CLOSING = "closing"  # aclose() is running the kill ladder
    EXITED = "exited"  # reaped and its pipes closed: nothing more happens


class Job(Protocol):
    """What to run, short of the request id and limits the handle sets (a partial frame)."""

    def __call__(self, *, id: int, limits: ExecLimits) -> ExecRepl | RunFile | RunStartup: ...


class _Run:
    """The request in flight: its accounting, its timers, and the event its caller awaits."""

    def __init__(
        self,
        request_id: int,
        limits: Limits,
        cpu_at_start: float | None,
        recorder: ExecutionRecorder,
    ) -> None:
        self.id = request_id
        self.limits = limits
        self.recorder = recorder
        self.started = time.monotonic()
        self.wall_ms = 0.0
        self.cpu_at_start = cpu_at_start
        self.cpu_ms: float | None = None  # from the terminal frame
        self.cancel_sent = False
        self.timers: list[asyncio.TimerHandle] = []
        self.finished = asyncio.Event()  # terminal frame received, or the worker is gone

    def finish(self) -> None:
        for timer in self.timers:
            timer.cancel()
        self.wall_ms = (time.monotonic() - self.started) * 1000
        self.finished.set()


async def open_worker(spec: SpawnSpec, launcher: Launcher = SPAWN_ONLY) -> WorkerHandle:
    """Start a worker and return its handle once the worker's Hello arrived.

    On any failure (no Hello within ``spec.handshake_timeout``, an exit before
    it, a refused Hello, noise) the process group is killed and reaped, and
    :class:`WorkerStartError` is raised. On cancellation the same cleanup
    happens and the cancellation propagates.

    When the launcher forks ``spec``'s worker, that is only quicker: when the
    fork server cannot fork the worker, or is gone by the time the start failed
    (the worker may have died with it), the worker is spawned instead.
    """
    if launcher.forks(spec):
        try:
            return await _open(spec, launcher, fork=True)
        except (ForkServerError, WorkerStartError) as exc:
            if isinstance(exc, WorkerStartError) and launcher.forkserver_alive():
                raise  # the worker's own failure: a spawned one would fail alike
            logger.warning("the worker was not forked (%s): spawning it", exc)
    return await _open(spec, launcher, fork=False)


async def _open(spec: SpawnSpec, launcher: Launcher, *, fork: bool) -> WorkerHandle:
    handle = WorkerHandle()
    try:
        async with asyncio.timeout(spec.handshake_timeout):
            await handle._process.start(spec, launcher, fork=fork)
            await handle._ready.wait()  # set by the Hello, or once the worker is gone
    except TimeoutError:
        await handle._abort(f"no handshake within {spec.handshake_timeout:g} s")
    except SandboxRefused as exc:
        await handle._abort("the jail refused it")
        raise WorkerStartError(str(exc)) from exc
    except (OSError, subprocess.SubprocessError) as exc:
        await handle._abort("its start failed")
        raise WorkerStartError(f"could not start the worker {spec.argv[0]!r}: {exc}") from exc
    except BaseException:
        await handle._abort("its start was interrupted")
        raise
    else:
        if handle._hello is not None:
            return handle
    tail = handle.stderr_tail()
    stderr = f"; stderr tail:\n{tail}" if tail else "; no stderr output"
    raise WorkerStartError(f"worker failed to start: {handle.exit_reason or 'not reaped'}{stderr}")


class WorkerHandle:
    """One worker. Get one from :func:`open_worker`; close it with :meth:`aclose`."""

    def __init__(self) -> None:
        self._process = WorkerProcess(self._line_received, self._gone)
        self._state = WorkerState.STARTING
        self._hello: Hello | None = None
        self._run: _Run | None = None
        self._held_back = False  # its stdout is not read: an event sink is full
        self._ping_id = 0
        self._pong: asyncio.Event | None = None  # set by the answer to the ping in flight
        self._last_id = 0
        self._ready = asyncio.Event()  # the Hello arrived, or the worker is gone

    # -- public ---------------------------------------------------------------

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def hello(self) -> Hello:
        if self._hello is None:
            raise RuntimeError(f"{self!r} has not completed its handshake")
        return self._hello

    @property
    def sandbox(self) -> tuple[Layer, ...]:
        """The jail layers applied to the worker before its first line."""
        jail = self._process.jail
        return () if jail is None else jail.layers

    @property
    def alive(self) -> bool:
        """The worker is up and takes requests (not killed, closing or exited)."""
        return self._state in (WorkerState.IDLE, WorkerState.BUSY)

    @property
    def returncode(self) -> int | None:
        """Once reaped: its exit code, or minus the signal that killed it."""
        return self._process.returncode

    @property
    def exit_reason(self) -> str | None:
        """Once reaped: "exited with code 3", "killed by signal 11 (SIGSEGV)", ..."""
        return self._process.exit_reason

    def stderr_tail(self) -> str:
        """The last 8 KiB the worker wrote to stderr."""
        return self._process.stderr_tail()

    @property
    def death_cause(self) -> CrashCause:
        """Once reaped: why it died, as /metrics counts a crash (``exit``, ``signal``, or
        why the supervisor killed it)."""
        return self._process.death_cause

    async def execute(
        self, job: Job, limits: Limits, echo: str | None = None, sink: EventSink | None = None
    ) -> Outcome:
        """Run one request under ``limits`` and return how it ended.

        The handle makes the request frame from ``job``, with the next request
        id and the worker's share of ``limits``. ``echo`` (the REPL input) is
        recorded first and counts against the limits; if it alone exceeds
        ``max_output_kb`` nothing is sent. Each event goes to ``sink`` as it is
        recorded (else the outcome keeps them); while the sink is full the
        worker's stdout is not read. Returns once the worker answered or
        is gone, never later than ``wall_ms`` plus ``HARD_DEADLINE_GRACE``
        (then it was killed). If the caller is cancelled, the request is
        stopped before that propagates.
        """
        self._check_idle()
        self._last_id += 1
        recorder = ExecutionRecorder(limits, sink, self._hold_back)
        run = _Run(self._last_id, limits, self._process.cpu_seconds(), recorder)
        if echo is not None and not run.recorder.record_echo(echo):
            run.finish()
            return run.recorder.outcome(run.wall_ms, 0.0)
        exec_limits = ExecLimits(limits.cpu_ms, limits.wall_ms, limits.mem_mb)
        self._begin(run, job(id=run.id, limits=exec_limits))
        try:
            await run.finished.wait()
        except asyncio.CancelledError:
            if not run.finished.is_set():
                run.recorder.end(cancelled("the caller stopped waiting"))
                self._stop(run)
                await run.finished.wait()  # bounded by STOP_GRACE, then the kill
            raise
        return run.recorder.outcome(run.wall_ms, self._cpu_ms(run))

    async def heartbeat(self, timeout: float) -> bool:
        """Ping an idle worker; kill it when no answer comes within ``timeout``.

        True when it answered (or was busy, or is already going: nothing to check now).
        Its reader thread answers at once, whatever its JavaScript does, so silence means
        the process is stopped (SIGSTOP), stuck in the kernel, or its pipes are broken.
        """
        if self._state is not WorkerState.IDLE or self._pong is not None:
            return True
        self._ping_id += 1
        self._pong = pong = asyncio.Event()
        self._process.send(encode(Ping(id=self._ping_id)))
        try:
            async with asyncio.timeout(timeout):
                await pong.wait()
        except TimeoutError:
            if self.alive:
                self._kill(f"no answer to a heartbeat within {timeout:g} s", "heartbeat")
            return False
        finally:
            self._pong = None
        return True

    def _hold_back(self, sink: EventSink) -> None:
        """The sink has too much not yet committed: read no more until it drained."""
        if self._held_back:
            return
        self._held_back = True
        self._process.pause_reading()
        sink.when_drained(self._read_again)

    def _read_again(self) -> None:
        self._held_back = False
        if self._process.started and self.returncode is None:
            self._process.resume_reading()

    async def cancel(self, why: str = "cancel requested") -> None:
        """Ask the worker to interrupt the request in flight; it then ends as "cancelled".

        A worker that has not stopped within ``STOP_GRACE`` is killed. Does nothing when
        no request is in flight (it may just have ended).
        """
        if self._run is not None:
            self._run.recorder.end(cancelled(why))
            self._stop(self._run)

    async def wait_exited(self) -> int:
        """Wait until the process is gone and reaped; returns its return code."""
        await self._process.wait_gone()
        assert self.returncode is not None
        return self.returncode

    async def aclose(self) -> None:
        """Stop the worker: ask, SIGTERM the group, SIGKILL the group, reap. Idempotent.

        A request in flight ends as "cancelled".
        """
        if self._state in (WorkerState.CLOSING, WorkerState.EXITED):
            await self._process.wait_gone(_CLOSE_WAIT)
            return
        self._state = WorkerState.CLOSING
        if self._run is not None:
            self._run.recorder.end(cancelled("the worker was closed"))
            self._stop(self._run)
        try:
            await self._process.close(goodbye=encode(Shutdown()))
        except BaseException:
            self._process.kill("its close was interrupted")
            raise

    def __repr__(self) -> str:
        code = self.returncode
        if code is not None:
            status = f"exited with code {code}" if code >= 0 else f"exited with signal {-code}"
        elif self._run is not None:
            status = f"busy with request {self._run.id}"
        else:
            status = self._state.value
        return f"<WorkerHandle pid={self.pid} {status}>"

    # -- requests ---------------------------------------------------------------

    def _check_idle(self) -> None:
        if self._state is WorkerState.IDLE:
            return
        if self._run is not None:
            raise RuntimeError(
                f"{self!r} is already running request {self._run.id}; one request at a time"
            )
        raise RuntimeError(f"cannot execute on {self!r}: the worker is not running")

    def _begin(self, run: _Run, frame: Frame) -> None:
        self._run = run
        self._state = WorkerState.BUSY
        self._process.send(encode(frame))
        deadline = run.limits.wall_ms / 1000 + HARD_DEADLINE_GRACE
        run.timers.append(asyncio.get_running_loop().call_later(deadline, self._overdue, run))

    def _overdue(self, run: _Run) -> None:
        detail = f"; the worker did not stop within {HARD_DEADLINE_GRACE:g} s and was killed"
        run.recorder.end(limit_reached("wall_ms", run.limits, detail))
        self._kill(f"hard deadline wall_ms={run.limits.wall_ms} exceeded", "hard_deadline")

    def _stop(self, run: _Run) -> None:
        """Tell the worker to stop ``run``; kill it if it does not answer within the grace."""
        if run.cancel_sent or run.finished.is_set():
            return
        run.cancel_sent = True
        self._process.send(encode(Cancel(id=run.id)))
        if self._state is WorkerState.BUSY:  # while closing, the kill ladder bounds the wait
            reason = f"request {run.id} did not stop within {STOP_GRACE:g} s of its cancel"
            loop = asyncio.get_running_loop()
            run.timers.append(loop.call_later(STOP_GRACE, self._kill, reason, "stop_timeout"))

    def _cpu_ms(self, run: _Run) -> float:
        """From the terminal frame, else what the process used until it was killed."""
        if run.cpu_ms is not None:
            return run.cpu_ms
        cpu_at_kill = self._process.cpu_at_kill
        if run.cpu_at_start is None or cpu_at_kill is None:
            return 0.0  # it died on its own: its CPU time went with it
        return max(0.0, cpu_at_kill - run.cpu_at_start) * 1000

    # -- what the worker says -------------------------------------------------------

    def _line_received(self, line: bytes) -> None:
        try:
            frame = decode_reply(line)
        except ProtocolError as exc:
            self._violation(str(exc))
            return
        if self._state is WorkerState.STARTING:
            self._handshake(frame)
            return
        match frame:
            case Console() | ConsoleBatch() | Value() | JsException() | System():
                self._event(frame)
            case Ok() | Error():
                self._terminal(frame)
            case Hello():
                self._violation("a second hello frame")
            case Pong():
                if frame.id != self._ping_id or self._pong is None:
                    self._violation(f"a pong for ping {frame.id}, which was never sent")
                else:
                    self._pong.set()

    def _handshake(self, frame: Frame) -> None:
        if not isinstance(frame, Hello):
            self._violation(f"{_tag(frame)} frame before the hello")
        elif frame.protocol != PROTOCOL_VERSION:
            self._violation(
                f"the worker speaks protocol version {frame.protocol}, not {PROTOCOL_VERSION}"
            )
        else:
            self._hello = frame
            self._state = WorkerState.IDLE
            self._ready.set()

    def _event(self, frame: Console | ConsoleBatch | Value | JsException | System) -> None:
        run = self._in_flight(frame.id, frame)
        if run is None or run.recorder.ending is not None:
            return  # a violation, or the run was stopped: later frames are dropped
        if not isinstance(frame, ConsoleBatch):
            if not run.recorder.record(*event_payload(frame)):
                self._stop(run)  # that event crossed a limit
            return
        # A batch is its lines, each recorded and counted as if it had come in its own frame.
        if not run.recorder.record_console(frame.lines):
            self._stop(run)  # a line crossed a limit: it and the rest are dropped

    def _terminal(self, frame: Ok | Error) -> None:
        run = self._in_flight(frame.id, frame)
        if run is None:
            return
        run.cpu_ms = frame.cpu_ms
        run.finish()
        ending = from_error(frame, run.limits) if isinstance(frame, Error) else OK
        # An answer past cpu_ms or wall_ms is a timeout, whatever it says: see within_time.
        run.recorder.end(within_time(ending, run.limits, run.cpu_ms, run.wall_ms))
        self._run = None
        if self._state is WorkerState.BUSY:
            self._state = WorkerState.IDLE

    def _in_flight(self, request_id: int, frame: Frame) -> _Run | None:
        if self._run is None or self._run.id != request_id:
            self._violation(f"{_tag(frame)} frame for request {request_id}, which is not in flight")
            return None
        return self._run

    def _violation(self, detail: str) -> None:
        self._kill(f"protocol violation: {detail}", "protocol_violation")

    # -- death ------------------------------------------------------------------

    def _kill(self, reason: str, cause: CrashCause | None = None) -> None:
        if self._state in (WorkerState.STARTING, WorkerState.IDLE, WorkerState.BUSY):
            self._state = WorkerState.DYING
        self._process.kill(reason, cause)

    def _gone(self) -> None:
        """Reaped and drained: the request in flight (if any) crashed."""
        self._state = WorkerState.EXITED
        run, self._run = self._run, None
        if run is not None:
            run.recorder.end(crashed(self.exit_reason or "gone", self.stderr_tail()))
            run.finish()
        self._ready.set()

    async def _abort(self, reason: str) -> None:
        """Kill a worker that failed to start, and wait for its reap."""
        if self._process.started:
            self._kill(reason)
            await self._process.wait_gone(KILL_WAIT + DRAIN_GRACE)


def _tag(frame: Frame) -> str:
    return str(frame.__struct_config__.tag)
