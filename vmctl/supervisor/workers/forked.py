"""One worker forked by the fork server, presented to process.py as a spawned one is.

asyncio hands a spawned worker's pipes and exit to a ``SubprocessProtocol``;
:class:`ForkedChild` does the same for a forked worker (forkserver.py says how it
is forked and how the daemon learns of its exit): our ends of its three pipes go
on the loop, and its end is the fork server's report of its wait status. Its
pidfd is on the loop too: readable means the worker has exited, and a report
that then does not come within :data:`STATUS_WAIT` is the fork server's failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import signal
from collections.abc import Callable
from typing import Any, BinaryIO

STATUS_WAIT = 2.0  # a worker's pidfd readable to its Exited report (as fast, when well)
# The returncode of a worker whose status nobody could report (asyncio's own convention).
UNKNOWN_STATUS = 255


class ChildState(enum.Enum):
    FORKING = "forking"  # asked of the fork server, no answer yet (or it could not fork)
    RUNNING = "running"  # forked: its pidfd is on the loop
    DEAD = "dead"  # its pidfd was readable: it has exited, its status is awaited
    EXITED = "exited"  # its returncode is known (reported, or unknown for good)
    CLOSED = "closed"  # its pipes are closed: nothing more reaches the protocol


class ForkedChild(asyncio.SubprocessTransport):
    """One forked worker, presented as asyncio presents a spawned process.

    It calls the same protocol methods as asyncio's subprocess transport
    (``connection_made``, ``pipe_data_received``, ``pipe_connection_lost``,
    ``process_exited``), so process.py handles both alike. Its returncode is the one
    the fork server reported, or :data:`UNKNOWN_STATUS` when the fork server was gone
    first (:attr:`unreported` then says how).
    """

    def __init__(
        self,
        protocol: asyncio.SubprocessProtocol,
        on_unreported: Callable[[str], None],
        on_close: Callable[[ForkedChild], None],
    ) -> None:
        super().__init__()
        self._loop = asyncio.get_running_loop()
        self._protocol = protocol
        self._on_unreported = on_unreported  # its fork server did not report its exit: why
        self._on_close = on_close
        stdin, self._stdin = os.pipe()
        self._stdout, stdout = os.pipe()
        self._stderr, stderr = os.pipe()
        self.child_ends = [stdin, stdout, stderr]  # sent to the fork server, then closed
        self._ours: dict[int, int] = {0: self._stdin, 1: self._stdout, 2: self._stderr}
        self._pipes: dict[int, asyncio.BaseTransport] = {}
        # Calls for the protocol before connection_made: held, as asyncio holds them.
        self._early: list[tuple[Callable[..., None], tuple[Any, ...]]] | None = []
        self._answered = asyncio.Event()
        self._failure: str | None = None
        self._pid = 0
        self._pidfd: int | None = None
        self._state = ChildState.FORKING
        self._orphan_note: str | None = None  # its fork server is gone: why
        self._returncode: int | None = None
        self.unreported: str | None = None  # its status is unknown: how its fork server went
        self._timer: asyncio.TimerHandle | None = None

    # -- what the fork server says ------------------------------------------------

    async def wait_forked(self) -> str | None:
        """Wait for the fork server's answer; why it could not fork, or None."""
        await self._answered.wait()
        return self._failure

    def forked(self, pid: int, pidfd: int) -> None:
        self._pid, self._pidfd = pid, pidfd
        self._loop.add_reader(pidfd, self._pidfd_readable)
        self._state = ChildState.RUNNING
        self._answered.set()

    def fork_failed(self, message: str) -> None:
        if not self._answered.is_set():
            self._failure = message
            self._answered.set()

    def exited(self, returncode: int) -> None:
        """The fork server reaped it: this is the death event."""
        self._set_exit(returncode)

    def orphaned(self, note: str) -> None:
        """Its fork server is gone: its death (at once, if it runs: the parent-death
        signal) is the end, with its status unknown."""
        self._orphan_note = note
        if self._state is ChildState.DEAD:
            self._set_exit(UNKNOWN_STATUS, note)

    # -- the pipes --------------------------------------------------------------

    def close_child_ends(self) -> None:
        close_all(self.child_ends)
        self.child_ends = []

    async def connect(self) -> None:
        """Connect our pipe ends to the loop, then hand this transport to the protocol."""
        loop = self._loop
        self._pipes[0], _ = await loop.connect_write_pipe(lambda: _PipeEnd(self, 0), self._take(0))
        for fd in (1, 2):
            self._pipes[fd], _ = await loop.connect_read_pipe(
                lambda fd=fd: _PipeEnd(self, fd),  # type: ignore[misc]
                self._take(fd),
            )
        early, self._early = self._early or [], None
        self._protocol.connection_made(self)
        for method, args in early:
            method(*args)

    def _take(self, fd: int) -> BinaryIO:
        return open(self._ours.pop(fd), "wb" if fd == 0 else "rb", buffering=0)

    def _call(self, method: Callable[..., None], *args: Any) -> None:
        if self._state is ChildState.CLOSED:
            return
        if self._early is not None:
            self._early.append((method, args))
        else:
            method(*args)

    # -- death --------------------------------------------------------------------

    def _pidfd_readable(self) -> None:
        self._unwatch()
        self._state = ChildState.DEAD
        if self._orphan_note is not None:
            self._set_exit(UNKNOWN_STATUS, self._orphan_note)
            return
        reason = f"it did not report the exit of worker {self._pid} within {STATUS_WAIT:g} s"
        self._timer = self._loop.call_later(STATUS_WAIT, self._on_unreported, reason)

    def _set_exit(self, returncode: int, unreported: str | None = None) -> None:
        if self._state in (ChildState.EXITED, ChildState.CLOSED):
            return
        self._unwatch()
        self._state = ChildState.EXITED
        self._returncode, self.unreported = returncode, unreported
        self._call(self._protocol.process_exited)

    def _unwatch(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._state is ChildState.RUNNING:
            assert self._pidfd is not None
            self._loop.remove_reader(self._pidfd)

    # -- asyncio's SubprocessTransport ------------------------------------------------

    def get_pid(self) -> int:
        return self._pid

    def get_returncode(self) -> int | None:
        return self._returncode

    def get_pipe_transport(self, fd: int) -> asyncio.BaseTransport | None:
        return self._pipes.get(fd)

    def send_signal(self, signal_number: int) -> None:
        if self._pidfd is None or self._returncode is not None:
            raise ProcessLookupError(f"worker {self._pid} is not running")
        signal.pidfd_send_signal(self._pidfd, signal_number)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def is_closing(self) -> bool:
        return self._state is ChildState.CLOSED

    def close(self) -> None:
        """Close the pipes; a worker still running (a failed start) is killed first."""
        if self._state is ChildState.CLOSED:
            return
        if self._returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.kill()
        self._unwatch()
        self._state = ChildState.CLOSED
        self._on_close(self)
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        self.close_child_ends()
        close_all(list(self._ours.values()))
        self._ours.clear()
        for pipe in self._pipes.values():
            pipe.close()


class _PipeEnd(asyncio.Protocol):
    """One pipe of a forked worker, forwarding to its protocol as asyncio's own would."""

    def __init__(self, child: ForkedChild, fd: int) -> None:
        self._child = child
        self._fd = fd

    def data_received(self, data: bytes) -> None:
        self._child._call(self._child._protocol.pipe_data_received, self._fd, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._child._call(self._child._protocol.pipe_connection_lost, self._fd, exc)


def close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)
