"""The budget of one request: what the engine's interrupt handler checks."""

from __future__ import annotations

import math
import time
from typing import Literal

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

    def cancel(self) -> None:
        """Ask the running script to stop (a plain attribute store: safe from any thread)."""
        self.cancelled = True

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
