"""The parent-death signal: a process that must not outlive the one that started it.

Both ways a worker comes to be use it in the child, between fork and its first
line of worker code: the supervisor's spawn (for a spawned worker and for the
fork server) and the fork server's fork (for a forked worker). So a SIGKILLed
daemon takes the fork server down, and the fork server its workers. Only
system calls happen here: after a fork only the forking thread exists, and a
lock another thread held would stay held forever.
"""

from __future__ import annotations

import ctypes
import os
import signal

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)

# Exit status of a child that could not arm its parent-death signal.
CANNOT_ARM = 126


def die_with_parent(parent: int) -> None:
    """In a child just forked by ``parent``: be SIGKILLed when it dies, or exit now.

    ``parent`` is the pid read before the fork: read after it, it could already be
    the pid of whoever adopted the child. The signal fires when the *thread* that
    forked dies, so fork from a thread that lives as long as the parent (the event
    loop's thread, the fork server's only one), never from a pool thread.
    """
    if _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        os._exit(CANNOT_ARM)
    # The parent may have died between fork and prctl: then no signal will ever come.
    if os.getppid() != parent:
        os._exit(1)
