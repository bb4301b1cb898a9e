"""The daemon's ``/mcp``: the same tools over streamable HTTP, behind the API's token."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
from mcp import Client
from mcp_results import data, text

from real_daemon import Daemon, error_code

Talk = Callable[..., None]

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"},
    },
}
ACCEPT = {"Accept": "application/json, text/event-stream"}


def test_serves_the_tools_with_the_token(
    daemon: Daemon, worktree: Path, talk: Talk, tool_names: frozenset[str]
) -> None:
    async def scenario(client: Client) -> None:
        assert {tool.name for tool in (await client.list_tools()).tools} == tool_names
        session = data(await client.call_tool("create_session", {"worktree_path": str(worktree)}))
        first = await client.call_tool(
            "run_javascript",
            {"code": "var seen = 'kept'; console.log('hi')", "session_id": session["id"]},
        )
        assert text(first).startswith("hi\n=> undefined\n")
        again = await client.call_tool(
            "run_javascript", {"code": "seen", "session_id": session["id"]}
        )
        assert text(again).startswith("=> kept\n")
        threw = await client.call_tool(
            "run_javascript", {"code": "throw new Error('no')", "session_id": session["id"]}
        )
        assert not threw.is_error and text(threw).startswith("Uncaught Error: no")

    talk(daemon.url + "/mcp", scenario, daemon.token)


def test_without_the_token_is_401(daemon: Daemon) -> None:
    with httpx.Client(timeout=10) as http:
        refused = http.post(daemon.url + "/mcp", json=INITIALIZE, headers=ACCEPT)
        wrong = {**ACCEPT, "Authorization": "Bearer nope"}
        refused_too = http.post(daemon.url + "/mcp", json=INITIALIZE, headers=wrong)
    assert refused.status_code == 401 and error_code(refused) == "UNAUTHORIZED"
    assert refused_too.status_code == 401 and error_code(refused_too) == "UNAUTHORIZED"


def test_an_api_error_is_a_tool_error_with_its_code(daemon: Daemon, talk: Talk) -> None:
    async def scenario(client: Client) -> None:
        unknown = "00000000-0000-4000-8000-000000000000"
        missing = await client.call_tool("read_events", {"execution_id": unknown})
        assert missing.is_error
        assert text(missing).startswith("EXECUTION_NOT_FOUND: ")
        refused = await client.call_tool("create_session", {"worktree_path": "/proc"})
        assert refused.is_error and data(refused)["error"]["code"] == "INVALID_PATH"

    talk(daemon.url + "/mcp", scenario, daemon.token)
