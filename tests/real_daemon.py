"""A real daemon for tests: ``python -m vmctl.supervisor`` on a free port of 127.0.0.1.

Auth is on, as by default: the daemon makes its token in its home, and
:meth:`Daemon.client` sends it. Its worktree roots are the temporary directory (the
tests' worktrees) and ``testapps/``, unless the test gives ``--worktree-root`` itself
or asks for the daemon's defaults.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import httpx

from vmctl.api_token import TOKEN_ENV, read_token

REPO = Path(__file__).resolve().parent.parent
PLUGINS = REPO / "testdata" / "plugins"
TESTAPPS = REPO / "testapps"

STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 20.0
# uvicorn says so once it listens ("Application startup complete" comes before the bind).
READY_LINE = "Uvicorn running on"
# What a raw body sent with ``content=`` must say it is (else 415).
JSON_BODY = {"Content-Type": "application/json"}
# The worktrees tests make (tmp_path) and the sample apps.
TEST_ROOTS = ("--worktree-root", tempfile.gettempdir(), "--worktree-root", str(TESTAPPS))
# Unless a test asks for the warm pool: its waiting workers live as long as their daemon,
# so a daemon shared by a module's tests would leave some behind each test (the leak check
# counts them). tests/api/test_api_pool.py runs a daemon of its own per test.
NO_POOL = ("--pool-size", "0")


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

    def __init__(
        self, home: Path, args: Sequence[str], env: dict[str, str], default_roots: bool = False
    ) -> None:
        self.home = home
        self.token: str | None = None  # known once it is ready (None with --no-auth)
        self._args, self._env = args, env
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
                *([] if default_roots or "--worktree-root" in args else TEST_ROOTS),
                *([] if "--pool-size" in args else NO_POOL),
            ],
            env={**_outer_env(), "VMCTL_HOME": str(home), **env},
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
        if "--no-auth" not in self._args:
            self.token = self._env.get(TOKEN_ENV) or read_token(str(self.home))

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
        """An API client that sends the token."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        return httpx.Client(base_url=self.url + "/api/v1", timeout=30.0, headers=headers)

    def close_open_sessions(self) -> None:
        """Close every session not closed yet, so no worker outlives the test that made it."""
        with self.client() as client:
            for session in client.get("/sessions").json():
                if session["status"] != "closed":
                    client.post(f"/sessions/{session['id']}/close")


@contextlib.contextmanager
def running_daemon(
    home: Path,
    args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    default_roots: bool = False,
) -> Iterator[Daemon]:
    """A started daemon, stopped with SIGTERM (then SIGKILL) however the block ends."""
    home.mkdir(parents=True, exist_ok=True)
    daemon = Daemon(home, args, env or {}, default_roots)
    try:
        daemon.wait_ready()
        yield daemon
    finally:
        daemon.stop()


def _outer_env() -> dict[str, str]:
    # A token of the shell that runs the tests must not leak into their daemons.
    return {name: value for name, value in os.environ.items() if name != TOKEN_ENV}


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


def start_session(api: httpx.Client, tree: Path, **limits: int) -> dict[str, Any]:
    """A new template (with ``limits``, if any) and a ready session of it on ``tree``."""
    template = api.post("/templates", json={"name": f"t-{uuid.uuid4()}"}).json()
    if limits:
        put = api.put(f"/templates/{template['id']}/settings", json={"limits": limits})
        assert put.status_code == 200, put.text
    session: dict[str, Any] = api.post("/sessions", json=session_body(template["id"], tree)).json()
    assert session.get("status") == "ready", session
    return session


def wait_until(condition: Callable[[], bool], timeout: float = 5.0, interval: float = 0.02) -> None:
    """Bounded wait for a state another process changes and nothing here can await."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
