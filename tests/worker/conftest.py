"""Fixtures for the worker tests: a worktree and a real worker process in it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .jsworker import WorkerProcess, open_worker


@pytest.fixture
def worker(worktree: Path) -> Iterator[WorkerProcess]:
    with open_worker(worktree) as process:
        yield process
