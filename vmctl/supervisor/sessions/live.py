"""A session whose worker this daemon runs, and the lock of each session's lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import time
from collections.abc import AsyncIterator

from vmctl.api.models import Session
from vmctl.supervisor.sessions.errors import Conflict
from vmctl.supervisor.workers import WorkerHandle

# Why a session whose worker died on its own was retired (see LiveSession.retired_because).
WORKER_DIED = "its worker died"
# The longest a request waits for the record of the execution before it (LiveSession.turn).
RECORDING_WAIT = 1.0  # seconds


class LiveSession:
    """A session with a worker: its row as last written, its worker, its execution in flight.

    Whether the worker is up is the handle's to say (``handle.alive``). The session's
    own state is its turn: one execution at a time holds it, from the request to the
    record, a longer span than the worker is busy for.
    """

    def __init__(self, session: Session, handle: WorkerHandle, mem_mb: int) -> None:
        self.session = session
        self.handle = handle
        self.mem_mb = mem_mb  # applied at worker start; later changes wait for a restart
        # Why the manager took the session out of its table, set as it does: the
        # sentence of a close, restart or shutdown, or WORKER_DIED. From then on
        # nothing new is sent to this worker.
        self.retired_because: str | None = None
        self.watcher: asyncio.Task[None] | None = None
        # Monotonic moments for lifecycle timeouts (expiry.py): its creation, however
        # many workers ago; and the end of its last execution, or its start.
        self.born = time.monotonic() - _age(session.created_at)
        self.idle_since = time.monotonic()
        self._turn = asyncio.Lock()
        self._execution_id: str | None = None  # the execution holding the turn
        # Set once that execution has ended in the worker and only its record is being
        # committed: a request arriving then waits for the turn instead of being busy.
        self._recording: asyncio.Event | None = None

    @property
    def retired(self) -> bool:
        return self.retired_because is not None

    @property
    def retired_on_purpose(self) -> bool:
        """Closed, restarted or shut down while its worker was up: not a crash.

        A worker that died first is a crash whatever retired the session since (a
        close stops the worker only after the execution holding the turn is recorded,
        so for that execution a dead worker died on its own).
        """
        return self.retired_because not in (None, WORKER_DIED) and self.handle.alive

    @property
    def busy(self) -> bool:
        return self._turn.locked()

    @contextlib.asynccontextmanager
    async def turn(self, execution_id: str) -> AsyncIterator[None]:
        """Hold the session for one execution, or raise SESSION_BUSY at once.

        Only one wait: when the execution holding the turn has ended and its record is
        being committed, a client that was shown that record (a stream's end, a long-poll)
        may send its next request before the commit's task lets go of the turn. That
        request waits for the commit (at most RECORDING_WAIT), then takes the turn if no
        other request took it first.
        """
        if self._turn.locked():
            recording = self._recording
            if recording is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(recording.wait(), RECORDING_WAIT)
            if self._turn.locked():
                raise Conflict(
                    "SESSION_BUSY",
                    "Session is busy",
                    {"session_id": self.session.id, "execution_id": self._execution_id},
                )
        async with self._turn:
            self._execution_id = execution_id
            try:
                yield
            finally:
                self._execution_id = None
                self.idle_since = time.monotonic()
                recording, self._recording = self._recording, None
                if recording is not None:
                    recording.set()  # its waiters run once the lock below is released

    def recording(self) -> None:
        """The execution holding the turn has ended in the worker: only its record is left."""
        self._recording = asyncio.Event()

    async def wait_idle(self) -> None:
        """Until the execution in flight, if any, is recorded."""
        async with self._turn:
            pass


def _age(created_at: str) -> float:
    """Seconds since ``created_at`` (an RFC 3339 timestamp), never less than 0."""
    created = datetime.datetime.fromisoformat(created_at)
    return max(0.0, time.time() - created.timestamp())


class SessionLocks:
    """One lock per session for its lifecycle changes, dropped when nobody holds or waits."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, session_id: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(session_id, (None, 0))
        lock = lock or asyncio.Lock()
        self._locks[session_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[session_id]
            if users == 1:
                del self._locks[session_id]
            else:
                self._locks[session_id] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)
