"""Ctrl-C in a real ``vmctl`` process: the first cancels the execution, a second detaches."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cli.runner import Vmctl, vmctl_process
from real_daemon import TESTAPPS, Daemon, plugin_engine, running_daemon

Json = Callable[..., Any]
EXIT_INTERRUPTED = 130


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """The built-in engine, and "hang": a worker that takes one request and then reads
    nothing more, not even a cancel, like one stuck in native code."""
    args = ["--engine", plugin_engine("hang", "hangs_on_request")]
    with running_daemon(tmp_path_factory.mktemp("home"), args) as running:
        yield running


@pytest.fixture
def session_of(vmctl_json: Json) -> Callable[..., str]:
    def make(engine: str = "quickjs") -> str:
        name = f"interrupt-{uuid.uuid4()}"
        template = vmctl_json("template", "create", "--name", name, "--engine", engine)
        limits = ("--wall-ms", "60000", "--cpu-ms", "60000")
        vmctl_json("template", "set-limits", template["id"], *limits)
        session = vmctl_json(
            "session", "create", "--template-id", template["id"],
            "--worktree-path", str(TESTAPPS / "hello"),
        )  # fmt: skip
        session_id: str = session["id"]
        return session_id

    return make


def test_ctrl_c_cancels_the_execution_and_the_session_keeps_its_state(
    daemon: Daemon, vmctl: Vmctl, vmctl_json: Json, session_of: Callable[..., str]
) -> None:
    session = session_of()
    assert vmctl("exec", "repl", session, "globalThis.kept = 'still here'").exit_code == 0
    code = 'console.log("spinning"); while (true) {}'
    with vmctl_process(daemon.url, str(daemon.home), "exec", "repl", session, code) as process:
        process.wait_for_line("spinning")
        process.interrupt()
        exit_code, out, err = process.finish()
    assert exit_code == EXIT_INTERRUPTED, err
    assert out[0] == "spinning" and out[-1].startswith("cancelled")
    assert any("cancelling execution" in line for line in err)
    [record] = vmctl_json("exec", "list", session, "--limit", "1")
    assert record["status"] == "cancelled"
    assert vmctl_json("session", "get", session)["status"] == "ready"
    assert vmctl("exec", "repl", session, "kept").stdout == "still here\n"


def test_ctrl_c_with_json_ends_with_the_cancelled_record(
    daemon: Daemon, session_of: Callable[..., str]
) -> None:
    session = session_of()
    code = 'console.log("spinning"); while (true) {}'
    argv = ("--json", "exec", "repl", session, code)
    with vmctl_process(daemon.url, str(daemon.home), *argv) as process:
        process.wait_for_line('"spinning"')
        process.interrupt()
        exit_code, out, _ = process.finish()
    assert exit_code == EXIT_INTERRUPTED
    assert '"status":"cancelled"' in out[-1] and '"seq"' not in out[-1]


def test_ctrl_c_stops_a_one_shot_run_and_cleans_up(daemon: Daemon, vmctl_json: Json) -> None:
    templates = {t["id"] for t in vmctl_json("template", "list")}
    argv = ("run", str(TESTAPPS / "loop" / "main.js"), "--timeout-ms", "60000")
    with vmctl_process(daemon.url, str(daemon.home), *argv) as process:
        process.wait_for_line("looping forever")
        process.interrupt()
        exit_code, out, _ = process.finish()
    assert exit_code == EXIT_INTERRUPTED
    assert out[-1].startswith("cancelled")
    assert {t["id"] for t in vmctl_json("template", "list")} == templates
    assert all(s["status"] == "closed" for s in vmctl_json("session", "list"))


def test_a_second_ctrl_c_detaches_without_waiting_for_the_cancel(
    daemon: Daemon, vmctl_json: Json, session_of: Callable[..., str]
) -> None:
    session = session_of("hang")  # ignores the cancel: only the kill after a grace ends it
    argv = ("--json", "exec", "repl", session, "1")
    with vmctl_process(daemon.url, str(daemon.home), *argv) as process:
        # The daemon records the input first: once it is printed, the CLI is streaming.
        process.wait_for_line('"input_echo"')
        process.interrupt()
        process.wait_for_line("cancelling execution", stream="stderr")
        process.interrupt()
        exit_code, out, err = process.finish()
    assert exit_code == EXIT_INTERRUPTED, (out, err)
    assert len(out) == 1  # detached before the end: no final record
    execution_id = vmctl_json("exec", "list", session, "--limit", "1")[0]["id"]
    assert err[-1] == (
        f"detached from execution {execution_id}; `vmctl exec follow {execution_id}"
        " --after-seq 1` picks up its output"
    )
