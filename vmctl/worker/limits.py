"""What one request runs under: its budget, its settings, and the slot that holds it.

:class:`RunningRequest` is created by the session for each request and handed down as an
argument. The callbacks that JavaScript or QuickJS call cannot be handed it (the interrupt
handler, the module normalizer, the console and ``require`` callables), so while the request
runs it also sits in the session's one :class:`RequestSlot`, where they read it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal, NamedTuple

Reason = Literal["cancel", "wall_ms", "cpu_ms"]


class Budget:
    """Wall-clock and CPU deadlines plus a cancel flag, checked on the JavaScript thread.

    Create it on that thread: the CPU deadline is measured with :func:`time.thread_time`,
    the CPU time of the thread that runs the script (the interrupt handler runs there too).
    :meth:`cancel` is the one method another thread may call.
    """

    def __init__(self, wall_ms: float = math.inf, cpu_ms: float = math.inf) -> None:
        self.wall_ms = wall_ms
        self.cpu_ms = cpu_ms
        self._wall_deadline = time.monotonic() + wall_ms / 1000
        self._cpu_start = time.thread_time()
        self._cpu_deadline = self._cpu_start + cpu_ms / 1000
        self.cancelled = False
        # Sticky: once spent, every later check stops too (pending jobs, the value's preview).
        self.tripped: Reason | None = None
        # Made by the first sleep only: most requests never wait for a timer.
        self._wake: threading.Event | None = None

    def cancel(self) -> None:
        """Ask the running script to stop; safe from any thread. The flag is set before the
        wake-up is read, and :meth:`sleep` makes its event before it reads the flag, so a
        cancel is never lost between the two threads."""
        self.cancelled = True
        if (wake := self._wake) is not None:
            wake.set()

    def sleep(self, seconds: float) -> None:
        """Wait up to ``seconds`` for a timer, never past the wall deadline; a cancel ends
        the wait at once. The caller checks :meth:`expired` afterwards."""
        if self._wake is None:
            self._wake = threading.Event()
        remaining = min(seconds, self._wall_deadline - time.monotonic())
        if remaining > 0 and not self.cancelled:
            self._wake.wait(remaining)

    def expired(self) -> bool:
        if self.tripped is None:
            self.tripped = self._check()
        return self.tripped is not None

    def cpu_used_ms(self) -> float:
        return (time.thread_time() - self._cpu_start) * 1000

    def _check(self) -> Reason | None:
        if self.cancelled:
            return "cancel"
        if time.monotonic() >= self._wall_deadline:
            return "wall_ms"
        if time.thread_time() >= self._cpu_deadline:
            return "cpu_ms"
        return None


class RunningRequest(NamedTuple):
    """One request as the JavaScript thread runs it: its id, budget and template settings.

    A NamedTuple, not a dataclass: ``dataclasses`` imports ``inspect``, about 5 ms of
    every worker start.
    """

    id: int
    budget: Budget
    # The resolver's extensions (``runtime.extensions``), tried in order on an import.
    extensions: tuple[str, ...]
    # The host modules ``require(name)`` may return (``runtime.modules``).
    modules: frozenset[str]


class RequestSlot:
    """The request that is running, for the callbacks that cannot be handed it.

    The session owns it and fills it with :meth:`hold` for exactly one request at a time;
    everything runs on the JavaScript thread, so it needs no lock. A cancel from the reader
    thread never comes through here: it goes to the budget through the inbox.
    """

    def __init__(self) -> None:
        self.current: RunningRequest | None = None

    @contextmanager
    def hold(self, request: RunningRequest) -> Iterator[None]:
        """Make ``request`` the current one until the block ends, however it ends."""
        if self.current is not None:
            raise RuntimeError(
                f"request {request.id} cannot start while request {self.current.id} runs"
            )
        self.current = request
        try:
            yield
        finally:
            self.current = None
