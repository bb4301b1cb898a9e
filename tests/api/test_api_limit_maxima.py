"""Limit maxima: what every session can have at once (docs/behaviour.md, "What the maxima cost")."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from real_daemon import error_code, running_daemon, session_body
from vmctl.supervisor.config import LIMIT_MAXIMUMS

Make = Callable[..., dict[str, Any]]


def test_each_limit_may_be_set_to_its_maximum_and_no_higher(
    api: httpx.Client, make_template: Make
) -> None:
    template = make_template()
    url = f"/templates/{template['id']}/settings"
    response = api.put(url, json={"limits": LIMIT_MAXIMUMS})
    assert response.status_code == 200, response.text
    assert response.json()["limits"] == LIMIT_MAXIMUMS
    for name, maximum in LIMIT_MAXIMUMS.items():
        response = api.put(url, json={"limits": {name: maximum + 1}})
        assert response.status_code == 400 and error_code(response) == "VALIDATION_ERROR"
        assert response.json()["error"]["details"] == {
            "field": f"limits.{name}",
            "maximum": maximum,
        }


def test_a_template_stored_past_todays_maxima_runs_within_them(
    tmp_path: Path, worktree: Path
) -> None:
    home = tmp_path / "home"
    with running_daemon(home) as first, first.client() as api:
        template = api.post("/templates", json={"name": "old"}).json()
    limits = (
        '{"cpu_ms": 5000, "wall_ms": 10000, "mem_mb": 128, "max_events": 1000000,'
        ' "max_output_kb": 65536}'
    )
    sql = "UPDATE settings SET limits = ? WHERE template_id = ?"
    with sqlite3.connect(first.db_path) as conn:
        conn.execute(sql, (limits, template["id"]))
    conn.close()
    with running_daemon(home) as second, second.client() as api:
        session = api.post("/sessions", json=session_body(template["id"], worktree)).json()
        code = "for (let i = 0; i < 150000; i++) console.log(i)"
        response = api.post("/executions/repl", json={"session_id": session["id"], "input": code})
        assert response.status_code == 422, response.text
        details = response.json()["error"]["details"]
        assert (details["limit"], details["limit_value"]) == ("max_events", 100_000)
        api.post(f"/sessions/{session['id']}/close")
