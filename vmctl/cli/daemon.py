"""Starting and stopping the daemon as a process (the CLI never imports it).

The daemon is ``python -m vmctl.supervisor``. A detached one runs in its own
session with its output in a log file; it is ready when ``/health`` answers,
which is raced against its exit through a pidfd, so a daemon that dies at
startup fails the start at once instead of after a timeout.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from vmctl.cli.daemon_record import LOG_NAME, vmctl_home
from vmctl.daemon_options import make_home

READY_TIMEOUT = 20.0  # a cold start imports uvicorn, starlette and the store: ~1 s
PROBE_INTERVAL = 0.05  # between health probes, cut short by the daemon's exit
STOP_GRACE = 10.0  # SIGTERM to SIGKILL: the daemon closes every worker in a few seconds
KILL_WAIT = 5.0


class DaemonStartError(Exception):
    """The daemon did not become healthy; ``log_tail`` holds what it wrote."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


def url_of(listen: str) -> str:
    return f"http://{listen}"


def free_port() -> int:
    """A TCP port nobody listens on right now (the daemon cannot report its own)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def daemon_argv(
    listen: str, db_path: Path, engines: Sequence[str] = (), options: Sequence[str] = ()
) -> list[str]:
    """The daemon's command line; ``options`` are passed through as they are."""
    argv = [sys.executable, "-m", "vmctl.supervisor", "--listen", listen, "--db", str(db_path)]
    for engine in engines:
        argv += ["--engine", engine]
    return argv + list(options)


def is_healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        response = httpx.get(f"{url}/api/v1/health", timeout=timeout)
    except httpx.TransportError:
        return False
    return response.status_code == 200


def spawn_detached(
    argv: list[str], home: Path, log_path: Path, env: Mapping[str, str] | None = None
) -> int:
    """Start ``argv`` in a new session with stdin from /dev/null and output appended to the
    log (its owner's only), with ``env`` added to this process's environment.

    posix_spawn rather than subprocess.Popen: the daemon must outlive this
    process, and a Popen object left running complains when it is collected.
    """
    full_env = {**os.environ, **(env or {}), "VMCTL_HOME": str(home)}
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log_path), flags, 0o600),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    return os.posix_spawn(argv[0], argv, full_env, file_actions=actions, setsid=True)


def wait_exited(pid: int, timeout: float) -> bool:
    """Wait (bounded) for ``pid`` to end; reap it if it is our child. True when it ended."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True  # already gone and reaped
    try:
        # A pidfd turns readable when the process exits, zombie or not.
        readable, _, _ = select.select([pidfd], [], [], timeout)
    finally:
        os.close(pidfd)
    if readable:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)  # ours (we spawned it in this process): collect the zombie
    return bool(readable)


def wait_healthy(pid: int, url: str, timeout: float = READY_TIMEOUT) -> None:
    """Return once ``url`` answers /health; raise DaemonStartError if ``pid`` exits first."""
    deadline = time.monotonic() + timeout
    while not is_healthy(url, timeout=1.0):
        if wait_exited(pid, PROBE_INTERVAL):
            raise DaemonStartError(f"the daemon exited before it was ready (pid {pid})")
        if time.monotonic() > deadline:
            stop(pid)
            raise DaemonStartError(f"the daemon did not answer at {url} within {timeout:g}s")
    if wait_exited(pid, 0):
        # Something else answered on that address and ours failed to bind.
        raise DaemonStartError(f"the daemon exited; another server answers at {url}")


def stop(pid: int, grace: float = STOP_GRACE) -> str:
    """SIGTERM, wait up to ``grace``, then SIGKILL. Returns "stopped", "killed" or "gone"."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return "gone"  # no such process: it ended on its own
    if wait_exited(pid, grace):
        return "stopped"
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    wait_exited(pid, KILL_WAIT)
    return "killed"


def start_detached(
    home: Path, url: str, argv: list[str], env: Mapping[str, str] | None = None
) -> tuple[int, Path]:
    """Start the daemon ``argv`` detached (``env`` added to its environment) and wait
    until ``url`` is healthy.

    Returns its pid and log path.
    """
    if is_healthy(url, timeout=1.0):
        raise DaemonStartError(f"another server already answers at {url}")
    log_path = home / LOG_NAME
    start_offset = log_path.stat().st_size if log_path.exists() else 0
    # The daemon logs to the file itself, rotating it by size; its stderr is appended there
    # too, for what comes before its logging starts (a usage error, a crash at import).
    # (After the program, before the caller's options: those stay the argv's tail.)
    argv = [*argv[:3], "--log-file", str(log_path), *argv[3:]]
    pid = spawn_detached(argv, home, log_path, env)
    try:
        wait_healthy(pid, url)
    except DaemonStartError as exc:
        exc.log_tail = log_tail(log_path, start_offset)
        raise
    return pid, log_path


def log_tail(path: Path, offset: int = 0, lines: int = 20) -> str:
    """The last ``lines`` lines written to ``path`` after ``offset``."""
    try:
        with open(path, "rb") as file:
            file.seek(offset)
            text = file.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.rstrip("\n").split("\n")[-lines:])


def resolve_home() -> Path:
    """``$VMCTL_HOME``, created if missing, its owner's only (as the daemon keeps it)."""
    home = vmctl_home()
    make_home(str(home))
    return home
