"""Ctrl-C as ``KeyboardInterrupt``, except inside :meth:`Interrupts.held`, where it waits.

Python raises ``KeyboardInterrupt`` between any two bytecodes, and a terminal's
reader is often scheduled just as a line is written: a Ctrl-C typed on seeing
a line tends to land right after its write. Whatever must not be cut there
(a printed batch and the note of the last event printed) runs held, and the
interrupt is raised when it is done; a second Ctrl-C meanwhile is raised at once.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class Interrupts:
    def __init__(self) -> None:
        self._holding = False
        self._pending = False

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Our SIGINT handler for the block, where Python's own would be: a SIGINT the
        user's shell ignores (a background job's) stays ignored."""
        if (
            threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
        ):
            yield
            return
        previous = signal.signal(signal.SIGINT, self._on_sigint)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """A block a Ctrl-C does not cut: it is raised once the block is done."""
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
        if self._pending:
            self._pending = False
            raise KeyboardInterrupt

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if self._holding and not self._pending:
            self._pending = True
            return
        # A second Ctrl-C inside the block is not held: a write that blocks (a pager
        # that stopped reading) must not make vmctl deaf to the user.
        self._pending = False
        raise KeyboardInterrupt
