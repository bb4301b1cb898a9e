"""Live executions in the CLI: output as it happens, --no-wait, follow, a dropped stream,
--json as lines, --json after a command's name, and a busy session."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import pytest

from cli.cutting_proxy import cutting_proxy
from cli.runner import Vmctl, invoke, vmctl_process
from real_daemon import Daemon
from vmctl.cli.main import cli
from vmctl.client import live

Json = Callable[..., Any]

# Logs, then spins until the file "go" appears in its worktree: the test decides when it
# ends, so what the CLI printed before that was printed while it ran.
GATED = (
    'console.log("waiting"); const fs = require("fs");'
    ' while (!fs.existsSync("go")) {} console.log("done"); 7'
)


@pytest.fixture
def gated_session(vmctl_json: Json, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A session on an empty worktree with the fs module and a minute of time."""
    template = vmctl_json("template", "create", "--name", f"gated-{uuid.uuid4()}")
    vmctl_json("template", "add-module", template["id"], "--name", "fs")
    vmctl_json("template", "set-limits", template["id"], "--wall-ms", "60000", "--cpu-ms", "60000")
    session = vmctl_json(
        "session", "create", "--template-id", template["id"], "--worktree-path", str(tmp_path)
    )
    yield session["id"], tmp_path / "go"
    (tmp_path / "go").touch()  # whatever happened, let a still-running snippet end


def test_console_lines_are_printed_while_the_execution_runs(
    daemon: Daemon, vmctl_json: Json, gated_session: tuple[str, Path]
) -> None:
    session, gate = gated_session
    with vmctl_process(daemon.url, str(daemon.home), "exec", "repl", session, GATED) as process:
        process.wait_for_line("waiting")
        [running] = vmctl_json("exec", "list", session, "--limit", "1")
        assert running["status"] == "running"
        gate.touch()
        code, out, err = process.finish()
    assert (code, out, err) == (0, ["waiting", "done", "7"], [])


def test_no_wait_prints_the_id_and_follow_attaches(
    daemon: Daemon, vmctl: Vmctl, vmctl_json: Json, gated_session: tuple[str, Path]
) -> None:
    session, gate = gated_session
    started = vmctl("exec", "repl", session, GATED, "--no-wait")
    assert started.exit_code == 0, started.output
    execution_id = started.stdout.strip()
    assert vmctl_json("exec", "get", execution_id)["status"] == "running"
    with vmctl_process(daemon.url, str(daemon.home), "exec", "follow", execution_id) as process:
        process.wait_for_line("waiting")
        gate.touch()
        code, out, _ = process.finish()
    assert (code, out) == (0, ["waiting", "done", "7"])


def test_no_wait_with_json_prints_the_running_record(
    vmctl: Vmctl, vmctl_json: Json, gated_session: tuple[str, Path]
) -> None:
    session, gate = gated_session
    record = vmctl_json("exec", "repl", session, GATED, "--no-wait")
    assert (record["status"], record["session_id"]) == ("running", session)
    gate.touch()
    assert vmctl("exec", "follow", record["id"]).exit_code == 0


def test_follow_an_ended_execution_from_any_event(
    vmctl: Vmctl, vmctl_json: Json, hello_session: str
) -> None:
    assert vmctl("exec", "repl", hello_session, "for (const c of 'abc') console.log(c); 1").stdout
    [ended] = vmctl_json("exec", "list", hello_session, "--limit", "1")
    whole = vmctl("exec", "follow", ended["id"])
    assert (whole.exit_code, whole.stdout) == (0, "a\nb\nc\n1\n")
    # Events: 1 input_echo, 2-4 the console lines, 5 the value.
    later = vmctl("exec", "follow", ended["id"], "--after-seq", "3")
    assert (later.exit_code, later.stdout) == (0, "c\n1\n")
    failed = vmctl("exec", "repl", hello_session, "throw new Error('no')")
    [thrown] = vmctl_json("exec", "list", hello_session, "--limit", "1")
    again = vmctl("exec", "follow", thrown["id"])
    assert (again.exit_code, again.stdout) == (2, failed.stdout)


def test_follow_an_unknown_execution_is_an_error(vmctl: Vmctl) -> None:
    result = vmctl("exec", "follow", str(uuid.uuid4()))
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.rstrip().endswith("(EXECUTION_NOT_FOUND)")


def test_json_streams_one_event_per_line_then_the_record(vmctl: Vmctl, hello_session: str) -> None:
    result = vmctl("--json", "exec", "repl", hello_session, 'console.log("hi"); 6 * 7')
    assert result.exit_code == 0, result.output
    *events, record = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(e["seq"], e["type"]) for e in events] == [
        (1, "input_echo"), (2, "console"), (3, "value"),
    ]  # fmt: skip
    assert {e["execution_id"] for e in events} == {record["id"]}
    assert (record["status"], record["result"]["json"]) == ("ok", 42)
    failed = vmctl("exec", "repl", hello_session, "throw new Error('no')", "--json")
    assert failed.exit_code == 2
    assert json.loads(failed.stdout.splitlines()[-1])["status"] == "error"


def test_json_is_accepted_after_any_command(vmctl: Vmctl, hello_session: str) -> None:
    before = vmctl("--json", "session", "list")
    after = vmctl("session", "list", "--json")
    between = vmctl("session", "--json", "list")
    assert before.exit_code == after.exit_code == between.exit_code == 0
    assert json.loads(after.stdout) == json.loads(before.stdout) == json.loads(between.stdout)
    got = vmctl("session", "get", hello_session, "--json")
    assert json.loads(got.stdout)["id"] == hello_session
    assert vmctl("session", "list").stdout.startswith("ID ")  # without it: text


def test_every_command_takes_json_after_its_name() -> None:
    def walk(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
        yield path, command
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from walk(sub, f"{path} {name}")

    missing = [
        path
        for path, command in walk(cli, "vmctl")
        if not any("--json" in param.opts for param in command.params)
    ]
    assert missing == []


def test_a_busy_session_is_an_error(
    vmctl: Vmctl, vmctl_json: Json, gated_session: tuple[str, Path]
) -> None:
    session, gate = gated_session
    running = vmctl_json("exec", "repl", session, GATED, "--no-wait")
    for args in (("exec", "repl", session, "1"), ("--json", "exec", "repl", session, "1")):
        busy = vmctl(*args)
        assert (busy.exit_code, busy.stdout) == (1, "")
        assert busy.stderr == "Error: Session is busy (SESSION_BUSY)\n"
    assert vmctl_json("exec", "get", running["id"])["status"] == "running"
    gate.touch()
    assert vmctl("exec", "follow", running["id"]).exit_code == 0


def test_cancel_stops_a_running_execution_and_keeps_the_session(
    vmctl: Vmctl, vmctl_json: Json, gated_session: tuple[str, Path]
) -> None:
    session, _ = gated_session
    assert vmctl("exec", "repl", session, "globalThis.kept = 'still here'").exit_code == 0
    running = vmctl_json("exec", "repl", session, GATED, "--no-wait")
    cancelled = vmctl("exec", "cancel", running["id"])
    assert cancelled.exit_code == 0, cancelled.output
    assert "Status:     cancelled" in cancelled.stdout
    assert vmctl_json("exec", "cancel", running["id"])["status"] == "cancelled"  # idempotent
    followed = vmctl("exec", "follow", running["id"])
    assert followed.exit_code == 2
    assert followed.stdout.splitlines()[0] == "waiting"
    assert followed.stdout.splitlines()[-1].startswith("cancelled")
    assert vmctl("exec", "repl", session, "kept").stdout == "still here\n"


# -- a dropped stream ---------------------------------------------------------------------

LINES = 2000


@pytest.fixture
def long_execution(vmctl: Vmctl, vmctl_json: Json, hello_session: str) -> str:
    """An ended execution of LINES console lines (its stream is some 250 KB)."""
    code = f"for (let i = 1; i <= {LINES}; i++) console.log('line ' + i); 'end'"
    assert vmctl("exec", "repl", hello_session, code).exit_code == 0
    execution_id: str = vmctl_json("exec", "list", hello_session, "--limit", "1")[0]["id"]
    return execution_id


def test_a_dropped_stream_is_resumed_without_a_gap_or_a_repeat(
    daemon: Daemon, long_execution: str
) -> None:
    expected = [f"line {i}" for i in range(1, LINES + 1)] + ["end"]
    with cutting_proxy(daemon.port, cuts=[40_000, 40_000, 40_000]) as proxy:
        env = {"VMCTL_HOME": str(daemon.home)}
        result = invoke(["--server-url", proxy.url, "exec", "follow", long_execution], env)
        assert proxy.cut == 3
        resumed_from = proxy.last_event_ids()
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == expected
    # The first request asks from the start; each reconnect from the last event it printed.
    assert resumed_from[0] == "" and len(resumed_from) == 4
    seqs = [int(value) for value in resumed_from[1:]]
    assert seqs == sorted(seqs) and seqs[0] > 1 and seqs[-1] < LINES + 2


def test_a_stream_that_keeps_dropping_says_how_to_pick_it_up(
    daemon: Daemon, long_execution: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "RETRY_DELAYS", (0.0, 0.0))
    # Some lines, then connections that close before any answer, more than the retries.
    with cutting_proxy(daemon.port, cuts=[40_000, 0, 0, 0, 0]) as proxy:
        env = {"VMCTL_HOME": str(daemon.home)}
        result = invoke(["--server-url", proxy.url, "exec", "follow", long_execution], env)
        assert proxy.cut == 3  # the stream that brought lines, then the two retries
    assert result.exit_code == 1
    printed = result.stdout.splitlines()
    assert 0 < len(printed) < LINES
    assert printed == [f"line {i}" for i in range(1, len(printed) + 1)]
    last_seq = len(printed) + 1  # the input_echo came first
    assert result.stderr.startswith("Error: ")
    assert f"`vmctl exec follow {long_execution} --after-seq {last_seq}`" in result.stderr
