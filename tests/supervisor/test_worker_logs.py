"""Worker logs on disk: trimmed before a worker starts, swept after their retention."""

from __future__ import annotations

import os
from pathlib import Path

from vmctl.api.models import Session, SessionStatus
from vmctl.supervisor.sessions.worker_logs import CARRY_BYTES, RETENTION_SECONDS, sweep, trim
from vmctl.supervisor.store.models import new_id, timestamp

NOW = 2_000_000_000.0
DAY = 24 * 3600


def _lines(count: int, width: int = 99) -> bytes:
    return b"".join(f"{i:0{width}d}\n".encode() for i in range(count))


def test_a_long_log_keeps_its_newest_whole_lines_under_a_note(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    log.write_bytes(_lines(1000))  # 100,000 bytes
    log.chmod(0o600)
    trim(str(log), keep=25_050)
    note, first, *rest = log.read_bytes().splitlines(keepends=True)
    assert note == b"[vmctl: 75000 earlier bytes of this log were removed]\n"
    assert first == _lines(1000)[75_000:75_100]  # the first whole line of the kept bytes
    assert b"".join([first, *rest]) == _lines(1000)[75_000:]
    assert log.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["worker.log"]


def test_a_short_or_missing_log_is_left_as_it_is(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    trim(str(log))
    assert not log.exists()
    log.write_bytes(_lines(10))
    trim(str(log), keep=len(_lines(10)))
    assert log.read_bytes() == _lines(10)


def test_trimming_at_every_start_bounds_the_log(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    for _ in range(5):  # each "worker" writes 3 MiB
        trim(str(log))
        with log.open("ab") as file:
            file.write(_lines(3 * 1024 * 1024 // 100))
        assert log.stat().st_size < CARRY_BYTES + 3 * 1024 * 1024 + 100


def _session(status: SessionStatus, closed_days_ago: float | None = None) -> Session:
    closed_at = None if closed_days_ago is None else timestamp(NOW - closed_days_ago * DAY)
    return Session(
        id=new_id(), vm_id=new_id(), workspace_id="w", base_commit_oid="c",
        worktree_path="/tmp", status=status, created_at=timestamp(NOW - 30 * DAY),
        closed_at=closed_at,
    )  # fmt: skip


def test_the_sweep_removes_closed_sessions_past_retention_and_old_strays(tmp_path: Path) -> None:
    expired = _session("closed", closed_days_ago=8)
    recent = _session("closed", closed_days_ago=6)
    crashed = _session("crashed")
    ready = _session("ready")
    for session in (expired, recent, crashed, ready):
        (tmp_path / session.id).mkdir()
        (tmp_path / session.id / "worker.log").write_text("log\n")
    old_stray, new_stray = tmp_path / "old-stray", tmp_path / "new-stray"
    for stray in (old_stray, new_stray):
        stray.mkdir()
    os.utime(old_stray, (NOW - RETENTION_SECONDS - 1, NOW - RETENTION_SECONDS - 1))
    os.utime(new_stray, (NOW - 1, NOW - 1))
    (tmp_path / "a-file").write_text("not a session directory\n")
    sessions = [expired, recent, crashed, ready]
    assert sorted(sweep(str(tmp_path), sessions, now=NOW)) == sorted([expired.id, "old-stray"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [recent.id, crashed.id, ready.id, "new-stray", "a-file"]
    )
    assert sweep(str(tmp_path / "missing"), sessions, now=NOW) == []
