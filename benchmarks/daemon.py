"""A real daemon for the HTTP scenarios: ``python -m vmctl.supervisor`` on a free port.

The daemon runs in its own session (a Ctrl-C in the terminal reaches only us,
and our cleanup stops it), dies with us if we are killed (parent-death
signal), and is stopped with SIGTERM, then SIGKILL, and always waited for.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

from benchmarks.errors import BenchmarkError
from vmctl.api_token import TOKEN_BYTES, TOKEN_ENV

START_TIMEOUT = 30.0  # to /health answering 200
STOP_TIMEOUT = 20.0  # after SIGTERM, then again after SIGKILL
HEALTH_ATTEMPT_TIMEOUT = 1.0
EXIT_WAIT_BETWEEN_ATTEMPTS = 0.01  # each wait for /health also watches for the exit
LOG_TAIL = 4000

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def die_with_parent() -> None:
    """Have the kernel SIGTERM this process when its parent dies (a ``preexec_fn``)."""
    # Runs in the child between fork and exec: system calls only.
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class Daemon:
    """One daemon process with its home, port and log. Use :func:`running_daemon`."""

    def __init__(self, home: Path, options: Sequence[str] = ()) -> None:
        self.home = home
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api/v1"
        # Auth is on, as by default; the token is given rather than read from the home.
        self.token = secrets.token_urlsafe(TOKEN_BYTES)
        self.log_path = home / "daemon.log"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable, "-m", "vmctl.supervisor",
                    "--listen", f"127.0.0.1:{self.port}",
                    "--db", str(home / "vmctl.db"),
                    *options,
                ],
                env={**os.environ, "VMCTL_HOME": str(home), TOKEN_ENV: self.token},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )  # fmt: skip

    def client(self, timeout: float) -> httpx.Client:
        """An API client that sends the token."""
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.Client(base_url=self.api_url, timeout=timeout, headers=headers)

    def wait_healthy(self) -> None:
        """Return once GET /health answers 200; raise if the daemon exits or takes too long."""
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(timeout=HEALTH_ATTEMPT_TIMEOUT) as client:
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if client.get(f"{self.api_url}/health").status_code == 200:
                        return
                self._wait_not_exited(deadline)

    def _wait_not_exited(self, deadline: float) -> None:
        try:
            code = self.proc.wait(EXIT_WAIT_BETWEEN_ATTEMPTS)
        except subprocess.TimeoutExpired:
            if time.monotonic() < deadline:
                return
            raise BenchmarkError(
                f"the daemon was not healthy within {START_TIMEOUT:g} s:\n{self.log_tail()}"
            ) from None
        raise BenchmarkError(f"the daemon exited with code {code}:\n{self.log_tail()}")

    def stop(self) -> float:
        """SIGTERM, wait, SIGKILL if needed, wait; returns the seconds it took. Idempotent."""
        started = time.perf_counter()
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT)
        return time.perf_counter() - started

    def log_tail(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-LOG_TAIL:]


@contextlib.contextmanager
def running_daemon(home: Path, options: Sequence[str] = ()) -> Iterator[Daemon]:
    """A daemon answering /health; stopped and waited for however the block ends.

    ``options``: more command-line options for it (``--max-sessions 80``)."""
    home.mkdir(parents=True, exist_ok=True)
    daemon = Daemon(home, options)
    try:
        daemon.wait_healthy()
        yield daemon
    finally:
        daemon.stop()
