"""One worker process: spawn, handshake, one request at a time, limits, death, close.

- :func:`open_worker` spawns the worker (spawn.py: its own session and process
  group, resource limits, parent-death signal, minimal environment, the
  worktree as cwd) and returns once its Hello arrived, raced against its exit
  under one timeout.
- Everything the worker does reaches its handle through asyncio's subprocess
  protocol callbacks, on the loop: stdout lines are decoded and routed to the
  execution in flight, stderr goes to a bounded tail, and the reap
  (``process_exited``) is the death event. Deadlines are loop timers. So the
  limits hold whether or not anyone awaits the execution, and nothing polls.
- Every kill is SIGKILL to the whole process group. Once the worker is reaped,
  whatever is left of its group is killed too: no grandchild outlives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import signal
import subprocess
import time
from typing import cast

import msgspec
import psutil

from vmctl.protocol import (
    MAX_LINE_BYTES,
    PROTOCOL_VERSION,
    Cancel,
    Console,
    Error,
    ExecLimits,
    ExecRepl,
    Frame,
    Hello,
    JsException,
    Ok,
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
from vmctl.supervisor.outcome import (
    OK,
    Limits,
    Outcome,
    cancelled,
    crashed,
    event_payload,
    from_error,
    limit_reached,
)
from vmctl.supervisor.pipes import LineBuffer, StderrSink
from vmctl.supervisor.recorder import ExecutionRecorder
from vmctl.supervisor.spawn import child_setup, worker_env

logger = logging.getLogger(__name__)

# The worker interrupts scripts itself at wall_ms and answers within
# milliseconds; this grace only covers a native operation that cannot be
# interrupted (or a worker that is stuck), and a loaded machine.
HARD_DEADLINE_GRACE = 1.0
# How long a worker told to stop (a limit was reached, cancel()) has to send its
# terminal frame before it is killed.
STOP_GRACE = 1.0
# The kill ladder of aclose(): after Shutdown and stdin EOF, after SIGTERM, and
# after SIGKILL (only a process stuck in the kernel takes longer to be reaped).
ASK_GRACE = 0.5
TERM_GRACE = 0.5
KILL_WAIT = 5.0
# After the exit, for the pipes' last bytes (the stderr tail of a crash). Only
# a process that left the worker's group can hold them open that long.
DRAIN_GRACE = 0.25


class SpawnSpec(msgspec.Struct, frozen=True):
    """How to start one worker."""

    argv: tuple[str, ...]
    cwd: str  # the worktree
    mem_mb: int  # the engine's heap limit; the address-space cap is set well above it
    stderr_log: str | None = None  # a file the worker's stderr is appended to
    env: dict[str, str] = {}  # added to the minimal environment
    handshake_timeout: float = 10.0


class WorkerStartError(Exception):
    """The worker could not be started; the message has its exit status and stderr tail."""


class State(enum.Enum):
    STARTING = "starting"  # spawned, its Hello not yet received
    IDLE = "idle"  # handshake done, no request in flight
    BUSY = "busy"  # a request in flight (also one told to stop, until its terminal frame)
    DYING = "dying"  # killed, or its stdout closed: waiting for the reap
    CLOSING = "closing"  # aclose() is running the kill ladder
    EXITED = "exited"  # reaped and its pipes closed: nothing more happens


class _Run:
    """The request in flight: its accounting, its timers, and the event its caller awaits."""

    def __init__(self, request_id: int, limits: Limits, cpu_at_start: float | None) -> None:
        self.id = request_id
        self.limits = limits
        self.recorder = ExecutionRecorder(limits)
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


async def open_worker(spec: SpawnSpec) -> WorkerHandle:
    """Start a worker and return its handle once the worker's Hello arrived.

    On any failure (no Hello within ``spec.handshake_timeout``, an exit before
    it, a refused Hello, noise) the process group is killed and reaped, and
    :class:`WorkerStartError` is raised. On cancellation the same cleanup
    happens and the cancellation propagates.
    """
    handle = WorkerHandle(spec)
    try:
        async with asyncio.timeout(spec.handshake_timeout):
            await handle._spawn()
            await handle._ready.wait()  # set by the Hello, or once the worker is gone
    except TimeoutError:
        await handle._abort(f"no handshake within {spec.handshake_timeout:g} s")
    except (OSError, subprocess.SubprocessError) as exc:
        await handle._abort("its spawn failed")
        raise WorkerStartError(f"could not start the worker {spec.argv[0]!r}: {exc}") from exc
    except BaseException:
        await handle._abort("its start was interrupted")
        raise
    else:
        if handle._hello is not None:
            return handle
        await handle._wait_gone(KILL_WAIT + DRAIN_GRACE)  # it exited, or was refused and killed
    tail = handle.stderr_tail()
    stderr = f"; stderr tail:\n{tail}" if tail else "; no stderr output"
    raise WorkerStartError(f"worker failed to start: {handle.exit_reason or 'not reaped'}{stderr}")


class WorkerHandle:
    """One worker process. Get one from :func:`open_worker`; close it with :meth:`aclose`."""

    def __init__(self, spec: SpawnSpec) -> None:
        self.pid = 0
        self.returncode: int | None = None  # negative: killed by that signal
        self.exit_reason: str | None = None  # set once reaped: "exited with code 3", ...
        self._spec = spec
        self._state = State.STARTING
        self._hello: Hello | None = None
        self._transport: asyncio.SubprocessTransport | None = None
        self._stdin: asyncio.WriteTransport | None = None
        self._process: psutil.Process | None = None  # for CPU time when there is no terminal frame
        self._lines = LineBuffer()
        self._stderr = StderrSink(None)
        self._run: _Run | None = None
        self._last_id = 0
        self._killed_for: dict[int, str] = {}  # signal we sent -> why
        self._cpu_at_kill: float | None = None
        self._open_pipes = {1, 2}
        self._timer: asyncio.TimerHandle | None = None  # stdout-EOF kill, then the drain
        self._ready = asyncio.Event()
        self._reaped = asyncio.Event()
        self._gone = asyncio.Event()  # reaped, pipes drained, transport closed

    # -- public ---------------------------------------------------------------

    @property
    def hello(self) -> Hello:
        if self._hello is None:
            raise RuntimeError(f"{self!r} has not completed its handshake")
        return self._hello

    @property
    def alive(self) -> bool:
        """The worker is up and takes requests (not killed, closing or exited)."""
        return self._state in (State.IDLE, State.BUSY)

    def stderr_tail(self) -> str:
        """The last few KiB the worker wrote to stderr."""
        return self._stderr.tail()

    async def execute(
        self, request: ExecRepl | RunFile | RunStartup, limits: Limits, echo: str | None = None
    ) -> Outcome:
        """Run one request under ``limits`` and return how it ended.

        The handle assigns the request's id and sets its ``limits`` from
        ``limits``. ``echo`` (the REPL input) is recorded first and counts
        against the limits; if it alone exceeds ``max_output_kb`` nothing is
        sent. Returns once the worker answered or is gone, never later than
        ``wall_ms`` plus :data:`HARD_DEADLINE_GRACE` (then it was killed).
        """
        self._check_idle()
        self._last_id += 1
        run = _Run(self._last_id, limits, self._cpu_seconds())
        if echo is not None and not run.recorder.record_echo(echo):
            run.finish()
            return run.recorder.outcome(run.wall_ms, 0.0)
        exec_limits = ExecLimits(limits.cpu_ms, limits.wall_ms, limits.mem_mb)
        self._begin(run, msgspec.structs.replace(request, id=run.id, limits=exec_limits))
        try:
            await run.finished.wait()
        except asyncio.CancelledError:
            # Stop the request before the cancellation propagates, so the handle
            # is idle (or the worker killed, after STOP_GRACE) when it does.
            if not run.finished.is_set():
                run.recorder.end(cancelled("the caller stopped waiting"))
                self._stop(run)
                await run.finished.wait()
            raise
        return run.recorder.outcome(run.wall_ms, self._cpu_ms(run))

    async def cancel(self) -> None:
        """Ask the worker to interrupt the request in flight; it then ends as "cancelled".

        Does nothing when no request is in flight (it may just have ended).
        """
        if self._run is not None:
            self._run.recorder.end(cancelled("cancel requested"))
            self._stop(self._run)

    async def wait_exited(self) -> int:
        """Wait until the process is gone and reaped; returns its return code."""
        await self._gone.wait()
        assert self.returncode is not None
        return self.returncode

    async def aclose(self) -> None:
        """Stop the worker: ask, SIGTERM the group, SIGKILL the group, reap. Idempotent.

        A request in flight ends as "cancelled".
        """
        if self._state in (State.CLOSING, State.EXITED):
            await self._wait_gone(ASK_GRACE + TERM_GRACE + KILL_WAIT + DRAIN_GRACE)
            return
        self._state = State.CLOSING
        try:
            await self._kill_ladder()
        except BaseException:
            self._signal(signal.SIGKILL, "its close was interrupted")
            raise

    def __repr__(self) -> str:
        if self.returncode is not None:
            code = self.returncode
            status = f"exited with code {code}" if code >= 0 else f"exited with signal {-code}"
        elif self._run is not None:
            status = f"busy with request {self._run.id}"
        else:
            status = self._state.value
        return f"<WorkerHandle pid={self.pid} {status}>"

    # -- requests ---------------------------------------------------------------

    def _check_idle(self) -> None:
        if self._state is State.IDLE:
            return
        if self._run is not None:
            raise RuntimeError(
                f"{self!r} is already running request {self._run.id}; one request at a time"
            )
        raise RuntimeError(f"cannot execute on {self!r}: the worker is not running")

    def _begin(self, run: _Run, frame: Frame) -> None:
        self._run = run
        self._state = State.BUSY
        self._send(frame)
        deadline = run.limits.wall_ms / 1000 + HARD_DEADLINE_GRACE
        run.timers.append(asyncio.get_running_loop().call_later(deadline, self._overdue, run))

    def _overdue(self, run: _Run) -> None:
        detail = f"; the worker did not stop within {HARD_DEADLINE_GRACE:g} s and was killed"
        run.recorder.end(limit_reached("wall_ms", run.limits, detail))
        self._kill(f"hard deadline wall_ms={run.limits.wall_ms} exceeded")

    def _stop(self, run: _Run) -> None:
        """Tell the worker to stop ``run``; kill it if it does not answer within the grace."""
        if run.cancel_sent or run.finished.is_set():
            return
        run.cancel_sent = True
        self._send(Cancel(id=run.id))
        if self._state is State.BUSY:  # while closing, the kill ladder bounds the wait
            reason = f"request {run.id} did not stop within {STOP_GRACE:g} s of its cancel"
            loop = asyncio.get_running_loop()
            run.timers.append(loop.call_later(STOP_GRACE, self._kill, reason))

    def _send(self, frame: Frame) -> None:
        if self._stdin is not None and not self._stdin.is_closing():
            self._stdin.write(encode(frame))

    # -- what the worker says -------------------------------------------------------

    def _stdout_received(self, data: bytes) -> None:
        for line in self._lines.feed(data):
            if self._state in (State.DYING, State.EXITED):
                return  # killed: what it still says no longer counts
            self._line_received(line)
        if self._lines.overflowed:
            self._violation(f"a line longer than the maximum of {MAX_LINE_BYTES} bytes")

    def _line_received(self, line: bytes) -> None:
        try:
            frame = decode_reply(line)
        except ProtocolError as exc:
            self._violation(str(exc))
            return
        if self._state is State.STARTING:
            self._handshake(frame)
            return
        match frame:
            case Console() | Value() | JsException() | System():
                self._event(frame)
            case Ok() | Error():
                self._terminal(frame)
            case Hello():
                self._violation("a second hello frame")
            case Pong():
                self._violation(f"a pong for ping {frame.id}, which was never sent")

    def _handshake(self, frame: Frame) -> None:
        if not isinstance(frame, Hello):
            self._violation(f"a {_tag(frame)} frame before the hello")
        elif frame.protocol != PROTOCOL_VERSION:
            self._violation(
                f"the worker speaks protocol version {frame.protocol}, not {PROTOCOL_VERSION}"
            )
        else:
            self._hello = frame
            self._state = State.IDLE
            self._ready.set()

    def _event(self, frame: Console | Value | JsException | System) -> None:
        run = self._in_flight(frame.id, frame)
        if run is None or run.recorder.ending is not None:
            return  # a violation, or the run was stopped: later frames are dropped
        if not run.recorder.record(*event_payload(frame)):
            self._stop(run)  # that event crossed a limit

    def _terminal(self, frame: Ok | Error) -> None:
        run = self._in_flight(frame.id, frame)
        if run is None:
            return
        run.cpu_ms = frame.cpu_ms
        run.recorder.end(from_error(frame, run.limits) if isinstance(frame, Error) else OK)
        self._run = None
        if self._state is State.BUSY:
            self._state = State.IDLE
        run.finish()

    def _in_flight(self, request_id: int, frame: Frame) -> _Run | None:
        if self._run is None or self._run.id != request_id:
            self._violation(f"a {_tag(frame)} frame for request {request_id}, not in flight")
            return None
        return self._run

    def _violation(self, detail: str) -> None:
        self._kill(f"protocol violation: {detail}")

    # -- death ------------------------------------------------------------------

    def _kill(self, reason: str) -> None:
        """SIGKILL the worker's group; its reap then ends whatever is in flight."""
        if self._state in (State.STARTING, State.IDLE, State.BUSY):
            self._state = State.DYING
        self._lines.clear()
        self._signal(signal.SIGKILL, reason)

    def _signal(self, sig: signal.Signals, reason: str) -> None:
        if self._transport is None or self.returncode is not None:
            return  # never started, or reaped: its pid may belong to someone else now
        self._killed_for.setdefault(sig, reason)
        if self._cpu_at_kill is None:
            self._cpu_at_kill = self._cpu_seconds()
        # The group, then the leader itself in case it left its group. "No such
        # process" means already gone: its reap is on its way.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)

    def _exited(self) -> None:
        """The child watcher reaped the worker: this is the death event."""
        assert self._transport is not None
        self.returncode = cast(int, self._transport.get_returncode())
        self.exit_reason = _describe_exit(self.returncode, self._killed_for)
        # What is left of its group (a grandchild) dies with it. The group id is
        # still in use while any member lives, so it cannot name anyone else.
        # "No such process": nothing was left.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        if self._state is not State.CLOSING:
            self._state = State.DYING
        self._reaped.set()
        self._cancel_timer()
        if self._open_pipes:
            self._timer = asyncio.get_running_loop().call_later(DRAIN_GRACE, self._finish)
        else:
            self._finish()

    def _pipe_closed(self, fd: int) -> None:
        self._open_pipes.discard(fd)
        if self.returncode is not None:
            if not self._open_pipes:
                self._finish()
        elif fd == 1 and self._timer is None:
            # Its exit normally follows at once; a worker that lives on without
            # its stdout can never answer again.
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(DRAIN_GRACE, self._kill, "closed its stdout")

    def _finish(self) -> None:
        """Reaped and drained: end the request in flight, release everything."""
        if self._state is State.EXITED:
            return
        self._state = State.EXITED
        self._cancel_timer()
        run, self._run = self._run, None
        if run is not None:
            run.recorder.end(crashed(self.exit_reason or "gone", self.stderr_tail()))
            run.finish()
        assert self._transport is not None
        self._transport.close()
        self._stderr.close()
        self._ready.set()
        self._gone.set()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def _kill_ladder(self) -> None:
        if self._run is not None:
            self._run.recorder.end(cancelled("the worker was closed"))
            self._stop(self._run)
        # Ask first: a healthy worker exits on its own and flushes its stderr.
        self._send(Shutdown())
        if self._stdin is not None:
            self._stdin.close()
        steps = (
            (None, ASK_GRACE, ""),
            (signal.SIGTERM, TERM_GRACE, "closed; it did not exit when asked"),
            (signal.SIGKILL, KILL_WAIT, "closed; it ignored SIGTERM"),
        )
        for sig, grace, reason in steps:
            if sig is not None:
                self._signal(sig, reason)
            if await self._wait_reaped(grace):
                await self._gone.wait()  # at most DRAIN_GRACE after the reap
                return
        logger.warning("%r was not reaped %g s after SIGKILL", self, KILL_WAIT)

    async def _wait_reaped(self, timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await self._reaped.wait()
        except TimeoutError:
            return False
        return True

    async def _abort(self, reason: str) -> None:
        """Kill a worker that failed to start, and wait for its reap."""
        if self._transport is None:  # no process (asyncio reaps one whose spawn failed)
            self._stderr.close()
            return
        self._kill(reason)
        await self._wait_gone(KILL_WAIT + DRAIN_GRACE)

    async def _wait_gone(self, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                await self._gone.wait()
        except TimeoutError:
            logger.warning("%r was not gone after %g s", self, timeout)

    # -- spawning -------------------------------------------------------------

    async def _spawn(self) -> None:
        spec = self._spec
        if spec.stderr_log is not None:
            # Unbuffered: each chunk lands in the log as it arrives. Closed in _finish.
            self._stderr = StderrSink(open(spec.stderr_log, "ab", buffering=0))  # noqa: SIM115
        await asyncio.get_running_loop().subprocess_exec(
            lambda: _Pipes(self),
            *spec.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=spec.cwd,
            env=worker_env(spec.cwd, spec.env),
            start_new_session=True,  # its own session and process group: killpg reaches all of it
            preexec_fn=child_setup(spec.mem_mb),
        )

    def _attached(self, transport: asyncio.SubprocessTransport) -> None:
        self._transport = transport
        self.pid = transport.get_pid()
        self._stdin = cast(asyncio.WriteTransport, transport.get_pipe_transport(0))
        try:
            self._process = psutil.Process(self.pid)
        except psutil.Error:
            self._process = None  # already gone; its exit callback follows

    def _cpu_seconds(self) -> float | None:
        if self._process is None:
            return None
        try:
            times = self._process.cpu_times()
        except psutil.Error:
            return None
        return float(times.user + times.system)

    def _cpu_ms(self, run: _Run) -> float:
        """From the terminal frame, else what the process used until it was killed."""
        if run.cpu_ms is not None:
            return run.cpu_ms
        if run.cpu_at_start is None or self._cpu_at_kill is None:
            return 0.0
        return max(0.0, self._cpu_at_kill - run.cpu_at_start) * 1000


class _Pipes(asyncio.SubprocessProtocol):
    """asyncio's callbacks for one worker, handed to its handle (the one owner of state)."""

    def __init__(self, handle: WorkerHandle) -> None:
        self._handle = handle

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._handle._attached(cast(asyncio.SubprocessTransport, transport))

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        assert isinstance(data, bytes)
        if fd == 1:
            self._handle._stdout_received(data)
        else:
            self._handle._stderr.write(data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        self._handle._pipe_closed(fd)

    def process_exited(self) -> None:
        self._handle._exited()


def _describe_exit(returncode: int, killed_for: dict[int, str]) -> str:
    if returncode >= 0:
        return f"exited with code {returncode}"
    number = -returncode
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = "unknown"
    reason = killed_for.get(number)
    how = f"killed by signal {number} ({name})"
    return f"{how} by the supervisor: {reason}" if reason else how


def _tag(frame: Frame) -> str:
    return str(frame.__struct_config__.tag)
