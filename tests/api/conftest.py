"""A real daemon per test module, and a client that closes what its test opened."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from real_daemon import Daemon, plugin_engine, running_daemon, session_body

# Fixture workers reachable by engine name in every API test daemon.
PLUGIN_ENGINES = {
    "hangs": "hangs_on_request",
    "dies": "dies_mid_request",
    "floods": "floods_events",
    "nohello": "never_handshakes",
    "early-exit": "exits_before_handshake",
    "badversion": "wrong_protocol_version",
    "idle-exit": "exits_while_idle",
    "huge-line": "huge_line",
    "unexpected": "unexpected_frame unknown-id",
    "second-hello": "unexpected_frame second-hello",
    "late": "answers_after_deadline",
    "noterm": "ignores_sigterm",
}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    args: list[str] = ["--handshake-timeout", "2"]
    for engine, plugin in PLUGIN_ENGINES.items():
        args += ["--engine", plugin_engine(engine, plugin)]
    with running_daemon(tmp_path_factory.mktemp("home"), args) as running:
        yield running


@pytest.fixture
def api(daemon: Daemon) -> Iterator[httpx.Client]:
    with daemon.client() as client:
        yield client
    daemon.close_open_sessions()


@pytest.fixture
def make_template(api: httpx.Client) -> Callable[..., dict[str, Any]]:
    def make(engine: str = "quickjs", **limits: int) -> dict[str, Any]:
        response = api.post("/templates", json={"name": f"t-{uuid.uuid4()}", "engine": engine})
        assert response.status_code == 201, response.text
        template: dict[str, Any] = response.json()
        if limits:
            put = api.put(f"/templates/{template['id']}/settings", json={"limits": limits})
            assert put.status_code == 200, put.text
        return template

    return make


@pytest.fixture
def make_session(
    api: httpx.Client, worktree: Path, make_template: Callable[..., dict[str, Any]]
) -> Callable[..., dict[str, Any]]:
    def make(template: dict[str, Any] | None = None, tree: Path | None = None) -> dict[str, Any]:
        template = template or make_template()
        response = api.post("/sessions", json=session_body(template["id"], tree or worktree))
        assert response.status_code == 201, response.text
        session: dict[str, Any] = response.json()
        return session

    return make
