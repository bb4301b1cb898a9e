"""Misbehaving workers (testdata/plugins, registered with ``--engine``) through the API.

Each must end its session or execution in the right status with a clear
reason, fast, and leave no process behind (the autouse leak check).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from real_daemon import error_code, session_body, wait_until

Make = Callable[..., dict[str, Any]]


def _repl(api: httpx.Client, session_id: str, code: str = "1") -> httpx.Response:
    return api.post("/executions/repl", json={"session_id": session_id, "input": code})


def _gone(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize(
    ("engine", "reason"),
    [
        ("nohello", "no handshake within 2 s"),
        ("early-exit", "exited with code 3"),
        ("badversion", "protocol"),
    ],
)
def test_workers_that_fail_to_start_fail_the_session(
    api: httpx.Client, make_template: Make, worktree: Path, engine: str, reason: str
) -> None:
    template = make_template(engine)
    started = time.monotonic()
    response = api.post("/sessions", json=session_body(template["id"], worktree))
    assert time.monotonic() - started < 5.0
    assert response.status_code == 422 and error_code(response) == "STARTUP_FAILED"
    error = response.json()["error"]
    assert reason in error["message"]
    session = api.get(f"/sessions/{error['details']['session_id']}").json()
    assert session["status"] == "crashed" and reason in session["last_error"]


def test_stderr_of_a_failed_start_is_in_the_reason(
    api: httpx.Client, make_template: Make, worktree: Path
) -> None:
    response = api.post("/sessions", json=session_body(make_template("early-exit")["id"], worktree))
    assert "the engine could not be loaded" in response.json()["error"]["message"]


def test_worker_dying_mid_request_is_worker_crashed(
    api: httpx.Client, make_session: Make, make_template: Make
) -> None:
    session = make_session(make_template("dies"))
    response = _repl(api, session["id"])
    assert response.status_code == 500 and error_code(response) == "WORKER_CRASHED"
    details = response.json()["error"]["details"]
    assert details["session_id"] == session["id"]
    execution = api.get(f"/executions/{details['execution_id']}").json()
    assert execution["status"] == "crashed" and execution["ended_at"]
    events = api.get(f"/executions/{execution['id']}/events").json()
    # The two events it sent before dying are kept, then the daemon's note.
    assert [e["type"] for e in events] == ["input_echo", "console", "console", "system"]
    assert "SIGSEGV" in events[-1]["payload"]["message"]
    after = api.get(f"/sessions/{session['id']}").json()
    assert after["status"] == "crashed" and "SIGSEGV" in after["last_error"]
    assert _gone(session["runtime_meta"]["pid"])


def test_hanging_worker_is_killed_at_the_hard_deadline(
    api: httpx.Client, make_template: Make, make_session: Make
) -> None:
    session = make_session(make_template("hangs", wall_ms=200, cpu_ms=200))
    started = time.monotonic()
    response = _repl(api, session["id"])
    assert time.monotonic() - started < 5.0
    assert response.status_code == 422 and error_code(response) == "EXECUTION_TIMEOUT"
    execution = api.get(f"/executions/{response.json()['error']['details']['execution_id']}")
    assert execution.json()["status"] == "timeout"
    after = api.get(f"/sessions/{session['id']}").json()
    assert after["status"] == "crashed" and "hard deadline" in after["last_error"]
    assert _gone(session["runtime_meta"]["pid"])


def test_flooding_worker_is_stopped_at_the_event_limit(
    api: httpx.Client, make_template: Make, make_session: Make
) -> None:
    session = make_session(make_template("floods", max_events=100))
    response = _repl(api, session["id"])
    assert response.status_code == 422 and error_code(response) == "OUTPUT_LIMIT_EXCEEDED"
    details = response.json()["error"]["details"]
    events = api.get(f"/executions/{details['execution_id']}/events").json()
    assert len(events) == 101 and events[-1]["type"] == "system"
    # It ignored the cancel, so it was killed.
    assert api.get(f"/sessions/{session['id']}").json()["status"] == "crashed"


def test_huge_line_is_a_protocol_violation(
    api: httpx.Client, make_template: Make, make_session: Make
) -> None:
    session = make_session(make_template("huge-line"))
    response = _repl(api, session["id"])
    assert response.status_code == 500 and error_code(response) == "WORKER_CRASHED"
    after = api.get(f"/sessions/{session['id']}").json()
    assert "protocol violation" in after["last_error"]


@pytest.mark.parametrize("engine", ["unexpected", "second-hello"])
def test_unexpected_frame_is_a_protocol_violation(
    api: httpx.Client, make_template: Make, make_session: Make, engine: str
) -> None:
    session = make_session(make_template(engine))
    response = _repl(api, session["id"])
    assert response.status_code == 500 and error_code(response) == "WORKER_CRASHED"
    assert "protocol violation" in api.get(f"/sessions/{session['id']}").json()["last_error"]


def test_late_answer_after_the_deadline_is_a_timeout(
    api: httpx.Client, make_template: Make, make_session: Make
) -> None:
    session = make_session(make_template("late", wall_ms=200, cpu_ms=200))
    response = _repl(api, session["id"])
    assert response.status_code == 422 and error_code(response) == "EXECUTION_TIMEOUT"


def test_worker_exiting_while_idle_turns_the_session_crashed(
    api: httpx.Client, make_template: Make, make_session: Make
) -> None:
    session = make_session(make_template("idle-exit"))
    psutil.Process(session["runtime_meta"]["pid"]).send_signal(signal.SIGUSR1)  # it exits 4
    wait_until(lambda: api.get(f"/sessions/{session['id']}").json()["status"] == "crashed")
    after = api.get(f"/sessions/{session['id']}").json()
    assert "exited with code 4" in after["last_error"]
    assert session["id"] not in api.get("/runtime/summary").json()["active_session_ids"]


def test_worker_ignoring_sigterm_still_closes(
    api: httpx.Client, make_template: Make, make_session: Make
) -> None:
    session = make_session(make_template("noterm"))
    started = time.monotonic()
    closed = api.post(f"/sessions/{session['id']}/close")
    assert time.monotonic() - started < 5.0
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert _gone(session["runtime_meta"]["pid"])
