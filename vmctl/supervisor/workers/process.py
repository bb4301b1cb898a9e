"""A worker's OS process: its own process group, bounded pipes, death as an event, the kill ladder.

Frames are the handle's business; this module deals in bytes. launcher.py
starts the process, spawned or forked. asyncio's subprocess protocol callbacks,
on the loop, feed complete stdout lines to the owner and stderr into a bounded
tail. The reap is the death event (the child watcher's for a spawned worker;
for one the fork server forked, its report, through forked.py, which drives the
same callbacks): what is left of the process group is killed at once, and once
the pipes are drained (or ``DRAIN_GRACE`` later) the owner is told, once.
Nothing here polls. The graces of the kill ladder are in config.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from typing import cast

from vmctl.protocol import MAX_LINE_BYTES
from vmctl.protocol.jail import JailSpec
from vmctl.supervisor.config import ASK_GRACE, DRAIN_GRACE, KILL_WAIT, TERM_GRACE
from vmctl.supervisor.metrics import CrashCause
from vmctl.supervisor.workers.forked import ForkedChild
from vmctl.supervisor.workers.launcher import Launcher
from vmctl.supervisor.workers.pipes import LineBuffer, StderrSink
from vmctl.supervisor.workers.spawn import SpawnSpec
from vmctl.supervisor.workers.waiting import wait_set

logger = logging.getLogger(__name__)

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class WorkerProcess:
    """One spawned worker process; ``on_line`` gets its stdout lines, ``on_gone`` its end."""

    def __init__(self, on_line: Callable[[bytes], None], on_gone: Callable[[], None]) -> None:
        self.pid = 0
        self.jail: JailSpec | None = None  # once launched: the jail it runs in
        self.returncode: int | None = None  # negative: killed by that signal
        self.exit_reason: str | None = None  # "exited with code 3", "killed by signal 9 ..."
        self.cpu_at_kill: float | None = None  # its CPU seconds when we first signalled it
        self.kill_cause: CrashCause | None = None  # why we first SIGKILLed it, as a crash
        self._on_line = on_line
        self._on_gone = on_gone
        self._transport: asyncio.SubprocessTransport | None = None
        self._stdin: asyncio.WriteTransport | None = None
        self._stat_fd: int | None = None  # /proc/<pid>/stat, for its CPU time
        self._lines = LineBuffer()
        self._stderr = StderrSink(None)
        self._deaf = False  # killed: what it still writes to stdout no longer counts
        self._killed_for: dict[int, str] = {}  # signal we sent -> why
        self._open_pipes = {1, 2}
        self._timer: asyncio.TimerHandle | None = None  # stdout-EOF kill, then the drain
        self._reaped = asyncio.Event()
        self._gone = asyncio.Event()  # reaped, drained, transport closed

    async def start(self, spec: SpawnSpec, launcher: Launcher, *, fork: bool) -> None:
        """Have ``launcher`` start it, forked or spawned (it raises what the launch raised)."""
        if spec.stderr_log is not None:
            # Unbuffered: each chunk lands in the log as it arrives. Closed in _finish.
            self._stderr = StderrSink(open(spec.stderr_log, "ab", buffering=0))  # noqa: SIM115
        try:
            self.jail = await launcher.launch(spec, _Pipes(self), fork=fork)
        except BaseException:
            if self._transport is None:  # no process: asyncio reaps one that failed to start
                self._stderr.close()
            raise

    @property
    def started(self) -> bool:
        return self._transport is not None

    def send(self, data: bytes) -> None:
        """Write to its stdin; never blocks (the transport buffers)."""
        if self._stdin is not None and not self._stdin.is_closing():
            self._stdin.write(data)

    def pause_reading(self) -> None:
        """Stop reading its stdout (it blocks once the pipe is full) until resumed."""
        self._stdout_transport().pause_reading()

    def resume_reading(self) -> None:
        self._stdout_transport().resume_reading()

    def _stdout_transport(self) -> asyncio.ReadTransport:
        assert self._transport is not None
        return cast(asyncio.ReadTransport, self._transport.get_pipe_transport(1))

    def kill(self, reason: str, cause: CrashCause | None = None) -> None:
        """SIGKILL its whole group; ``reason`` goes into :attr:`exit_reason`, ``cause``
        (None: it was being stopped anyway) into :attr:`death_cause`."""
        if self.returncode is None and signal.SIGKILL not in self._killed_for:
            self.kill_cause = cause
        self._deaf = True
        self._lines.clear()
        self._signal(signal.SIGKILL, reason)

    def stderr_tail(self) -> str:
        return self._stderr.tail()

    @property
    def death_cause(self) -> CrashCause:
        """Once reaped, why it died, as a crash is counted (docs/metrics.md)."""
        if self.returncode == -signal.SIGKILL and self.kill_cause is not None:
            return self.kill_cause
        return "exit" if self.returncode is None or self.returncode >= 0 else "signal"

    def cpu_seconds(self) -> float | None:
        """Its user+system CPU time (a few µs: one pread of /proc/<pid>/stat)."""
        if self._stat_fd is None:
            return None
        try:
            stat = os.pread(self._stat_fd, 1024, 0)
        except OSError:
            return None  # reaped
        fields = stat[stat.rindex(b")") + 2 :].split()  # after "pid (comm) "
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime

    async def wait_gone(self, timeout: float | None = None) -> bool:
        """Wait until it is reaped and its pipes are closed; False if ``timeout`` passed first."""
        return await wait_set(self._gone, timeout)

    async def close(self, goodbye: bytes) -> None:
        """The kill ladder: ask (``goodbye``, then stdin EOF), SIGTERM the group, SIGKILL it."""
        # Asking first lets a healthy worker exit on its own, flushing its stderr.
        self.send(goodbye)
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
            if await wait_set(self._reaped, grace):
                await self._gone.wait()  # at most DRAIN_GRACE after the reap
                return
        logger.warning("worker %d was not reaped %g s after SIGKILL", self.pid, KILL_WAIT)

    # -- asyncio's callbacks, through _Pipes ----------------------------------------

    def _attached(self, transport: asyncio.SubprocessTransport) -> None:
        self._transport = transport
        self.pid = transport.get_pid()
        self._stdin = cast(asyncio.WriteTransport, transport.get_pipe_transport(0))
        with contextlib.suppress(OSError):  # already reaped: no CPU time to read
            self._stat_fd = os.open(f"/proc/{self.pid}/stat", os.O_RDONLY | os.O_CLOEXEC)

    def _stdout_received(self, data: bytes) -> None:
        if self._deaf:
            return
        for line in self._lines.feed(data):
            self._on_line(line)
            if self._deaf:
                return  # that line got it killed
        if self._lines.overflowed:
            self.kill(
                f"protocol violation: a line longer than the maximum of {MAX_LINE_BYTES} bytes",
                "protocol_violation",
            )

    def _exited(self) -> None:
        """The child watcher reaped it: this is the death event."""
        assert self._transport is not None
        self.returncode = cast(int, self._transport.get_returncode())
        self.exit_reason = _describe_exit(self.returncode, self._killed_for)
        if isinstance(self._transport, ForkedChild) and self._transport.unreported:
            self.exit_reason = f"exit status unknown: {self._transport.unreported}"
        # What is left of its group (a grandchild) dies with it. The group id is
        # still in use while any member lives, so it cannot name anyone else.
        # "No such process": nothing was left.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
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
            self._timer = loop.call_later(
                DRAIN_GRACE, self.kill, "closed its stdout", "stdout_closed"
            )

    def _finish(self) -> None:
        if self._gone.is_set():
            return
        self._cancel_timer()
        assert self._transport is not None
        self._transport.close()
        self._stderr.close()
        if self._stat_fd is not None:
            os.close(self._stat_fd)
            self._stat_fd = None
        self._gone.set()
        self._on_gone()

    # -- helpers --------------------------------------------------------------

    def _signal(self, sig: signal.Signals, reason: str) -> None:
        if self._transport is None or self.returncode is not None:
            return  # never started, or reaped: its pid may belong to someone else now
        self._killed_for.setdefault(sig, reason)
        if self.cpu_at_kill is None:
            self.cpu_at_kill = self.cpu_seconds()
        # The group, then the leader itself in case it left its group. "No such
        # process" means already gone: its reap is on its way.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class _Pipes(asyncio.SubprocessProtocol):
    """asyncio's callbacks for one process, handed to it (the one owner of its state)."""

    def __init__(self, process: WorkerProcess) -> None:
        self._process = process

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._process._attached(cast(asyncio.SubprocessTransport, transport))

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        assert isinstance(data, bytes)
        if fd == 1:
            self._process._stdout_received(data)
        else:
            self._process._stderr.write(data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        self._process._pipe_closed(fd)

    def process_exited(self) -> None:
        self._process._exited()


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
