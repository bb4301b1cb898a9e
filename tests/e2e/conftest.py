"""One real daemon for the testapp walkthroughs, driven through the CLI in-process."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator

import pytest
from cli.runner import Vmctl, invoke
from click.testing import Result

from real_daemon import TESTAPPS, Daemon


@pytest.fixture
def vmctl(daemon: Daemon) -> Iterator[Vmctl]:
    def run(*args: str, input: str | None = None) -> Result:
        return invoke(["--server-url", daemon.url, *args], {"VMCTL_HOME": str(daemon.home)}, input)

    yield run
    daemon.close_open_sessions()


@pytest.fixture
def app_session(vmctl: Vmctl) -> Callable[..., str]:
    """``app_session(APP, *template setup)``: a ready session on testapps/APP.

    Each setup step is the argument list of a ``vmctl template`` command, with
    the new template's id inserted after its verb.
    """

    def make(app: str, *setup: list[str]) -> str:
        created = vmctl("--json", "template", "create", "--name", f"{app}-{uuid.uuid4()}")
        template_id = json.loads(created.stdout)["id"]
        for verb, *options in setup:
            step = vmctl("template", verb, template_id, *options)
            assert step.exit_code == 0, step.output
        session = vmctl(
            "--json", "session", "create", "--template-id", template_id,
            "--worktree-path", str(TESTAPPS / app),
        )  # fmt: skip
        assert session.exit_code == 0, session.output
        session_id: str = json.loads(session.stdout)["id"]
        return session_id

    return make
