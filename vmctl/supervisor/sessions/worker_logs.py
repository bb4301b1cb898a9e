"""Worker logs: each session's ``worker.log``, bounded across restarts, removed after retention.

A session's workers append their stderr to ``$VMCTL_HOME/sessions/<id>/worker.log``
(``DaemonConfig.worker_log_path``), each at most ``STDERR_LOG_MAX_BYTES`` (16 MiB,
``workers/pipes.py``). Two rules keep what is on disk bounded:

- Per session: before each of its workers starts (create, restart), :func:`trim` keeps
  only the newest :data:`CARRY_BYTES` of what earlier workers wrote, from a line start,
  under one line that says how much went. However often a session restarts, its log
  holds at most ``CARRY_BYTES + STDERR_LOG_MAX_BYTES`` and two notes.
- Over time: :func:`sweep` removes the directory of every session closed more than
  :data:`RETENTION_SECONDS` ago, and any directory of a session the store does not know
  that nothing has touched for as long. A crashed session keeps its log (it is
  bounded, and says why it crashed) until it is closed. The manager sweeps when the
  daemon starts, before it serves, and every :data:`SWEEP_INTERVAL_SECONDS` after.

:func:`trim` and :func:`sweep` are blocking file-system work, run in a thread;
:func:`swept` is the manager's one hook for the sweeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import functools
import logging
import os
import shutil
import time
from collections.abc import AsyncIterator, Iterable

from vmctl.api.models import Session
from vmctl.supervisor.config import DaemonConfig
from vmctl.supervisor.sessions.background import repeated
from vmctl.supervisor.store import Store

logger = logging.getLogger("vmctl.sessions")

# What a worker's log keeps of the workers before it.
CARRY_BYTES = 4 * 1024 * 1024
# How long the logs of a closed session stay: a week to look into what happened.
RETENTION_SECONDS = 7 * 24 * 3600
SWEEP_INTERVAL_SECONDS = 3600


@contextlib.asynccontextmanager
async def swept(store: Store, config: DaemonConfig) -> AsyncIterator[None]:
    """Sweep now, then every :data:`SWEEP_INTERVAL_SECONDS` until the block ends."""
    sweep_once = functools.partial(_sweep_once, store, config)
    await sweep_once()
    async with repeated(sweep_once, SWEEP_INTERVAL_SECONDS, "sweep-worker-logs", at_once=False):
        yield


async def _sweep_once(store: Store, config: DaemonConfig) -> None:
    """One sweep; a failure is logged (the logs stay until the next one), never raised."""
    # Every session's directory is a child of this one (DaemonConfig.worker_log_path).
    sessions_dir = os.path.dirname(os.path.dirname(config.worker_log_path("-")))
    try:
        removed = await asyncio.to_thread(sweep, sessions_dir, await store.list_sessions())
    except Exception:
        logger.exception("sweeping the worker logs of closed sessions failed")
        return
    if removed:
        logger.info("removed the worker logs of %d session(s) past retention", len(removed))


def trim(path: str, keep: int = CARRY_BYTES) -> None:
    """Cut the log at ``path`` to its newest ``keep`` bytes, from a line start, if longer.

    In place, so that ``vmctl logs --follow`` (which starts again from the top of a file
    that shrank) goes on following it. Call it only while no worker of the session runs.
    """
    try:
        flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC
        log = open(os.open(path, flags), "r+b")  # noqa: SIM115 (closed just below)
    except FileNotFoundError:
        return
    except OSError as exc:  # not a file we made: leave it, the session starts anyway
        logger.warning("could not trim the worker log %r: %s", path, exc)
        return
    with log:
        size = log.seek(0, os.SEEK_END)
        if size <= keep:
            return
        log.seek(size - keep)
        kept = log.read(keep)
        kept = kept[kept.find(b"\n") + 1 :]  # from the first whole line (all of it if none)
        log.seek(0)
        log.write(f"[vmctl: {size - len(kept)} earlier bytes of this log were removed]\n".encode())
        log.write(kept)
        log.truncate()


def sweep(sessions_dir: str, sessions: Iterable[Session], now: float | None = None) -> list[str]:
    """Remove the directories in ``sessions_dir`` whose retention has passed; their names.

    ``sessions`` is every session the store knows.
    """
    now = time.time() if now is None else now
    closed_at = {s.id: _epoch(s.closed_at) if s.status == "closed" else None for s in sessions}
    try:
        entries = list(os.scandir(sessions_dir))
    except FileNotFoundError:
        return []
    removed = []
    for entry in entries:
        if not entry.is_dir(follow_symlinks=False):
            continue
        if entry.name in closed_at:
            ended = closed_at[entry.name]
            if ended is None:
                continue  # not closed: its log may still be read, and is bounded
        else:
            ended = entry.stat(follow_symlinks=False).st_mtime  # unknown to the store
        if now - ended <= RETENTION_SECONDS:
            continue
        try:
            shutil.rmtree(entry.path)
        except OSError as exc:
            logger.warning("could not remove the expired session log %r: %s", entry.path, exc)
        else:
            removed.append(entry.name)
    return removed


def _epoch(timestamp: str | None) -> float | None:
    if timestamp is None:
        return None
    return datetime.datetime.fromisoformat(timestamp).timestamp()
