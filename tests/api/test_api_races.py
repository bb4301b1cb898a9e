"""Races between a worker's death and the request that reaches its session at the same moment.

Whoever wins, the client learns that the worker died: never that the session was closed.
"""

from __future__ import annotations

import collections
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from real_daemon import error_code, running_daemon, session_body, start_session, wait_until

Make = Callable[..., dict[str, Any]]

ROUNDS = 100


def test_an_execute_right_after_the_worker_is_killed_always_learns_of_the_crash(
    api: httpx.Client, make_session: Make
) -> None:
    session = make_session()
    answers: collections.Counter[str] = collections.Counter()
    for _ in range(ROUNDS):
        os.kill(session["runtime_meta"]["pid"], signal.SIGKILL)
        response = api.post("/executions/repl", json={"session_id": session["id"], "input": "1"})
        answers[_kind(api, response)] += 1
        session = api.post(f"/sessions/{session['id']}/restart").json()
        assert session["status"] == "ready", session
    # Either the daemon saw the death first (the session is crashed: 409), or the
    # execution did, and it is recorded as crashed (500): nothing else.
    assert set(answers) <= {"500 crashed", "409 crashed"}, answers


def _kind(api: httpx.Client, response: httpx.Response) -> str:
    """What the answer told the client: status and the state it names, or the whole answer."""
    if response.status_code == 500 and error_code(response) == "WORKER_CRASHED":
        execution_id = response.json()["error"]["details"]["execution_id"]
        execution = api.get(f"/executions/{execution_id}").json()
        events = api.get(f"/executions/{execution_id}/events").json()
        assert execution["status"] == "crashed", execution
        assert execution["error"]["code"] == "WORKER_CRASHED", execution
        assert (
            events[-1]["type"] == "system" and "Worker crashed" in events[-1]["payload"]["message"]
        ), events
        return "500 crashed"
    if response.status_code == 409 and error_code(response) == "SESSION_NOT_READY":
        details = response.json()["error"]["details"]
        return f"409 {details['status']}"
    return f"{response.status_code} {response.text}"


def test_an_idle_worker_that_stops_answering_is_found_by_the_heartbeat(
    tmp_path: Path, worktree: Path
) -> None:
    args = ["--heartbeat-interval", "0.2"]
    with running_daemon(tmp_path / "home", args) as daemon, daemon.client() as api:
        session = start_session(api, worktree)
        os.kill(session["runtime_meta"]["pid"], signal.SIGSTOP)
        wait_until(
            lambda: api.get(f"/sessions/{session['id']}").json()["status"] == "crashed",
            timeout=15,
        )
        crashed = api.get(f"/sessions/{session['id']}").json()
        # Another session, answering, is left alone.
        other = api.post("/sessions", json=session_body(session["vm_id"], worktree)).json()
        assert "no answer to a heartbeat within 5 s" in crashed["last_error"]
        assert api.get(f"/sessions/{other['id']}").json()["status"] == "ready"
