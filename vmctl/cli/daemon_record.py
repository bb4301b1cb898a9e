"""The record `vmctl up` keeps of the daemon it started: ``$VMCTL_HOME/daemon.json``.

A record alone proves nothing: the daemon may have died and its pid been
reused. :func:`find_daemon` therefore trusts a record only when the pid is
alive, its process started at the recorded time and runs ``vmctl.supervisor``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import msgspec
import psutil

from vmctl.daemon_options import default_home

RECORD_NAME = "daemon.json"
LOG_NAME = "daemon.log"
# psutil derives create_time from boot time and start ticks; the same process
# reads back the same value, a different process never within this margin.
CREATE_TIME_TOLERANCE = 0.05


class DaemonRecord(msgspec.Struct):
    pid: int
    url: str
    started_at: str
    create_time: float
    db_path: str
    log_path: str | None = None  # None: started in the foreground, logging to its terminal


def vmctl_home() -> Path:
    """``$VMCTL_HOME``, or ``~/.vmctl``, made absolute (not created), as the daemon finds it."""
    return Path(default_home())


def record_path(home: Path) -> Path:
    return home / RECORD_NAME


def read_record(home: Path) -> DaemonRecord | None:
    """The record in ``home``, or None when there is none (or it is unreadable)."""
    try:
        return msgspec.json.decode(record_path(home).read_bytes(), type=DaemonRecord)
    except (FileNotFoundError, msgspec.DecodeError):
        return None


def write_record(home: Path, record: DaemonRecord) -> None:
    """Write the record atomically: a reader sees the old file or the new one, never half.
    It is its owner's only, like everything in the home."""
    target = record_path(home)
    tmp = target.with_name(f".{RECORD_NAME}.{os.getpid()}.tmp")
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as file:
        file.write(msgspec.json.format(msgspec.json.encode(record), indent=2) + b"\n")
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, target)


def remove_record(home: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        record_path(home).unlink()


def is_daemon_process(proc: psutil.Process) -> bool:
    """True when ``proc`` is a live vmctl daemon (a zombie is not live)."""
    try:
        return proc.status() != psutil.STATUS_ZOMBIE and "vmctl.supervisor" in proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def find_daemon(record: DaemonRecord) -> psutil.Process | None:
    """The recorded daemon's process if it still runs; None for a dead or reused pid."""
    try:
        proc = psutil.Process(record.pid)
        same_start = abs(proc.create_time() - record.create_time) < CREATE_TIME_TOLERANCE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return proc if same_start and is_daemon_process(proc) else None


def running_record(home: Path) -> DaemonRecord | None:
    """The record in ``home`` if its daemon still runs."""
    record = read_record(home)
    return record if record is not None and find_daemon(record) is not None else None


class DaemonStatus(msgspec.Struct):
    """What `vmctl status` found out (its ``--json`` output)."""

    running: bool
    home: str
    record: DaemonRecord | None = None
    stale: bool = False  # a record exists but its pid is gone or is another program
    uptime_s: float | None = None
    active_sessions: int | None = None
    problem: str | None = None  # running but not answering, and why
