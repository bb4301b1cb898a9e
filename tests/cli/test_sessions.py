"""``vmctl session ...`` against a real daemon."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cli.runner import Vmctl
from real_daemon import TESTAPPS, wait_until

Json = Callable[..., Any]


def test_create_prints_the_ready_session(vmctl: Vmctl, hello_template: dict[str, Any]) -> None:
    result = vmctl(
        "session", "create", "--template-id", hello_template["name"],
        "--worktree-path", str(TESTAPPS / "hello"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    first, *rest = result.stdout.splitlines()
    assert first.startswith("Created session ")
    assert "Status:       ready" in rest
    assert f"Template:     {hello_template['id']}" in rest
    assert any(line.startswith("Worker:       pid ") for line in rest)


def test_create_defaults_workspace_commit_and_worktree(
    vmctl_json: Json, hello_template: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(TESTAPPS / "hello")
    session = vmctl_json("session", "create", "--template-id", hello_template["id"])
    assert session["workspace_id"] == "default"
    assert session["base_commit_oid"] == "none"
    assert session["worktree_path"] == str(TESTAPPS / "hello")


def test_create_needs_an_existing_template_and_directory(
    vmctl: Vmctl, hello_template: dict[str, Any], tmp_path: Path
) -> None:
    unknown = vmctl("session", "create", "--template-id", f"missing-{uuid.uuid4()}")
    assert unknown.exit_code == 1
    assert "(TEMPLATE_NOT_FOUND)" in unknown.stderr
    missing_dir = vmctl(
        "session", "create", "--template-id", hello_template["id"],
        "--worktree-path", str(tmp_path / "nope"),
    )  # fmt: skip
    assert missing_dir.exit_code == 2


def test_a_failing_startup_file_is_reported_with_its_code(
    vmctl: Vmctl, vmctl_json: Json, tmp_path: Path
) -> None:
    (tmp_path / "boom.js").write_text("throw new Error('startup exploded')\n")
    template = vmctl_json("template", "create", "--name", f"boom-{uuid.uuid4()}")
    vmctl_json("template", "add-startup", template["id"], "--path", "boom.js")
    result = vmctl(
        "session", "create", "--template-id", template["id"], "--worktree-path", str(tmp_path)
    )
    assert result.exit_code == 1
    assert "startup exploded" in result.stderr
    assert result.stderr.rstrip().endswith("(STARTUP_FAILED)")


def test_list_get_and_status_filter(vmctl: Vmctl, hello_session: str) -> None:
    listed = vmctl("session", "list", "--status", "ready")
    assert listed.exit_code == 0
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["ID", "TEMPLATE", "STATUS", "CREATED", "WORKTREE"]
    assert any(row.startswith(hello_session) and " ready " in row for row in rows)
    assert hello_session not in vmctl("session", "list", "--status", "closed").stdout
    assert vmctl("session", "list", "--status", "sleeping").exit_code == 2
    got = vmctl("session", "get", hello_session)
    assert got.stdout.startswith(f"Session:      {hello_session}\nStatus:       ready\n")


def test_close_is_idempotent(vmctl: Vmctl, vmctl_json: Json, hello_session: str) -> None:
    first = vmctl("session", "close", hello_session)
    assert (first.exit_code, first.stdout) == (0, f"Closed session {hello_session}\n")
    assert vmctl("session", "close", hello_session).exit_code == 0
    closed = vmctl_json("session", "get", hello_session)
    assert closed["status"] == "closed" and closed["closed_at"] is not None
    refused = vmctl("exec", "repl", hello_session, "1")
    assert refused.exit_code == 1
    assert "(SESSION_NOT_READY)" in refused.stderr


def test_a_killed_worker_crashes_the_session_and_restart_brings_it_back(
    vmctl: Vmctl, vmctl_json: Json, hello_session: str
) -> None:
    assert vmctl("exec", "repl", hello_session, "globalThis.lost = 1").exit_code == 0
    pid = vmctl_json("session", "get", hello_session)["runtime_meta"]["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: vmctl_json("session", "get", hello_session)["status"] == "crashed", 10)
    crashed = vmctl("session", "get", hello_session)
    assert "Status:       crashed" in crashed.stdout
    assert "Last error:" in crashed.stdout

    restarted = vmctl("session", "restart", hello_session)
    assert restarted.exit_code == 0, restarted.output
    assert restarted.stdout.startswith(f"Restarted session {hello_session}\n")
    assert "Status:       ready" in restarted.stdout
    assert "1 restart" in restarted.stdout
    assert vmctl("exec", "repl", hello_session, 'greet("back")').stdout == "Hello, back!\n"
    assert vmctl("exec", "repl", hello_session, "typeof lost").stdout == "undefined\n"


def test_restart_replay_brings_the_state_back_and_says_what_ran(
    vmctl: Vmctl, vmctl_json: Json, hello_session: str
) -> None:
    assert vmctl("exec", "repl", hello_session, "globalThis.kept = 41").exit_code == 0
    assert vmctl("exec", "repl", hello_session, "kept += 1").exit_code == 0
    assert vmctl("exec", "repl", hello_session, "Date.now()").exit_code == 0

    restarted = vmctl("session", "restart", hello_session, "--replay")
    assert restarted.exit_code == 0, restarted.output
    assert "Replay:       3 executions replayed, 1 with another value\n" in restarted.stdout
    assert vmctl("exec", "repl", hello_session, "kept").stdout == "42\n"


def test_a_template_in_use_cannot_be_deleted(
    vmctl: Vmctl, hello_template: dict[str, Any], hello_session: str
) -> None:
    refused = vmctl("template", "delete", hello_template["id"])
    assert refused.exit_code == 1
    assert "(TEMPLATE_IN_USE)" in refused.stderr
    assert vmctl("session", "close", hello_session).exit_code == 0
    assert vmctl("template", "delete", hello_template["id"]).exit_code == 0
