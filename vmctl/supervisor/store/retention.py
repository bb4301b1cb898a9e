"""Pruning: ended executions (with their events) and closed sessions past the retention.

A prune runs as many short write transactions, each removing at most
:data:`EXECUTIONS_PER_STEP` executions, so the writer (and every running execution's
event commits) never waits long behind it. Then the free pages are given back to the
file system (``PRAGMA incremental_vacuum``) when the store was made with
``auto_vacuum = INCREMENTAL`` (every store made by this vmctl; an older one reuses them).
"""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

EXECUTIONS_PER_STEP = 500
VACUUM_PAGES_PER_STEP = 4096  # 16 MiB of 4 KiB pages per transaction


class Pruned(NamedTuple):
    executions: int
    events: int
    sessions: int


def prune_step(conn: sqlite3.Connection, cutoff: str | None, keep: int | None) -> Pruned:
    """Remove up to :data:`EXECUTIONS_PER_STEP` ended executions older than ``cutoff`` (a
    timestamp) or beyond the newest ``keep``, their events, and closed sessions ended
    before ``cutoff`` that have no execution left. Zero executions: nothing more to do."""
    if keep is not None:
        found = conn.execute(
            "SELECT id, session_id, started_at FROM executions WHERE status != 'running'"
            " ORDER BY started_at DESC, rowid DESC LIMIT ? OFFSET ?",
            (EXECUTIONS_PER_STEP, keep),
        ).fetchall()
    elif cutoff is not None:
        found = conn.execute(
            "SELECT id, session_id, started_at FROM executions"
            " WHERE status != 'running' AND ended_at < ? LIMIT ?",
            (cutoff, EXECUTIONS_PER_STEP),
        ).fetchall()
    else:
        return Pruned(0, 0, 0)
    events = 0
    pruned_through: dict[str, str] = {}
    for execution_id, session_id, started_at in found:
        events += conn.execute(
            "DELETE FROM events WHERE execution_id = ?", (execution_id,)
        ).rowcount
        conn.execute("DELETE FROM executions WHERE id = ?", (execution_id,))
        pruned_through[session_id] = max(started_at, pruned_through.get(session_id, ""))
    conn.executemany(
        "UPDATE sessions SET pruned_through = max(coalesce(pruned_through, ''), ?) WHERE id = ?",
        [(started_at, session_id) for session_id, started_at in pruned_through.items()],
    )
    sessions = 0
    if cutoff is not None or keep is not None:
        sessions = conn.execute(
            "DELETE FROM sessions WHERE status = 'closed'"
            " AND (? IS NULL OR closed_at < ?)"
            " AND NOT EXISTS (SELECT 1 FROM executions WHERE session_id = sessions.id)",
            (cutoff, cutoff),
        ).rowcount
    return Pruned(len(found), events, sessions)


def vacuum_step(conn: sqlite3.Connection) -> int:
    """Give up to :data:`VACUUM_PAGES_PER_STEP` free pages back; how many are still free."""
    conn.execute(f"PRAGMA incremental_vacuum({VACUUM_PAGES_PER_STEP})").fetchall()
    (free,) = conn.execute("PRAGMA freelist_count").fetchone()
    (mode,) = conn.execute("PRAGMA auto_vacuum").fetchone()
    return int(free) if mode == 2 else 0  # 2: INCREMENTAL; otherwise pages are only reused
