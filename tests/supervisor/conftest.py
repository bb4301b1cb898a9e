"""Fixtures for the supervisor tests: fixture-plugin spawn specs and a bounded loop runner for
the worker handle; a runner, a database path and an open store for the store."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from supervisor.handles import PluginSpec, Run, WaitDead
from vmctl.supervisor.store import Store, open_store
from vmctl.supervisor.workers import SpawnSpec

PLUGINS = Path(__file__).resolve().parents[2] / "testdata" / "plugins"
# Every test's loop work is bounded by this; each test asserts tighter bounds itself.
RUN_TIMEOUT = 30.0


@pytest.fixture
def plugin(tmp_path: Path) -> PluginSpec:
    """``plugin("echo", *args, **spec_fields)``: a spec that runs testdata/plugins/echo.py."""

    def spec(name: str, *args: str, **fields: Any) -> SpawnSpec:
        argv = (sys.executable, str(PLUGINS / f"{name}.py"), *args)
        return SpawnSpec(argv=argv, cwd=str(tmp_path), mem_mb=fields.pop("mem_mb", 64), **fields)

    return spec


@pytest.fixture
def run() -> Run:
    """Run a coroutine in a fresh loop, bounded, failing on any error the loop only logged.

    An exception in a protocol callback or a timer does not propagate: asyncio
    hands it to the loop's exception handler. Here that fails the test.
    """

    def runner(coro: Coroutine[Any, Any, Any]) -> Any:
        logged: list[dict[str, Any]] = []

        async def main() -> Any:
            asyncio.get_running_loop().set_exception_handler(lambda _, ctx: logged.append(ctx))
            async with asyncio.timeout(RUN_TIMEOUT):
                return await coro

        result = asyncio.run(main())
        assert not logged, f"the loop logged errors: {logged}"
        return result

    return runner


@pytest.fixture
def wait_dead() -> WaitDead:
    """``wait_dead(pid)``: bounded wait until a process that is not our child is dead.

    Another process's state has no event to await, so this polls. A zombie
    counts as dead; the leak check of tests/conftest.py reaps it.
    """

    def wait(pid: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                    return
            except psutil.NoSuchProcess:
                return
            assert time.monotonic() < deadline, f"process {pid} still alive after {timeout} s"
            time.sleep(0.01)

    return wait


# -- the store tests (test_store_*.py) ------------------------------------------------


@pytest.fixture
def no_store_threads_left() -> Iterator[None]:
    """After the test (and the runner it is set up before): no store thread is left."""
    yield
    left = [t.name for t in threading.enumerate() if t.name.startswith("vmctl-store")]
    assert left == []


@pytest.fixture
def runner(no_store_threads_left: None) -> Iterator[asyncio.Runner]:
    # asyncio.run's own machinery, kept open so a test can make several calls on one loop.
    with asyncio.Runner() as runner:
        yield runner


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "home" / "vmctl.db")


@pytest.fixture
def store(runner: asyncio.Runner, db_path: str) -> Iterator[Store]:
    store = runner.run(open_store(db_path))
    yield store
    runner.run(store.aclose())
