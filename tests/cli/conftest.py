"""The CLI against a real daemon: click's CliRunner in-process, the daemon a subprocess."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from click.testing import Result

from cli.runner import Vmctl, invoke
from real_daemon import TESTAPPS, Daemon


@pytest.fixture
def vmctl(daemon: Daemon) -> Iterator[Vmctl]:
    def run(*args: str, input: str | None = None) -> Result:
        env = {"VMCTL_HOME": str(daemon.home)}
        return invoke(["--server-url", daemon.url, *args], env, input)

    yield run
    daemon.close_open_sessions()


@pytest.fixture
def vmctl_json(vmctl: Vmctl) -> Callable[..., Any]:
    """``vmctl --json ARGS``, asserting exit 0, decoded."""

    def run(*args: str) -> Any:
        result = vmctl("--json", *args)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    return run


@pytest.fixture
def hello_template(vmctl_json: Callable[..., Any]) -> dict[str, Any]:
    """A template with testapps/hello's two startup files, under a unique name."""
    template: dict[str, Any] = vmctl_json("template", "create", "--name", f"hello-{uuid.uuid4()}")
    for path, order in (("startup/00-greeting.js", "0"), ("startup/10-greet.js", "10")):
        vmctl_json("template", "add-startup", template["id"], "--path", path, "--order", order)
    return template


@pytest.fixture
def hello_session(vmctl_json: Callable[..., Any], hello_template: dict[str, Any]) -> str:
    session = vmctl_json(
        "session", "create", "--template-id", hello_template["id"],
        "--worktree-path", str(TESTAPPS / "hello"),
    )  # fmt: skip
    assert session["status"] == "ready"
    session_id: str = session["id"]
    return session_id
