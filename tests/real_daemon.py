"""A real daemon for tests: ``python -m vmctl.supervisor`` on a free port of 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import httpx

REPO = Path(__file__).resolve().parent.parent
PLUGINS = REPO / "testdata" / "plugins"
TESTAPPS = REPO / "testapps"

STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 20.0
READY_LINE = "Application startup complete"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def plugin_engine(name: str, plugin: str) -> str:
    """An ``--engine NAME=COMMAND`` value running a fixture worker of testdata/plugins.

    ``plugin`` is the script's name, optionally followed by its arguments.
    """
    script, _, args = plugin.partition(" ")
    return f"{name}={sys.executable} {PLUGINS / script}.py {args}".rstrip()


class Daemon:
    """One daemon process; its stderr is copied to ``log_path`` by a thread."""

    def __init__(self, home: Path, args: Sequence[str], env: dict[str, str]) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = home / "daemon.log"
        self.db_path = home / "vmctl.db"
        self._ready = threading.Event()
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "vmctl.supervisor",
                "--listen", f"127.0.0.1:{self.port}",
                "--db", str(self.db_path),
                *args,
            ],
            env={**os.environ, "VMCTL_HOME": str(home), **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert self.proc.stderr is not None
        self._copier = threading.Thread(target=self._copy_log, args=(self.proc.stderr,))
        self._copier.start()

    def _copy_log(self, stream: IO[str]) -> None:
        with stream, open(self.log_path, "a", encoding="utf-8") as log:
            for line in stream:
                log.write(line)
                log.flush()
                if READY_LINE in line:
                    self._ready.set()
        self._ready.set()  # EOF: the daemon is gone; wake the waiter to say so

    def wait_ready(self) -> None:
        if not self._ready.wait(STARTUP_TIMEOUT) or self.proc.poll() is not None:
            raise RuntimeError(f"daemon did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signal the daemon and wait (bounded) for it to exit; returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(STOP_TIMEOUT)
        self._copier.join(STOP_TIMEOUT)
        return code

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url + "/api/v1", timeout=30.0)

    def close_open_sessions(self) -> None:
        """Close every session not closed yet, so no worker outlives the test that made it."""
        with self.client() as client:
            for session in client.get("/sessions").json():
                if session["status"] != "closed":
                    client.post(f"/sessions/{session['id']}/close")


@contextlib.contextmanager
def running_daemon(
    home: Path, args: Sequence[str] = (), env: dict[str, str] | None = None
) -> Iterator[Daemon]:
    """A started daemon, stopped with SIGTERM (then SIGKILL) however the block ends."""
    home.mkdir(parents=True, exist_ok=True)
    daemon = Daemon(home, args, env or {})
    try:
        daemon.wait_ready()
        yield daemon
    finally:
        daemon.stop()


def error_code(response: httpx.Response) -> Any:
    """The envelope's code, asserting the response is an error envelope."""
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]["code"]


def session_body(template_id: str, tree: Path) -> dict[str, str]:
    return {
        "template_id": template_id,
        "workspace_id": "ws",
        "base_commit_oid": "abc123",
        "worktree_path": str(tree),
    }


def wait_until(condition: Callable[[], bool], timeout: float = 5.0, interval: float = 0.02) -> None:
    """Bounded wait for a state another process changes and nothing here can await."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
