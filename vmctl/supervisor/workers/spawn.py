"""How a worker process is set up: its environment, resource limits and parent-death signal.

A :class:`SpawnSpec` says what to start. :func:`child_setup` builds the
``preexec_fn`` that runs in the child between fork and exec (launcher.py
spawns with it); a worker forked by the fork server (forkserver.py) gets the
same :func:`worker_env`, :func:`worker_rlimits` and parent-death signal
(vmctl/lifeline.py), applied there. Everything is computed here in the
parent; the child only makes system calls, because after a fork only the
forking thread exists and any lock another thread held (the import lock, a
logging lock) stays held forever.
"""

from __future__ import annotations

import contextlib
import os
import resource
from collections.abc import Callable, Mapping

import msgspec

from vmctl.lifeline import die_with_parent
from vmctl.supervisor.config import DEFAULT_HANDSHAKE_TIMEOUT

MIB = 1024 * 1024
# The address-space cap is the engine heap twice over (a value or console text
# is copied once more into Python while it crosses the boundary) plus a base
# for the interpreter, quickjs, msgspec, thread stacks and glibc malloc arenas.
# Measured for Python 3.11 + quickjs-ng + a second thread: ~170 MiB VmSize idle,
# ~240 MiB peak; 512 MiB leaves room for the worker's own buffers.
ADDRESS_SPACE_BASE_MB = 512
OPEN_FILES = 256  # a worker needs a handful: its pipes, the files it is reading
FILE_SIZE_BYTES = 64 * MIB  # workers do not write files; this bounds a runaway one


class SpawnSpec(msgspec.Struct, frozen=True):
    """How to start one worker."""

    argv: tuple[str, ...]
    cwd: str  # the worktree
    mem_mb: int  # the engine's heap limit; the address-space cap is set well above it
    stderr_log: str | None = None  # a file the worker's stderr is appended to
    env: dict[str, str] = {}  # added to the minimal environment
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT


def address_space_bytes(mem_mb: int) -> int:
    return (2 * mem_mb + ADDRESS_SPACE_BASE_MB) * MIB


def worker_env(home: str, extra: Mapping[str, str]) -> dict[str, str]:
    """The whole environment of a worker: a few fixed variables plus ``extra``."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": home,
        # The worktree is the cwd: a file there must never shadow a module of
        # the worker (python -m would otherwise put the cwd first on sys.path).
        "PYTHONSAFEPATH": "1",
        # glibc reserves 64 MiB of address space per thread arena; two arenas
        # keep the RLIMIT_AS headroom predictable.
        "MALLOC_ARENA_MAX": "2",
    }
    env.update(extra)
    return env


def worker_rlimits(mem_mb: int) -> tuple[tuple[int, int], ...]:
    """The resource limits of a worker whose engine heap limit is ``mem_mb``: (resource, value).

    Each is set as both soft and hard limit, so the worker cannot raise it.
    """
    return (
        (resource.RLIMIT_AS, _capped(resource.RLIMIT_AS, address_space_bytes(mem_mb))),
        (resource.RLIMIT_NOFILE, _capped(resource.RLIMIT_NOFILE, OPEN_FILES)),
        (resource.RLIMIT_FSIZE, _capped(resource.RLIMIT_FSIZE, FILE_SIZE_BYTES)),
        (resource.RLIMIT_CORE, 0),  # a crashing sandbox leaves no core files behind
    )


def child_setup(mem_mb: int) -> Callable[[], None]:
    """The ``preexec_fn`` for a worker whose engine heap limit is ``mem_mb``."""
    limits = worker_rlimits(mem_mb)
    parent = os.getpid()

    def setup() -> None:
        for which, value in limits:
            resource.setrlimit(which, (value, value))
        die_with_parent(parent)
        _close_on_exec_above_stderr()

    return setup


def _close_on_exec_above_stderr() -> None:
    """A ``preexec_fn`` step: let the worker inherit its three pipes and nothing else.

    uvloop's ``subprocess_exec`` ignores ``close_fds`` and would hand the worker the
    daemon's descriptors (its listening socket, the SQLite files). Marking them
    close-on-exec drops them at exec without closing uvloop's own pipe, which reports a
    failed exec back to the parent.
    """
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2:
            with contextlib.suppress(OSError):  # the listing's own descriptor, gone by now
                os.set_inheritable(fd, False)


def _capped(which: int, value: int) -> int:
    """``value``, or our own hard limit when that is lower (a hard limit cannot be raised)."""
    hard = resource.getrlimit(which)[1]
    return value if hard == resource.RLIM_INFINITY else min(value, hard)
