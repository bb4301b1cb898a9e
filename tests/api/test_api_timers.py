"""Timers and the event loop through the daemon: live ticks, the wall limit, cancel, rejections.

Every wait is on the daemon (a long-poll or an execution's own answer), bounded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from real_daemon import wait_until

Make = Callable[..., dict[str, Any]]


def _repl(api: httpx.Client, session_id: str, code: str, **fields: Any) -> httpx.Response:
    return api.post(
        "/executions/repl", json={"session_id": session_id, "input": code, **fields}, timeout=30
    )


def _events(api: httpx.Client, execution_id: str, after_seq: int = 0) -> list[dict[str, Any]]:
    response = api.get(
        f"/executions/{execution_id}/events", params={"after_seq": after_seq, "wait_ms": 10_000}
    )
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()
    return events


def test_timer_output_is_live_and_the_execution_ends_when_its_timers_are_done(
    api: httpx.Client, make_session: Make
) -> None:
    session = make_session()
    code = (
        "let n = 0; await new Promise((done) => { const t = setInterval(() => {"
        " console.log('tick ' + ++n); if (n === 5) { clearInterval(t); done(); } }, 40) }); n"
    )
    started = _repl(api, session["id"], code, wait=False)
    assert started.status_code == 202, started.text
    record = started.json()
    seen: list[dict[str, Any]] = []
    while not any(e["type"] == "console" for e in seen):  # a tick, while it still runs
        seen += _events(api, record["id"], seen[-1]["seq"] if seen else 0)
    assert api.get(f"/executions/{record['id']}").json()["status"] == "running"
    while seen[-1]["type"] != "value":
        seen += _events(api, record["id"], seen[-1]["seq"])
    wait_until(lambda: api.get(f"/executions/{record['id']}").json()["status"] != "running")
    final = api.get(f"/executions/{record['id']}").json()
    assert final["status"] == "ok", final
    assert final["result"]["json"] == 5
    lines = [e["payload"]["text"] for e in seen if e["type"] == "console"]
    assert lines == [f"tick {i}" for i in range(1, 6)]


def test_an_endless_interval_times_out_and_the_session_keeps_its_state(
    api: httpx.Client, make_template: Make, make_session: Make
) -> None:
    session = make_session(make_template(wall_ms=500))
    started = time.monotonic()
    response = _repl(api, session["id"], "var beats = 0; setInterval(() => beats++, 10)")
    assert time.monotonic() - started < 10
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "EXECUTION_TIMEOUT"
    assert api.get(f"/sessions/{session['id']}").json()["status"] == "ready"
    after = _repl(api, session["id"], "beats > 0").json()
    assert after["status"] == "ok" and after["result"]["json"] is True


def test_cancel_ends_an_execution_that_waits_for_a_timer(
    api: httpx.Client, make_template: Make, make_session: Make
) -> None:
    session = make_session(make_template(wall_ms=60_000))
    code = "console.log('armed'); await new Promise((r) => setTimeout(r, 50_000))"
    record = _repl(api, session["id"], code, wait=False).json()
    events: list[dict[str, Any]] = []
    while not any(e["type"] == "console" for e in events):
        events += _events(api, record["id"], events[-1]["seq"] if events else 0)
    started = time.monotonic()
    cancelled = api.post(f"/executions/{record['id']}/cancel").json()
    assert cancelled["status"] == "cancelled"
    assert time.monotonic() - started < 5
    assert api.get(f"/sessions/{session['id']}").json()["status"] == "ready"


def test_an_unhandled_rejection_is_an_error_with_its_exception(
    api: httpx.Client, make_session: Make
) -> None:
    session = make_session()
    response = _repl(api, session["id"], "(async () => { throw new Error('lost') })(); 'ok'")
    assert response.status_code == 201, response.text
    record = response.json()
    assert record["status"] == "error" and record["result"] is None
    assert (record["error"]["code"], record["error"]["message"]) == ("JS_EXCEPTION", "Error: lost")
    exceptions = [e for e in _events(api, record["id"]) if e["type"] == "exception"]
    assert [e["payload"]["message"] for e in exceptions] == ["Error: lost"]
