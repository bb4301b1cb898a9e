"""CPU time per operation, split by process: this one, the daemon, the workers.

Wall-clock latency says how long; CPU time says who spent it. Around a timed
loop a :class:`CpuMeter` reads the CPU seconds (user + system) of this process
(all its threads), of the daemon (all its threads, the store's included), and
of the workers (the descendants of the daemon, or ours when there is no
daemon: the live ones plus those already reaped, by us or by the fork server,
which counts as a worker too). In the worker scenarios this process is the
supervisor's side of the pipes. Linux counts CPU time in clock ticks (10 ms),
so a figure per operation is only as good as the loop is long.
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec
import psutil


class CpuPerOp(msgspec.Struct, frozen=True):
    """Milliseconds of CPU per operation in each process."""

    this_process_ms: float
    daemon_ms: float | None  # None: no daemon in this scenario
    workers_ms: float | None  # None: no workers in this scenario


class _Reading(msgspec.Struct, frozen=True):
    this_process: float
    daemon: float
    workers: float


class _Times(Protocol):
    """What psutil's ``cpu_times()`` gives (psutil has no type hints)."""

    user: float
    system: float


def _seconds(times: _Times) -> float:
    return float(times.user + times.system)


def _reaped_seconds(times: Any) -> float:
    return float(times.children_user + times.children_system)


def _children_seconds(parent: psutil.Process) -> float:
    total = _reaped_seconds(parent.cpu_times())
    for child in parent.children(recursive=True):
        try:
            # A live descendant's own time, and that of the children it reaped (the
            # fork server's workers).
            times = child.cpu_times()
            total += _seconds(times) + _reaped_seconds(times)
        except psutil.NoSuchProcess:
            continue  # exited between the listing and the read: its time is lost
    return total


class CpuMeter:
    """Reads CPU seconds when created, and again in :meth:`per_op`.

    ``daemon_pid``: the daemon to read, and whose children are the workers;
    without it the workers are this process's children. ``workers=False``: the
    scenario has none, and reports none.
    """

    def __init__(self, daemon_pid: int | None = None, *, workers: bool = True) -> None:
        self._self = psutil.Process()
        self._daemon = psutil.Process(daemon_pid) if daemon_pid is not None else None
        self._workers = workers
        self._start = self._read()

    def _read(self) -> _Reading:
        parent = self._daemon or self._self
        daemon = _seconds(self._daemon.cpu_times()) if self._daemon is not None else 0.0
        return _Reading(_seconds(self._self.cpu_times()), daemon, _children_seconds(parent))

    def per_op(self, ops: int) -> CpuPerOp:
        """The CPU spent since the meter was created, per operation, in ms."""
        now, then = self._read(), self._start
        scale = 1000 / max(ops, 1)
        return CpuPerOp(
            this_process_ms=(now.this_process - then.this_process) * scale,
            daemon_ms=(now.daemon - then.daemon) * scale if self._daemon is not None else None,
            workers_ms=(now.workers - then.workers) * scale if self._workers else None,
        )
