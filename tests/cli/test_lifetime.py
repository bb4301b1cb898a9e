"""``vmctl up``, ``status``, ``down`` and ``logs`` with a temporary VMCTL_HOME."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from click.testing import Result

from cli.runner import invoke
from real_daemon import free_port, wait_until
from vmctl.cli.daemon import is_healthy, stop
from vmctl.cli.daemon_record import DaemonRecord, read_record, write_record

VMCTL = [sys.executable, "-m", "vmctl.cli.main"]
READ_TIMEOUT = 10.0


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A VMCTL_HOME whose recorded daemon, if a test left one, is stopped afterwards."""
    home = tmp_path / "home"
    yield home
    record = read_record(home)
    if record is not None and psutil.pid_exists(record.pid):
        stop(record.pid)


def vmctl_in(home: Path, *args: str) -> Result:
    return invoke(list(args), {"VMCTL_HOME": str(home)})


def test_up_detach_status_logs_down(home: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    started = vmctl_in(home, "up", "--detach", "--listen", f"127.0.0.1:{port}")
    assert started.exit_code == 0, started.output
    assert started.stdout.startswith(f"vmctl daemon running at {url} (pid ")
    record = read_record(home)
    assert record is not None
    assert (record.url, record.log_path) == (url, str(home / "daemon.log"))
    assert record.db_path == str(home / "vmctl.db")
    assert record.create_time == psutil.Process(record.pid).create_time()

    status = vmctl_in(home, "status")
    assert status.exit_code == 0
    assert status.stdout.splitlines()[0] == "vmctl daemon running"
    assert f"URL:       {url}" in status.stdout
    assert "Sessions:  0 live" in status.stdout
    as_json = json.loads(vmctl_in(home, "--json", "status").stdout)
    assert as_json["running"] is True and as_json["record"]["pid"] == record.pid

    for again in (["up", "--detach"], ["up"]):
        repeated = vmctl_in(home, *again)
        assert repeated.exit_code == 0
        assert repeated.stdout == f"vmctl daemon already running at {url} (pid {record.pid})\n"

    logs = vmctl_in(home, "logs")
    assert f"vmctl listening on {url}" in logs.stdout
    assert len(vmctl_in(home, "logs", "--tail", "2").stdout.splitlines()) == 2

    stopped = vmctl_in(home, "down")
    assert stopped.exit_code == 0
    assert stopped.stdout == f"vmctl daemon stopped (pid {record.pid})\n"
    assert read_record(home) is None
    assert not psutil.pid_exists(record.pid)
    assert not is_healthy(url)
    after = vmctl_in(home, "status")
    assert after.exit_code == 1
    assert after.stdout == f"vmctl daemon not running (no record in {home})\n"


def test_client_commands_find_the_recorded_daemon(home: Path) -> None:
    port = free_port()
    options = ["--max-sessions", "3", "--handshake-timeout", "2.5"]
    assert (
        vmctl_in(home, "up", "--detach", "--listen", f"127.0.0.1:{port}", *options).exit_code == 0
    )
    try:
        record = read_record(home)
        assert record is not None
        assert psutil.Process(record.pid).cmdline()[-4:] == options  # passed through
        health = vmctl_in(home, "ops", "health")  # no --server-url, no VMCTL_URL
        assert (health.exit_code, health.stdout) == (0, "ok\n")
    finally:
        assert vmctl_in(home, "down").exit_code == 0


def test_a_daemon_that_cannot_start_fails_at_once_with_its_log(home: Path) -> None:
    # Something that is not a vmctl daemon holds the port: the daemon cannot bind.
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        began = time.monotonic()
        result = vmctl_in(home, "up", "--detach", "--listen", f"127.0.0.1:{port}")
        took = time.monotonic() - began
    assert result.exit_code == 1
    assert "Error: the daemon exited before it was ready" in result.stderr
    assert "--- last lines of" in result.stderr
    assert read_record(home) is None
    assert took < 15  # raced against its exit, not the full readiness timeout


def test_a_record_of_a_dead_pid_is_stale(home: Path) -> None:
    home.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(10)
    write_record(home, DaemonRecord(pid=proc.pid, url="http://127.0.0.1:1",
                 started_at="2026-11-21T09:00:00.000Z", create_time=1.0, db_path="x"))  # fmt: skip
    status = vmctl_in(home, "status")
    assert status.exit_code == 1
    assert status.stdout.startswith(f"vmctl daemon not running (stale record: pid {proc.pid} ")
    down = vmctl_in(home, "down")
    assert down.exit_code == 0
    assert "removed the stale record" in down.stdout
    assert read_record(home) is None


def test_a_reused_pid_is_not_taken_for_the_daemon(home: Path) -> None:
    home.mkdir()
    me = psutil.Process()  # alive, but not a vmctl daemon
    write_record(home, DaemonRecord(pid=me.pid, url="http://127.0.0.1:1",
                 started_at="2026-11-21T09:00:00.000Z", create_time=me.create_time(),
                 db_path="x"))  # fmt: skip
    assert "stale record" in vmctl_in(home, "status").stdout
    assert vmctl_in(home, "down").exit_code == 0  # and it did not signal us


def test_up_in_the_foreground_becomes_the_daemon(home: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "VMCTL_HOME": str(home)}
    argv = [*VMCTL, "up", "--listen", f"127.0.0.1:{port}"]
    with subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True) as proc:
        try:
            wait_until(lambda: is_healthy(url, 0.5) or proc.poll() is not None, READ_TIMEOUT)
            record = read_record(home)
            assert record is not None and record.pid == proc.pid  # exec kept the pid
            assert record.log_path is None
            assert vmctl_in(home, "status").exit_code == 0
            assert "its terminal" in vmctl_in(home, "logs").stderr
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.stderr is not None
        assert f"vmctl listening on {url}" in proc.stderr.read()


def test_up_refuses_a_listen_address_without_a_port(home: Path) -> None:
    for listen in ("localhost", "127.0.0.1:0", "127.0.0.1:http"):
        result = vmctl_in(home, "up", "--detach", "--listen", listen)
        assert result.exit_code == 2
        assert "HOST:PORT" in result.stderr


def test_logs_of_a_session_worker(home: Path) -> None:
    session_id = str(uuid.uuid4())
    log = home / "sessions" / session_id / "worker.log"
    log.parent.mkdir(parents=True)
    log.write_text("worker says hi\n")
    assert vmctl_in(home, "logs", "--session", session_id).stdout == "worker says hi\n"
    missing = vmctl_in(home, "logs", "--session", str(uuid.uuid4()))
    assert missing.exit_code == 1
    assert "no worker log for session" in missing.stderr
    assert vmctl_in(home, "logs", "--session", "../../etc").exit_code == 2


def test_logs_without_a_log_say_how_to_get_one(home: Path) -> None:
    result = vmctl_in(home, "logs")
    assert result.exit_code == 1
    assert "vmctl up --detach" in result.stderr


def read_until(stream: int, needle: bytes, timeout: float = READ_TIMEOUT) -> bytes:
    """Read from the fd ``stream`` until ``needle`` was seen (bounded)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        left = deadline - time.monotonic()
        readable, _, _ = select.select([stream], [], [], max(left, 0))
        if not readable:
            raise AssertionError(f"{needle!r} not seen within {timeout}s; got {seen!r}")
        chunk = os.read(stream, 65536)
        if not chunk:
            raise AssertionError(f"EOF before {needle!r}; got {seen!r}")
        seen += chunk
    return seen


def test_logs_follow_prints_appended_lines_until_ctrl_c(home: Path) -> None:
    home.mkdir()
    log = home / "daemon.log"
    log.write_text("first line\n")
    env = {**os.environ, "VMCTL_HOME": str(home)}
    with subprocess.Popen([*VMCTL, "logs", "--follow"], env=env, stdout=subprocess.PIPE) as proc:
        try:
            assert proc.stdout is not None
            read_until(proc.stdout.fileno(), b"first line\n")
            with open(log, "a") as file:
                file.write("appended later\n")
            read_until(proc.stdout.fileno(), b"appended later\n")
            proc.send_signal(signal.SIGINT)
            assert proc.wait(10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
