"""Fixtures every test shares: the process-leak check, a worktree, a plain daemon."""

from __future__ import annotations

import ctypes
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from real_daemon import Daemon, running_daemon

_PR_SET_CHILD_SUBREAPER = 36


def _become_subreaper() -> None:
    # Orphaned grandchildren (a worker's own children, workers of a daemon that
    # was SIGKILLed) are reparented to us instead of init, so the leak check
    # below sees every process a test caused, not only our direct children.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


_become_subreaper()


def _live_children() -> list[psutil.Process]:
    alive = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                # Reap it: as subreaper, orphans' zombies are ours to collect.
                os.waitpid(child.pid, os.WNOHANG)
                continue
            alive.append(child)
        except (psutil.NoSuchProcess, ChildProcessError):
            continue
    return alive


@pytest.fixture(autouse=True)
def no_leaked_processes() -> Iterator[None]:
    """Fail any test that leaves a child process (or an orphaned grandchild) running."""
    before = {p.pid for p in _live_children()}
    yield
    # Processes killed at teardown may take a moment to be gone; bounded wait.
    deadline = time.monotonic() + 5.0
    leaked = [p for p in _live_children() if p.pid not in before]
    while leaked and time.monotonic() < deadline:
        psutil.wait_procs(leaked, timeout=0.1)
        leaked = [p for p in _live_children() if p.pid not in before]
    if leaked:
        descriptions = []
        for proc in leaked:
            try:
                descriptions.append(f"{proc.pid}: {' '.join(proc.cmdline())}")
                os.kill(proc.pid, signal.SIGKILL)
            except (psutil.NoSuchProcess, ProcessLookupError):
                continue
        psutil.wait_procs(leaked, timeout=2.0)
        _live_children()
        if descriptions:
            pytest.fail("test leaked processes:\n" + "\n".join(descriptions))


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    """An empty directory to be a session's (or a worker's) worktree."""
    root = tmp_path / "worktree"
    root.mkdir()
    return root


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A daemon with the built-in engine only, shared by the tests of one module."""
    with running_daemon(tmp_path_factory.mktemp("home")) as running:
        yield running
