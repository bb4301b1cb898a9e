"""Worker logs through a real daemon: bounded across restarts, swept after retention."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx

from real_daemon import running_daemon, session_body
from vmctl.supervisor.sessions.worker_logs import CARRY_BYTES, RETENTION_SECONDS
from vmctl.supervisor.store.models import timestamp

# More than a worker's log may carry over, in whole lines.
FLOOD = b"".join(f"earlier worker line {i:08d}\n".encode() for i in range(400_000))


def _log(home: Path, session_id: str) -> Path:
    return home / "sessions" / session_id / "worker.log"


def _session(api: httpx.Client, worktree: Path) -> dict[str, Any]:
    template = api.post("/templates", json={"name": f"t-{time.monotonic_ns()}"}).json()
    response = api.post("/sessions", json=session_body(template["id"], worktree))
    assert response.status_code == 201, response.text
    session: dict[str, Any] = response.json()
    return session


def test_restarts_cannot_grow_a_sessions_log(tmp_path: Path, worktree: Path) -> None:
    home = tmp_path / "home"
    with running_daemon(home) as daemon, daemon.client() as api:
        session = _session(api, worktree)
        log = _log(home, session["id"])
        for _ in range(3):
            with log.open("ab") as file:  # as if the worker had written it
                file.write(FLOOD)
            response = api.post(f"/sessions/{session['id']}/restart")
            assert response.status_code == 200, response.text
            # What was carried over, and what the new worker wrote since (little or nothing).
            assert CARRY_BYTES - 64 <= log.stat().st_size <= CARRY_BYTES + 64 * 1024
            note, text = log.read_bytes().split(b"\n", 1)
            assert note.startswith(b"[vmctl: ") and note.endswith(b" of this log were removed]")
            assert FLOOD.splitlines(keepends=True)[-1] in text
        api.post(f"/sessions/{session['id']}/close")


def test_the_logs_of_sessions_closed_past_retention_go_at_start(
    tmp_path: Path, worktree: Path
) -> None:
    home = tmp_path / "home"
    with running_daemon(home) as first, first.client() as api:
        expired, recent, crashed = (_session(api, worktree) for _ in range(3))
        for session in (expired, recent):
            api.post(f"/sessions/{session['id']}/close")
    # `crashed` was live when the daemon stopped: it is crashed now, and keeps its log.
    long_ago = timestamp(time.time() - RETENTION_SECONDS - 60)
    with sqlite3.connect(first.db_path) as conn:
        conn.execute("UPDATE sessions SET closed_at = ? WHERE id = ?", (long_ago, expired["id"]))
    conn.close()
    stray = home / "sessions" / "not-a-session"
    stray.mkdir()
    os.utime(stray, (time.time() - RETENTION_SECONDS - 60,) * 2)
    for session in (expired, recent, crashed):
        assert _log(home, session["id"]).exists()
    with running_daemon(home) as second, second.client() as api:
        assert api.get(f"/sessions/{crashed['id']}").json()["status"] == "crashed"
        assert not _log(home, expired["id"]).parent.exists()
        assert not stray.exists()
        assert _log(home, recent["id"]).exists() and _log(home, crashed["id"]).exists()
        assert api.get(f"/sessions/{expired['id']}").json()["status"] == "closed"
