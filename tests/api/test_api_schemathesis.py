"""schemathesis against the daemon's own OpenAPI document, on a real daemon.

Every operation gets a bounded number of generated requests, valid and invalid ones.
Each answer must not be a server error, must conform to the document (its status, its
schema) and, for a 4xx, be the error envelope with a code of that status. A path id that
is a UUID is swapped for a real object's (a template, a session, an execution), so the
requests reach the handlers' bodies and not only the 404s; the session's template has
short limits, so no generated script runs for long, and every session is closed at the end.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from real_daemon import Daemon, start_session
from vmctl.supervisor.http.app import ROUTES
from vmctl.supervisor.http.errors import STATUS_BY_CODE
from vmctl.supervisor.http.openapi import build_document

# Per operation, and for each of valid and invalid requests: the module runs in about
# 10 s on two cores. VMCTL_FUZZ_EXAMPLES asks for a longer hunt.
MAX_EXAMPLES = int(os.environ.get("VMCTL_FUZZ_EXAMPLES", "25"))
# These get a session of their own, closed when the test ends: closing the module's one
# would leave the other operations nothing to run in, and a restart's new worker would
# outlive the test that started it.
OWN_SESSION = {
    ("DELETE", "/api/v1/sessions/{session_id}"),
    ("POST", "/api/v1/sessions/{session_id}/close"),
    ("POST", "/api/v1/sessions/{session_id}/restart"),
}


@pytest.fixture(scope="module")
def fuzz_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("fuzz-tree")
    (tree / "main.js").write_text("console.log('hi'); 42\n")
    return tree


@pytest.fixture(scope="module")
def real_ids(daemon: Daemon, fuzz_tree: Path) -> Iterator[dict[str, str]]:
    """A template, a ready session of it and one of its executions, for the path ids."""
    tree = fuzz_tree
    with daemon.client() as api:
        session = start_session(api, tree, wall_ms=1000, cpu_ms=500, max_events=100)
        run = api.post("/executions/repl", json={"session_id": session["id"], "input": "1 + 1"})
        assert run.status_code == 201, run.text
        yield {
            "template_id": session["vm_id"],
            "session_id": session["id"],
            "execution_id": run.json()["id"],
        }
    daemon.close_open_sessions()


@pytest.fixture(scope="module")
def api_schema(daemon: Daemon, real_ids: dict[str, str]) -> Any:
    schema = schemathesis.openapi.from_url(
        daemon.url + "/api/v1/openapi.json", headers=_auth(daemon), timeout=10
    )
    return schema


def _auth(daemon: Daemon) -> dict[str, str]:
    return {"Authorization": f"Bearer {daemon.token}"}


def envelope_on_4xx(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 4xx is ``{"error": {"code", "message", "details"?}}`` with a code of its status."""
    if not 400 <= response.status_code < 500:
        return None
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) <= {"code", "message", "details"}, body
    assert isinstance(body["error"]["message"], str), body
    assert STATUS_BY_CODE.get(body["error"]["code"]) == response.status_code, body
    return True


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    envelope_on_4xx,
]


# The operations, read from the document the daemon serves (test_api_openapi.py checks
# that it is this one). schemathesis's own pytest plugin (``schema.parametrize()``) cannot
# load a schema from a fixture under pytest 9, so the operations are parametrized here.
OPERATIONS = [
    (method.upper(), path)
    for path, item in build_document(ROUTES)["paths"].items()
    for method in item
]


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_input_makes_a_server_error(
    method: str,
    path: str,
    api_schema: Any,
    daemon: Daemon,
    real_ids: dict[str, str],
    fuzz_tree: Path,
) -> None:
    ids = dict(real_ids)
    if (method, path) in OWN_SESSION:
        with daemon.client() as api:
            ids["session_id"] = start_session(api, fuzz_tree)["id"]
    try:
        _fuzz(api_schema[path][method], daemon, ids)
    finally:
        if (method, path) in OWN_SESSION:
            with daemon.client() as api:
                api.post(f"/sessions/{ids['session_id']}/close").raise_for_status()


def _fuzz(operation: Any, daemon: Daemon, ids: dict[str, str]) -> None:
    names = {p["name"] for p in operation.definition.raw.get("parameters", []) if p["in"] == "path"}
    fixed = {n: ids[n] for n in names & set(ids)}
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE, path_parameters=fixed or None),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @given(case=cases)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def answers_well(case: Any) -> None:
        case.call_and_validate(headers=_auth(daemon), timeout=30, checks=CHECKS)

    answers_well()


def test_the_fuzz_left_no_worker_running(daemon: Daemon, real_ids: dict[str, str]) -> None:
    daemon.close_open_sessions()
    with daemon.client() as api:
        summary = api.get("/runtime/summary").json()
    assert summary["active_sessions"] == 0, summary
    assert httpx.get(daemon.url + "/api/v1/health").status_code == 200
    assert Path(daemon.log_path).exists()
