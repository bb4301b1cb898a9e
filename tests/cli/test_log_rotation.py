"""The daemon's log rotates by size, and `vmctl logs --follow` follows it across a rotation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from cli.runner import VmctlProcess
from real_daemon import free_port, wait_until

MAX_BYTES = 20_000


def test_the_daemon_log_rotates_by_size_and_keeps_two_older_files(tmp_path: Path) -> None:
    home = tmp_path / "home"
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "daemon.log"
    port = free_port()
    daemon = subprocess.Popen(
        [
            sys.executable, "-m", "vmctl.supervisor", "--listen", f"127.0.0.1:{port}",
            "--log-file", str(log), "--log-max-bytes", str(MAX_BYTES),
        ],
        env={**os.environ, "VMCTL_HOME": str(home)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            wait_until(lambda: _healthy(client), timeout=20)
            for _ in range(600):  # an access line each, about 100 bytes: three rotations
                assert client.get("/api/v1/health").status_code == 200
    finally:
        daemon.terminate()
        daemon.wait(20)
    files = sorted(p.name for p in logs.iterdir())
    assert files == ["daemon.log", "daemon.log.1", "daemon.log.2"]
    for name in files:
        size = (logs / name).stat().st_size
        assert size <= MAX_BYTES + 1_000, (name, size)  # at most one line past the budget
        assert (logs / name).stat().st_mode & 0o077 == 0  # its owner's only
    assert "Finished server process" in log.read_text()


def _healthy(client: httpx.Client) -> bool:
    try:
        return client.get("/api/v1/health").status_code == 200
    except httpx.TransportError:
        return False


def test_following_the_log_goes_on_in_the_new_file_after_a_rotation(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    log = home / "daemon.log"
    log.write_text("first\n")
    follower = VmctlProcess(["logs", "--follow"], {"VMCTL_HOME": str(home)})
    try:
        follower.wait_for_line("first")
        with log.open("a") as file:
            file.write("last of the old file\n")
        os.rename(log, home / "daemon.log.1")  # as the daemon's RotatingFileHandler does
        log.write_text("first of the new file\n")
        follower.wait_for_line("first of the new file")
        assert follower.lines["stdout"] == [
            "first",
            "last of the old file",
            "first of the new file",
        ]
    finally:
        follower.kill()
