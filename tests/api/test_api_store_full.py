"""A store whose disk is full: writes answer 507 STORE_FULL, reads go on, shutdown finishes.

The store lives on a real, small tmpfs the test mounts (it runs as root, as CI does here).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from real_daemon import error_code, running_daemon, start_session, wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(api: httpx.Client, session_id: str) -> httpx.Response:
    """Run floods until one is refused for lack of room; that answer."""
    flood = "for (let i = 0; i < 20000; i++) console.log('x'.repeat(100) + i); 1"
    for _ in range(50):
        response = api.post("/executions/repl", json={"session_id": session_id, "input": flood})
        if response.status_code != 201:
            return response
    raise AssertionError("50 floods of 2 MB each fit on a 3 MiB disk")


def test_a_full_store_answers_507_and_keeps_serving_reads(tmp_path: Path, worktree: Path) -> None:
    with small_disk(tmp_path / "disk", "3m") as disk:
        args = ["--db", str(disk / "vmctl.db"), "--retain", "forever"]
        with running_daemon(tmp_path / "home", args) as daemon, daemon.client() as api:
            session = start_session(api, worktree, max_events=100_000, max_output_kb=8192)
            refused = _fill(api, session["id"])
            assert refused.status_code == 507, refused.text
            assert error_code(refused) == "STORE_FULL"
            # Reads go on.
            assert api.get(f"/sessions/{session['id']}").status_code == 200
            assert api.get("/executions", params={"session_id": session["id"]}).status_code == 200
            assert api.get("/api/v1/health".removeprefix("/api/v1")).status_code == 200
        # The daemon stopped (running_daemon asserts nothing hung: it waited for its exit).
        assert daemon.proc.returncode == 0, daemon.log()[-2000:]


def _stored_status(db_path: Path, execution_id: str) -> str | None:
    """The execution's status as stored; None while it has no row."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT status FROM executions WHERE id = ?", (execution_id,)).fetchone()
    conn.close()
    return None if row is None else str(row[0])


def test_an_ended_record_the_full_store_refused_is_kept_and_written_once_there_is_room(
    tmp_path: Path, worktree: Path
) -> None:
    with small_disk(tmp_path / "disk", "3m") as disk:
        ballast = disk / "ballast"
        db = disk / "vmctl.db"
        args = ["--db", str(db), "--retain", "forever"]
        with running_daemon(tmp_path / "home", args) as daemon, daemon.client() as api:
            session = start_session(api, worktree, max_events=100_000, max_output_kb=8192)
            ballast.write_bytes(bytes(512 * 1024))  # room to give back later
            refused = _fill(api, session["id"])
            assert refused.status_code == 507 and error_code(refused) == "STORE_FULL"
            details = refused.json()["error"]["details"]
            execution_id = details["execution_id"]
            assert details["status"] == "ok" and details["events_not_recorded"] > 0
            # The live process knows it ended, and says so, though the store cannot yet.
            assert api.get(f"/executions/{execution_id}").json()["status"] == "ok"
            # Stored as running, or not at all when the disk was full before its first
            # group commit (the running row travels with its first events).
            assert _stored_status(db, execution_id) in ("running", None)
            ballast.unlink()
            wait_until(lambda: _stored_status(db, execution_id) == "ok", timeout=20)
            assert api.get(f"/sessions/{session['id']}").json()["status"] == "ready"


def _fill_disk(path: Path) -> None:
    """Write ``path`` until the disk has no room left."""
    with path.open("wb") as file, contextlib.suppress(OSError):
        while True:
            file.write(bytes(64 * 1024))
            file.flush()


def test_the_daemon_starts_on_a_full_disk_serves_reads_and_recovers_once_it_can(
    tmp_path: Path, worktree: Path
) -> None:
    with small_disk(tmp_path / "disk", "3m") as disk:
        home = tmp_path / "home"
        args = ["--db", str(disk / "vmctl.db")]
        with running_daemon(home, args) as first, first.client() as api:
            session = start_session(api, worktree)
            first.stop(signal.SIGKILL)  # leaves its session ready, for the next start to mark
        _fill_disk(disk / "ballast")
        with running_daemon(home, args) as second, second.client() as api:
            assert api.get(f"/templates/{session['vm_id']}").status_code == 200  # reads
            refused = api.post("/templates", json={"name": "another"})
            assert refused.status_code == 507 and error_code(refused) == "STORE_FULL"
            (disk / "ballast").unlink()
            wait_until(
                lambda: api.get(f"/sessions/{session['id']}").json()["status"] == "crashed",
                timeout=20,
            )
        assert "marks what the previous daemon left once it can write" in second.log()
