"""The daemon record and the check that a recorded pid is still that daemon."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from vmctl.cli.daemon_record import (
    DaemonRecord,
    find_daemon,
    read_record,
    record_path,
    remove_record,
    write_record,
)
from vmctl.cli.logfile import tail_offset


def record_for(pid: int, create_time: float) -> DaemonRecord:
    return DaemonRecord(
        pid=pid,
        url="http://127.0.0.1:1",
        started_at="2026-11-21T09:00:00.000Z",
        create_time=create_time,
        db_path="/tmp/vmctl.db",
    )


@pytest.fixture
def lookalike() -> Iterator[subprocess.Popen[bytes]]:
    """A process whose command line names vmctl.supervisor, as the daemon's does."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()", "-m", "vmctl.supervisor"],
        stdin=subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(10)


def test_record_round_trips_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    record = record_for(123, 1.5)
    write_record(tmp_path, record)
    assert read_record(tmp_path) == record
    assert [p.name for p in tmp_path.iterdir()] == ["daemon.json"]
    remove_record(tmp_path)
    assert read_record(tmp_path) is None
    remove_record(tmp_path)  # removing twice is fine


def test_an_unreadable_record_counts_as_none(tmp_path: Path) -> None:
    record_path(tmp_path).write_text("{not json")
    assert read_record(tmp_path) is None


def test_a_live_daemon_process_with_the_recorded_start_time_is_found(
    lookalike: subprocess.Popen[bytes],
) -> None:
    created = psutil.Process(lookalike.pid).create_time()
    found = find_daemon(record_for(lookalike.pid, created))
    assert found is not None and found.pid == lookalike.pid


def test_a_reused_pid_with_another_start_time_is_not_the_daemon(
    lookalike: subprocess.Popen[bytes],
) -> None:
    created = psutil.Process(lookalike.pid).create_time()
    assert find_daemon(record_for(lookalike.pid, created - 60)) is None


def test_a_live_process_that_is_not_the_daemon_is_not_found() -> None:
    me = psutil.Process()
    assert find_daemon(record_for(me.pid, me.create_time())) is None


def test_a_dead_pid_is_not_found() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(10)
    assert find_daemon(record_for(proc.pid, 0.0)) is None


@pytest.mark.parametrize(
    ("content", "lines", "expected"),
    [
        (b"a\nb\nc\n", 2, b"b\nc\n"),
        (b"a\nb\nc", 2, b"b\nc"),
        (b"a\nb\n", 5, b"a\nb\n"),
        (b"a\nb\n", 0, b""),
        (b"", 3, b""),
    ],
)
def test_tail_offset_finds_the_start_of_the_last_lines(
    content: bytes, lines: int, expected: bytes
) -> None:
    file = io.BytesIO(content)
    assert content[tail_offset(file, lines) :] == expected


def test_tail_offset_crosses_block_boundaries() -> None:
    content = b"".join(b"%06d\n" % i for i in range(50_000))  # 350 KB, several blocks
    file = io.BytesIO(content)
    assert content[tail_offset(file, 3) :] == b"049997\n049998\n049999\n"
