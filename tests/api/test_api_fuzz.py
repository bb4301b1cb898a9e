"""Random bodies, ids and paths at every endpoint: never a 500, and the daemon stays up."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from real_daemon import JSON_BODY, Daemon

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)

FIELDS = [
    "name", "engine", "limits", "resolver", "runtime", "kind", "enabled", "config", "path",
    "order_index", "mode", "template_id", "workspace_id", "base_commit_oid", "worktree_path",
    "session_id", "input", "args", "env", "cpu_ms", "wall_ms",
]  # fmt: skip

bodies = st.one_of(
    json_values,
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6),
)

ids = st.one_of(
    st.uuids().map(str),
    st.text(alphabet="0123456789abcdefABCDEF-", max_size=40),
    st.text(max_size=20).filter(lambda s: "/" not in s and "?" not in s and "#" not in s),
)

paths = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["../x", "/etc/passwd", ".", "a/../../b", "./a.js", "\x00", "a" * 300]),
)

ENDPOINTS: list[tuple[str, str]] = [
    ("POST", "/templates"),
    ("PUT", "/templates/{id}/settings"),
    ("POST", "/templates/{id}/capabilities"),
    ("POST", "/templates/{id}/startup-files"),
    ("POST", "/templates/{id}/modules"),
    ("POST", "/templates/{id}/libraries"),
    ("DELETE", "/templates/{id}/modules/{name}"),
    ("GET", "/templates/{id}"),
    ("DELETE", "/templates/{id}"),
    ("POST", "/sessions"),
    ("GET", "/sessions/{id}"),
    ("POST", "/sessions/{id}/restart"),
    ("POST", "/executions/repl"),
    ("POST", "/executions/run-file"),
    ("GET", "/executions/{id}/events"),
]


@pytest.fixture(scope="module")
def fuzz_target(daemon: Daemon) -> dict[str, str]:
    """A real template and ready session, so random bodies can hit real rows too."""
    with daemon.client() as client:
        template = client.post("/templates", json={"name": "fuzz-target"}).json()
        return {"template_id": template["id"]}


def _send(client: httpx.Client, method: str, path: str, body: Any) -> httpx.Response:
    content = json.dumps(body).encode()
    return client.request(method, path, content=content, headers=JSON_BODY)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(endpoint=st.sampled_from(ENDPOINTS), ident=ids, name=ids, body=bodies, real=st.booleans())
def test_random_requests_never_500(
    daemon: Daemon,
    fuzz_target: dict[str, str],
    endpoint: tuple[str, str],
    ident: str,
    name: str,
    body: Any,
    real: bool,
) -> None:
    method, template = endpoint
    chosen = fuzz_target["template_id"] if real else ident
    path = template.replace("{id}", quote(chosen, safe="")).replace(
        "{name}", quote(name or "x", safe="")
    )
    with daemon.client() as client:
        response = _send(client, method, path, body)
        assert response.status_code < 500, (method, path, body, response.text)
        assert response.status_code in (200, 201) or "error" in response.json()
        assert client.get("/health").status_code == 200


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(path=paths)
def test_random_run_file_paths_never_500(
    daemon: Daemon, make_session: Callable[..., dict[str, Any]], path: str
) -> None:
    session = _shared_session(daemon, make_session)
    with daemon.client() as client:
        response = client.post("/executions/run-file", json={"session_id": session, "path": path})
        assert response.status_code in {201, 400, 404, 422}, (path, response.text)


_session_cache: dict[str, str] = {}


def _shared_session(daemon: Daemon, make_session: Callable[..., dict[str, Any]]) -> str:
    # hypothesis calls the test body many times inside one pytest test: one session serves all.
    if daemon.url not in _session_cache:
        _session_cache[daemon.url] = make_session()["id"]
    return _session_cache[daemon.url]


def test_fuzzing_left_no_running_records(daemon: Daemon, tmp_path: Path) -> None:
    with daemon.client() as client:
        for session in client.get("/sessions").json():
            executions = client.get("/executions", params={"session_id": session["id"]}).json()
            assert all(e["status"] != "running" for e in executions)
