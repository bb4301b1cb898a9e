"""``vmctl exec ...`` against a real daemon: transcripts, records and exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cli.runner import Vmctl
from real_daemon import Daemon, wait_until

Json = Callable[..., Any]


@pytest.fixture
def limited(vmctl_json: Json, hello_template: dict[str, Any]) -> Callable[..., str]:
    """A ready session of the hello template after ``set-limits`` with the given options."""

    def make(*limit_options: str) -> str:
        vmctl_json("template", "set-limits", hello_template["id"], *limit_options)
        session = vmctl_json(
            "session", "create", "--template-id", hello_template["id"],
            "--worktree-path", str(Path(__file__).parents[2] / "testapps" / "hello"),
        )  # fmt: skip
        session_id: str = session["id"]
        return session_id

    return make


def test_repl_prints_console_lines_then_the_value(vmctl: Vmctl, hello_session: str) -> None:
    code = 'console.log("a"); console.warn("b"); console.info("c"); console.error("d"); [1, 2]'
    result = vmctl("exec", "repl", hello_session, code)
    assert (result.exit_code, result.stdout, result.stderr) == (0, "a\nc\n[ 1, 2 ]\n", "b\nd\n")


def test_repl_keeps_state_between_snippets(vmctl: Vmctl, hello_session: str) -> None:
    assert vmctl("exec", "repl", hello_session, "globalThis.n = 41").exit_code == 0
    assert vmctl("exec", "repl", hello_session, "n + 1").stdout == "42\n"


def test_repl_reads_code_from_stdin_with_a_dash(vmctl: Vmctl, hello_session: str) -> None:
    result = vmctl("exec", "repl", hello_session, "-", input='const s = "from stdin";\ns\n')
    assert (result.exit_code, result.stdout) == (0, "from stdin\n")


def test_an_exception_prints_message_and_stack_and_exits_2(
    vmctl: Vmctl, hello_session: str
) -> None:
    result = vmctl("exec", "repl", hello_session, "function f() { null.x }\nf()")
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    assert lines[0].startswith("TypeError: ")
    assert any("at f" in line for line in lines[1:])
    assert result.stderr == ""


def test_json_prints_the_execution_record_and_keeps_the_exit_code(
    vmctl: Vmctl, hello_session: str
) -> None:
    ok = vmctl("--json", "exec", "repl", hello_session, "6 * 7")
    assert ok.exit_code == 0
    record = json.loads(ok.stdout.splitlines()[-1])  # after a line per event
    assert (record["status"], record["result"]["json"]) == ("ok", 42)
    failed = vmctl("--json", "exec", "repl", hello_session, "throw new Error('no')")
    assert failed.exit_code == 2
    assert json.loads(failed.stdout.splitlines()[-1])["status"] == "error"


def test_the_event_limit_is_reported_in_words(vmctl: Vmctl, limited: Callable[..., str]) -> None:
    session = limited("--max-events", "5")
    result = vmctl("exec", "repl", session, "for (let i = 0; i < 100; i++) console.log(i)")
    assert result.exit_code == 2
    assert result.stdout.splitlines() == [
        "0",
        "1",
        "2",
        "3",
        "stopped: max_events limit of 5 reached",
    ]


def test_the_wall_limit_stops_a_loop_and_keeps_the_session(
    vmctl: Vmctl, vmctl_json: Json, limited: Callable[..., str]
) -> None:
    session = limited("--wall-ms", "300")
    result = vmctl("exec", "repl", session, "while (true) {}")
    assert result.exit_code == 2
    assert result.stdout == "stopped: wall_ms limit of 300 ms reached\n"
    record = vmctl_json("exec", "list", session, "--limit", "1")[0]
    assert record["status"] == "timeout"
    assert vmctl("exec", "repl", session, 'greet("still")').stdout == "Hello, still!\n"


def test_run_file_passes_args_and_env(vmctl: Vmctl, vmctl_json: Json, tmp_path: Path) -> None:
    (tmp_path / "show.js").write_text("console.log(JSON.stringify([__ARGS__, __ENV__]))\n")
    template = vmctl_json("template", "create", "--name", f"plain-{uuid.uuid4()}")
    session = vmctl_json(
        "session", "create", "--template-id", template["id"], "--worktree-path", str(tmp_path)
    )["id"]
    result = vmctl(
        "exec", "run-file", session, "show.js", "--args", '{"n": 1}', "--env", '{"MODE": "t"}'
    )
    assert (result.exit_code, result.stdout) == (0, '[{"n":1},{"MODE":"t"}]\n')
    assert vmctl("exec", "run-file", session, "show.js", "--args", "[]").exit_code == 2


def test_run_file_path_errors(vmctl: Vmctl, hello_session: str) -> None:
    missing = vmctl("exec", "run-file", hello_session, "nope.js")
    assert missing.exit_code == 1
    assert missing.stderr.rstrip().endswith("(FILE_NOT_FOUND)")
    escaping = vmctl("exec", "run-file", hello_session, "../loop/main.js")
    assert escaping.exit_code == 1
    assert "(INVALID_PATH)" in escaping.stderr


def test_list_get_and_events(vmctl: Vmctl, vmctl_json: Json, hello_session: str) -> None:
    vmctl("exec", "repl", hello_session, 'console.log("x"); 1')
    listed = vmctl("exec", "list", hello_session)
    header, first, *_ = listed.stdout.splitlines()
    assert header.split() == ["ID", "KIND", "STATUS", "STARTED", "WALL_MS", "SOURCE"]
    execution_id = first.split()[0]
    assert first.split()[1:3] == ["repl", "ok"]

    got = vmctl("exec", "get", execution_id)
    assert f"Execution:  {execution_id}" in got.stdout
    assert 'Input:      console.log("x"); 1' in got.stdout
    assert "Result:     1" in got.stdout

    events = vmctl("exec", "events", execution_id).stdout.splitlines()
    assert [line.split()[2] for line in events[1:]] == ["input_echo", "console", "value"]
    later = vmctl_json("exec", "events", execution_id, "--after-seq", "2")
    assert [e["seq"] for e in later] == [3]
    assert vmctl("exec", "list", hello_session, "--limit", "1").stdout.count("\n") == 2


def test_an_execution_whose_worker_is_killed_ends_crashed(
    daemon: Daemon, vmctl_json: Json, limited: Callable[..., str]
) -> None:
    session = limited("--wall-ms", "60000", "--cpu-ms", "60000")
    pid = vmctl_json("session", "get", session)["runtime_meta"]["pid"]
    argv = [sys.executable, "-m", "vmctl.cli.main", "--server-url", daemon.url]
    env = {**os.environ, "NO_COLOR": "1", "VMCTL_HOME": str(daemon.home)}  # the token's
    with subprocess.Popen(
        [*argv, "exec", "repl", session, "while (true) {}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as proc:  # fmt: skip
        try:
            wait_until(lambda: any(e["status"] == "running"
                       for e in vmctl_json("exec", "list", session)), 10)  # fmt: skip
            os.kill(pid, signal.SIGKILL)
            out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 2, err
    assert out.splitlines()[-1].startswith("crashed: ")
    assert vmctl_json("session", "get", session)["status"] == "crashed"
