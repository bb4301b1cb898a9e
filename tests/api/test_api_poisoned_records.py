"""No value poisons a record: hostile values written through a real daemon, then listed.

Before value JSON was depth-capped, an inherited ``toJSON`` nesting about 960 deep, or
run-file ``args`` as deep, made the API answer 500 for the execution and from then on for
the session's execution list. Every test here writes such records and lists them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from real_daemon import (
    Daemon,
    error_code,
    plugin_engine,
    running_daemon,
    start_session,
)
from vmctl.api.models import MAX_JSON_DEPTH
from vmctl.supervisor.store.rows import NESTED_TOO_DEEPLY, NOT_AN_OBJECT

Make = Callable[..., dict[str, Any]]

# Around the depth at which the daemon's encoders ran out of recursion (~960 objects).
DEPTHS = range(900, 1001, 10)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A daemon with the echo fixture worker, which can send any value."""
    args = ["--engine", plugin_engine("echo", "echo")]
    with running_daemon(tmp_path_factory.mktemp("home"), args) as running:
        yield running


def _repl(api: httpx.Client, session_id: str, code: str) -> httpx.Response:
    return api.post("/executions/repl", json={"session_id": session_id, "input": code})


def _listed(api: httpx.Client, session_id: str) -> list[dict[str, Any]]:
    """The session's executions, each of whose events list answers too."""
    response = api.get("/executions", params={"session_id": session_id, "limit": 1000})
    assert response.status_code == 200, response.text
    executions: list[dict[str, Any]] = response.json()
    for execution in executions:
        assert api.get(f"/executions/{execution['id']}").status_code == 200
        events = api.get(f"/executions/{execution['id']}/events")
        assert events.status_code == 200, events.text
    return executions


def _nested(depth: int, opening: str = '{"a":', closing: str = "}") -> str:
    return opening * depth + "1" + closing * depth


def test_values_with_a_deep_inherited_to_json_are_recorded_and_listed(
    api: httpx.Client, make_session: Make
) -> None:
    session = make_session()
    for depth in DEPTHS:
        for wrap in ("[v]", "{a: v}"):
            code = (
                "Object.prototype.toJSON = function () {\n"
                "  if (this.a !== undefined || Array.isArray(this)) return this;\n"
                f"  let v = 1; for (let i = 0; i < {depth}; i++) v = {wrap}; return v;\n"
                "};\n"
                "({ b: 1 })"
            )
            response = _repl(api, session["id"], code)
            assert response.status_code == 201, response.text
            assert response.json()["result"]["json"] == {"b": 1}
    assert len(_listed(api, session["id"])) == 2 * len(DEPTHS)


def test_values_nested_past_the_cap_have_no_json_and_are_listed(
    api: httpx.Client, make_session: Make
) -> None:
    session = make_session()
    for depth in (MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1, *DEPTHS, 100_000):
        code = f"let v = 1; for (let i = 0; i < {depth}; i++) v = [v]; v"
        response = _repl(api, session["id"], code)
        assert response.status_code == 201, response.text
        assert ("json" in response.json()["result"]) is (depth <= MAX_JSON_DEPTH)
    _listed(api, session["id"])


def test_run_file_args_nested_past_the_cap_are_refused(
    api: httpx.Client, make_session: Make, worktree: Path
) -> None:
    (worktree / "a.js").write_text("__ARGS__.a !== undefined\n")
    session = make_session()
    for depth in (MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH + 1, *DEPTHS, 5000):
        for field in ("args", "env"):
            value = _nested(depth)
            body = f'{{"session_id": "{session["id"]}", "path": "a.js", "{field}": {value}}}'
            response = api.post(
                "/executions/run-file", content=body, headers={"Content-Type": "application/json"}
            )
            if depth < MAX_JSON_DEPTH:
                assert response.status_code == 201, response.text
            else:
                assert response.status_code == 400, response.text
                assert error_code(response) in ("VALIDATION_ERROR", "INVALID_REQUEST")
    assert len(_listed(api, session["id"])) == 2


def test_a_capability_config_nested_past_the_cap_is_refused(
    api: httpx.Client, make_template: Make
) -> None:
    template = make_template()
    url = f"/templates/{template['id']}/capabilities"
    for depth, status in ((MAX_JSON_DEPTH, 201), (MAX_JSON_DEPTH + 1, 400), (960, 400)):
        body = f'{{"kind": "k", "name": "n{depth}", "config": {_nested(depth)}}}'
        response = api.post(url, content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == status, response.text
    assert api.get(url).status_code == 200
    assert api.get(f"/templates/{template['id']}").status_code == 200


def test_a_worker_value_nested_past_the_cap_is_a_protocol_violation(
    api: httpx.Client, make_template: Make, make_session: Make
) -> None:
    template = make_template("echo")
    session = make_session(template)
    response = _repl(api, session["id"], f"nested {MAX_JSON_DEPTH}")
    assert response.status_code == 201, response.text
    for depth in (MAX_JSON_DEPTH + 1, 960):
        session = make_session(template)
        response = _repl(api, session["id"], f"nested {depth}")
        assert response.status_code == 500 and error_code(response) == "WORKER_CRASHED"
        assert _listed(api, session["id"])[0]["status"] == "crashed"
        crashed = api.get(f"/sessions/{session['id']}").json()
        assert crashed["status"] == "crashed"
        assert f"value json nests deeper than {MAX_JSON_DEPTH}" in crashed["last_error"]


def test_a_stored_record_nested_too_deep_is_clipped_as_it_is_read(
    tmp_path: Path, worktree: Path
) -> None:
    # A store written by another program (an older vmctl, a hand edit) may hold anything.
    home = tmp_path / "home"
    with running_daemon(home) as first, first.client() as api:
        session = start_session(api, worktree)
        execution = _repl(api, session["id"], "({ a: 1 })").json()
        api.post(f"/sessions/{session['id']}/close")
    deep = _nested(990)
    with sqlite3.connect(first.db_path) as conn:
        conn.execute(
            "UPDATE executions SET result = ?, args = ? WHERE id = ?",
            (f'{{"type": "object", "preview": "x", "json": {deep}}}', deep, execution["id"]),
        )
        conn.execute(
            "UPDATE events SET payload = ? WHERE execution_id = ? AND type = 'value'",
            (f'{{"type": "object", "preview": "x", "json": {deep}}}', execution["id"]),
        )
        conn.execute(
            "UPDATE events SET payload = ? WHERE execution_id = ? AND type = 'input_echo'",
            ('{"text": "cut off', execution["id"]),
        )
    conn.close()
    with running_daemon(home) as second, second.client() as api:
        listed = _listed(api, session["id"])
        assert NESTED_TOO_DEEPLY in str(listed[0]["result"])
        assert NESTED_TOO_DEEPLY in str(listed[0]["args"])
        events = api.get(f"/executions/{execution['id']}/events").json()
        assert NESTED_TOO_DEEPLY in str(events[-1]["payload"])
        assert events[0]["payload"] == {"unreadable": NOT_AN_OBJECT}
