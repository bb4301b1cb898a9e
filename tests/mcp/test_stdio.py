"""``vmctl mcp`` as an agent host runs it: a subprocess speaking MCP on stdio, driven by
the SDK's own client, against a real daemon."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import httpx
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp_results import data, text

from real_daemon import Daemon, free_port, wait_until

Talk = Callable[..., None]


def vmctl(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The ``vmctl`` command with ``home`` as its ``$VMCTL_HOME``."""
    return subprocess.run(
        [sys.executable, "-m", "vmctl.cli.main", *args],
        env={**os.environ, "VMCTL_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_lists_the_tools_with_described_inputs_and_output_schemas(
    stdio: StdioServerParameters, talk: Talk, tool_names: frozenset[str]
) -> None:
    async def scenario(client: Client) -> None:
        tools = (await client.list_tools()).tools
        assert {tool.name for tool in tools} == tool_names
        for tool in tools:
            assert tool.description, tool.name
            for name, schema in tool.input_schema["properties"].items():
                assert schema.get("description"), (tool.name, name)
            assert tool.output_schema is not None and tool.output_schema["type"] == "object"
        bounds = next(t for t in tools if t.name == "read_events").input_schema["properties"]
        assert bounds["limit"]["maximum"] == 1000
        assert bounds["wait_seconds"]["maximum"] == 30

    talk(stdio, scenario)


def test_run_javascript_creates_a_session_that_keeps_its_state(
    stdio: StdioServerParameters, talk: Talk
) -> None:
    async def scenario(client: Client) -> None:
        first = await client.call_tool("run_javascript", {"code": "console.log('hi'); let n = 41"})
        assert not first.is_error
        session_id = data(first)["session_id"]
        assert text(first).startswith("hi\n=> undefined\n")
        assert f"pass session_id {session_id}" in text(first)
        assert data(first)["status"] == "ok"

        again = await client.call_tool(
            "run_javascript", {"code": "n + 1", "session_id": session_id}
        )
        assert text(again).startswith("=> 42\n")
        assert data(again)["result"]["json"] == 42
        assert "new session" not in text(again)

    talk(stdio, scenario)


def test_a_crashed_session_comes_back_with_its_state_by_replay(
    stdio: StdioServerParameters, talk: Talk
) -> None:
    async def scenario(client: Client) -> None:
        ran = await client.call_tool("run_javascript", {"code": "globalThis.n = 41"})
        session_id = data(ran)["session_id"]
        await client.call_tool("run_javascript", {"code": "n += 1", "session_id": session_id})
        await client.call_tool("run_javascript", {"code": "Date.now()", "session_id": session_id})
        crash = "let a = []; for (;;) a.push(new Array(1e6).fill(1))"  # out of memory: an error
        await client.call_tool("run_javascript", {"code": crash, "session_id": session_id})

        restarted = await client.call_tool("restart_session", {"session_id": session_id})
        assert not restarted.is_error, text(restarted)
        assert data(restarted)["runtime_meta"]["replay"]["replayed"] == 3
        assert "Replayed 3 execution(s); these gave another value than recorded: " in text(
            restarted
        )
        again = await client.call_tool("run_javascript", {"code": "n", "session_id": session_id})
        assert data(again)["result"]["json"] == 42

        fresh = await client.call_tool(
            "restart_session", {"session_id": session_id, "replay": False}
        )
        assert "replay" not in data(fresh)["runtime_meta"] and "Replayed" not in text(fresh)
        gone = await client.call_tool(
            "run_javascript", {"code": "typeof n", "session_id": session_id}
        )
        assert data(gone)["result"]["json"] == "undefined"
        await client.call_tool("close_session", {"session_id": session_id})

    talk(stdio, scenario)


def test_create_list_and_close_sessions(
    stdio: StdioServerParameters, talk: Talk, worktree: Path
) -> None:
    async def scenario(client: Client) -> None:
        created = await client.call_tool("create_session", {"worktree_path": str(worktree)})
        session = data(created)
        assert session["status"] == "ready" and session["worktree_path"] == str(worktree)

        listed = await client.call_tool("list_sessions", {})
        assert [s["id"] for s in data(listed)["sessions"]] == [session["id"]]
        assert session["id"] in text(listed)

        closed = await client.call_tool("close_session", {"session_id": session["id"]})
        assert data(closed)["status"] == "closed"
        assert data(await client.call_tool("list_sessions", {}))["sessions"] == []
        every = await client.call_tool("list_sessions", {"status": "closed"})
        assert session["id"] in [s["id"] for s in data(every)["sessions"]]

        refused = await client.call_tool(
            "run_javascript", {"code": "1", "session_id": session["id"]}
        )
        assert refused.is_error
        assert text(refused).startswith("SESSION_NOT_READY: ")
        assert data(refused)["error"]["code"] == "SESSION_NOT_READY"

    talk(stdio, scenario)


def test_run_file_from_the_worktree(
    stdio: StdioServerParameters, talk: Talk, worktree: Path
) -> None:
    (worktree / "main.js").write_text(
        "console.log('hello,', __ARGS__.name); ({ env: __ENV__.MODE, n: 2 })"
    )

    async def scenario(client: Client) -> None:
        ran = await client.call_tool(
            "run_file", {"path": "main.js", "args": {"name": "mcp"}, "env": {"MODE": "test"}}
        )
        assert not ran.is_error, text(ran)
        assert text(ran).startswith("hello, mcp\n=> { env: 'test', n: 2 }\n")
        assert data(ran)["kind"] == "run_file" and data(ran)["path"] == "main.js"

        session_id = data(ran)["session_id"]
        missing = await client.call_tool("run_file", {"path": "nope.js", "session_id": session_id})
        assert missing.is_error and text(missing).startswith("FILE_NOT_FOUND: ")

    talk(stdio, scenario)


def test_read_events_from_a_seq(stdio: StdioServerParameters, talk: Talk) -> None:
    async def scenario(client: Client) -> None:
        code = "for (let i = 1; i <= 3; i++) console.log('line', i); 'done'"
        ran = await client.call_tool("run_javascript", {"code": code})
        execution_id = data(ran)["id"]

        page = await client.call_tool("read_events", {"execution_id": execution_id, "after_seq": 2})
        events = data(page)["events"]
        # 1 is the input, 2 the first line.
        assert [(e["seq"], e["type"]) for e in events] == [
            (3, "console"), (4, "console"), (5, "value"),
        ]  # fmt: skip
        assert text(page).split("\n")[:3] == ["#3 line 2", "#4 line 3", "#5 => done"]
        assert data(page)["execution"]["status"] == "ok"
        assert data(page)["next_after_seq"] is None

        short = await client.call_tool("read_events", {"execution_id": execution_id, "limit": 2})
        assert data(short)["next_after_seq"] == 2
        assert "after_seq 2" in text(short)

    talk(stdio, scenario)


def test_a_javascript_exception_is_a_result_not_a_tool_error(
    stdio: StdioServerParameters, talk: Talk
) -> None:
    async def scenario(client: Client) -> None:
        threw = await client.call_tool("run_javascript", {"code": "null.boom"})
        assert not threw.is_error
        assert text(threw).startswith("Uncaught TypeError: cannot read property 'boom' of null")
        assert data(threw)["status"] == "error"

    talk(stdio, scenario)


def test_a_limit_is_a_tool_error_with_its_code(
    stdio: StdioServerParameters, talk: Talk, template: Callable[..., str]
) -> None:
    name = template(wall_ms=300)

    async def scenario(client: Client) -> None:
        session = data(await client.call_tool("create_session", {"template": name}))
        code = "console.log('looping'); while (true) {}"
        stopped = await client.call_tool(
            "run_javascript", {"code": code, "session_id": session["id"]}
        )
        assert stopped.is_error
        assert text(stopped).startswith("EXECUTION_TIMEOUT: stopped by the wall_ms limit of 300 ms")
        assert "looping" in text(stopped)
        assert data(stopped)["status"] == "timeout"
        assert data(stopped)["error"]["code"] == "EXECUTION_TIMEOUT"

    talk(stdio, scenario)


def test_cancel_a_long_execution_and_keep_the_session(
    stdio: StdioServerParameters, talk: Talk, template: Callable[..., str]
) -> None:
    name = template(wall_ms=120_000, cpu_ms=120_000)
    sleep = (
        "globalThis.kept = 7; console.log('waiting'); await new Promise(r => setTimeout(r, 60000))"
    )

    async def scenario(client: Client) -> None:
        session = data(await client.call_tool("create_session", {"template": name}))
        started = await client.call_tool(
            "run_javascript", {"code": sleep, "session_id": session["id"], "wait_seconds": 0}
        )
        assert not started.is_error
        running = data(started)
        assert running["status"] == "running"
        assert "Still running" in text(started) and "cancel_execution" in text(started)

        followed = await client.call_tool(
            "read_events", {"execution_id": running["id"], "after_seq": 0, "wait_seconds": 5}
        )
        assert data(followed)["execution"]["status"] == "running"
        assert data(followed)["events"], "the input at least"

        cancelled = await client.call_tool("cancel_execution", {"execution_id": running["id"]})
        assert not cancelled.is_error
        assert data(cancelled)["status"] == "cancelled"

        kept = await client.call_tool(
            "run_javascript", {"code": "kept", "session_id": session["id"]}
        )
        assert text(kept).startswith("=> 7\n")

    talk(stdio, scenario)


def test_a_call_the_client_gives_up_on_cancels_its_execution(
    stdio: StdioServerParameters, talk: Talk, template: Callable[..., str], daemon: Daemon
) -> None:
    name = template(wall_ms=120_000, cpu_ms=120_000)
    session_ids: list[str] = []

    async def scenario(client: Client) -> None:
        session = data(await client.call_tool("create_session", {"template": name}))
        session_ids.append(session["id"])
        with anyio.move_on_after(1.0):
            await client.call_tool(
                "run_javascript",
                {
                    "code": "await new Promise(r => setTimeout(r, 60000))",
                    "session_id": session["id"],
                },
            )

    talk(stdio, scenario)
    with daemon.client() as api:

        def ended() -> bool:
            runs = api.get("/executions", params={"session_id": session_ids[0]}).json()
            return bool(runs) and runs[0]["status"] == "cancelled"

        wait_until(ended, timeout=15.0)


def test_console_output_is_cut_and_says_how_to_read_the_rest(
    stdio: StdioServerParameters, talk: Talk
) -> None:
    async def scenario(client: Client) -> None:
        code = "for (let i = 0; i < 3000; i++) console.log('line ' + i + ' ' + 'x'.repeat(40))"
        ran = await client.call_tool("run_javascript", {"code": code})
        said = text(ran)
        assert len(said) < 10_000
        assert said.startswith("line 0 ")
        assert "line 2999 " in said
        assert "console lines" in said and "characters) cut here" in said
        after_seq = int(said.split("after_seq ")[1].split(" ")[0])
        rest = await client.call_tool(
            "read_events", {"execution_id": data(ran)["id"], "after_seq": after_seq, "limit": 1}
        )
        [event] = data(rest)["events"]
        assert event["payload"]["text"] not in said

    talk(stdio, scenario)


def test_starts_the_daemon_of_its_home_when_none_runs(
    tmp_path: Path,
    worktree: Path,
    talk: Talk,
    stdio_of_home: Callable[..., StdioServerParameters],
) -> None:
    home = tmp_path / "home"
    listen = f"127.0.0.1:{free_port()}"
    server = stdio_of_home(home, worktree, "--listen", listen)

    async def scenario(client: Client) -> None:
        ran = await client.call_tool("run_javascript", {"code": "6 * 7"})
        assert not ran.is_error, text(ran)
        assert text(ran).startswith("=> 42\n")
        closed = await client.call_tool("close_session", {"session_id": data(ran)["session_id"]})
        assert data(closed)["status"] == "closed"

    try:
        talk(server, scenario)
        status = vmctl(home, "status")
        assert status.returncode == 0 and f"http://{listen}" in status.stdout
        assert httpx.get(f"http://{listen}/api/v1/health", timeout=5).status_code == 200
    finally:
        down = vmctl(home, "down")
    assert down.returncode == 0, down.stderr
    assert "stopped" in down.stdout
