"""The SDK's own MCP client, as the tests drive the tools: ``vmctl mcp`` as a real stdio
subprocess, or the daemon's ``/mcp`` over streamable HTTP, against a real daemon.

A test runs its scenario with the ``talk`` fixture, which opens a client, runs the
scenario under one deadline and closes the client (and so the ``vmctl mcp`` process)
however it ends. Every session left open is closed after each test, so no worker
outlives it.

(This folder has no ``__init__.py``: as a package it would be named ``mcp`` and hide the
SDK; and what the tests share is fixtures, since its modules cannot import each other
under mypy's module names.)
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from real_daemon import REPO, Daemon

SCENARIO_TIMEOUT = 60.0
Scenario = Callable[[Client], Awaitable[None]]
Talk = Callable[..., None]  # (server, scenario, token=None)
TOOLS = frozenset(
    {
        "run_javascript",
        "run_file",
        "create_session",
        "list_sessions",
        "close_session",
        "restart_session",
        "read_events",
        "cancel_execution",
    }
)


def stdio_server(home: Path, worktree: Path, *args: str, **env: str) -> StdioServerParameters:
    """``vmctl mcp`` with ``home`` as its ``$VMCTL_HOME`` (its token is found there)."""
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "vmctl.mcp", "--worktree", str(worktree), *args],
        env={"VMCTL_HOME": str(home), "PYTHONPATH": str(REPO), **env},
        cwd=str(worktree),
    )


def _talk(
    server: StdioServerParameters | str, scenario: Scenario, token: str | None = None
) -> None:
    """Run ``scenario`` with a client of ``server`` (stdio parameters, or the URL of a
    streamable HTTP endpoint reached with ``token``), bounded."""

    async def main() -> None:
        with anyio.fail_after(SCENARIO_TIMEOUT):
            if isinstance(server, str):
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                async with httpx2.AsyncClient(headers=headers) as http:
                    transport = streamable_http_client(server, http_client=http)
                    async with Client(transport) as client:
                        await scenario(client)
            else:
                async with Client(server) as client:
                    await scenario(client)

    anyio.run(main)


@pytest.fixture
def talk() -> Talk:
    return _talk


@pytest.fixture
def tool_names() -> frozenset[str]:
    return TOOLS


@pytest.fixture
def stdio(daemon: Daemon, worktree: Path) -> StdioServerParameters:
    """``vmctl mcp`` against the module's daemon, its worktree the test's."""
    return stdio_server(daemon.home, worktree, VMCTL_URL=daemon.url)


@pytest.fixture
def stdio_of_home() -> Callable[..., StdioServerParameters]:
    """``stdio_of_home(home, worktree, *args)``: ``vmctl mcp`` of that ``$VMCTL_HOME``."""
    return stdio_server


@pytest.fixture(autouse=True)
def sessions_closed(daemon: Daemon) -> Iterator[None]:
    yield
    daemon.close_open_sessions()


@pytest.fixture
def template(daemon: Daemon) -> Callable[..., str]:
    """``template(**limits)``: the name of a new template with those limits."""

    def make(**limits: int) -> str:
        with daemon.client() as api:
            name = f"mcp-test-{os.urandom(4).hex()}"
            made = api.post("/templates", json={"name": name}).json()
            if limits:
                put = api.put(f"/templates/{made['id']}/settings", json={"limits": limits})
                assert put.status_code == 200, put.text
        return name

    return make
