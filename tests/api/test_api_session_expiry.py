"""lifecycle.idle_timeout_ms and max_lifetime_ms: the daemon closes sessions whose time is up."""

from __future__ import annotations

import collections
import contextlib
import os
import random
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from real_daemon import error_code, running_daemon, start_session, wait_until
from vmctl.supervisor.config import LIFECYCLE_MAXIMUM_MS

Make = Callable[..., dict[str, Any]]


def _lifecycle(api: httpx.Client, template: dict[str, Any], **lifecycle: int | None) -> None:
    put = api.put(f"/templates/{template['id']}/settings", json={"lifecycle": lifecycle})
    assert put.status_code == 200, put.text


def _expiring(
    api: httpx.Client, make_template: Make, make_session: Make, **lifecycle: int
) -> dict[str, Any]:
    """A session of a new template with these lifecycle timeouts."""
    template = make_template()
    _lifecycle(api, template, **lifecycle)
    return make_session(template)


@contextlib.contextmanager
def _store_locked(db_path: Path) -> Iterator[None]:
    """Another process holds the store's write lock: the daemon's writes wait out their
    busy timeout, then fail (reads go on, as WAL lets them)."""
    blocker = sqlite3.connect(db_path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        yield
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


def _closed(api: httpx.Client, session: dict[str, Any], timeout: float = 15) -> dict[str, Any]:
    def closed() -> bool:
        return bool(api.get(f"/sessions/{session['id']}").json()["status"] == "closed")

    wait_until(closed, timeout=timeout)
    current: dict[str, Any] = api.get(f"/sessions/{session['id']}").json()
    return current


def _worker_gone(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def test_an_idle_session_is_closed_with_the_reason(
    api: httpx.Client, make_template: Make, make_session: Make
) -> None:
    session = _expiring(api, make_template, make_session, idle_timeout_ms=300)
    ran = api.post("/executions/repl", json={"session_id": session["id"], "input": "1+1"})
    assert ran.status_code == 201, ran.text

    closed = _closed(api, session)
    assert closed["closed_at"] is not None
    assert "lifecycle.idle_timeout_ms" in closed["last_error"]
    assert "300 ms" in closed["last_error"]
    wait_until(lambda: _worker_gone(session["runtime_meta"]["pid"]))
    again = api.post("/executions/repl", json={"session_id": session["id"], "input": "1"})
    assert again.status_code == 409 and error_code(again) == "SESSION_NOT_READY"


def test_the_idle_timeout_never_cuts_a_running_execution(
    api: httpx.Client, make_template: Make, make_session: Make
) -> None:
    session = _expiring(api, make_template, make_session, idle_timeout_ms=200)
    # Runs five idle timeouts long, then the session idles and is closed.
    code = "const end = Date.now() + 1000; while (Date.now() < end) {} 'done'"
    ran = api.post("/executions/repl", json={"session_id": session["id"], "input": code})
    assert ran.status_code == 201, ran.text
    assert ran.json()["status"] == "ok" and ran.json()["result"]["json"] == "done"
    assert "lifecycle.idle_timeout_ms" in _closed(api, session)["last_error"]


def test_each_execution_starts_the_idle_clock_again(
    api: httpx.Client, make_template: Make, make_session: Make
) -> None:
    session = _expiring(api, make_template, make_session, idle_timeout_ms=1500)
    # Executions 0.1 s apart for twice the timeout: the session never idles that long.
    until = time.monotonic() + 3.0
    count = 0
    while time.monotonic() < until:
        ran = api.post("/executions/repl", json={"session_id": session["id"], "input": "1"})
        assert ran.status_code == 201, (count, ran.text)
        count += 1
        time.sleep(0.1)  # the pace of a client's requests, which is what is under test
    assert api.get(f"/sessions/{session['id']}").json()["status"] == "ready"
    assert "lifecycle.idle_timeout_ms" in _closed(api, session)["last_error"]


def test_an_execution_sent_as_the_idle_timeout_runs_out_is_refused_or_runs_whole(
    api: httpx.Client, make_template: Make, make_session: Make
) -> None:
    template = make_template()
    _lifecycle(api, template, idle_timeout_ms=40)
    rng = random.Random(7)
    answers: collections.Counter[str] = collections.Counter()
    session = make_session(template)
    for _ in range(60):
        # Around the moment the session's idle time runs out: before, at, after it.
        time.sleep(rng.uniform(0.0, 0.08))  # the race under test, not a wait for a state
        code = "const end = Date.now() + 30; while (Date.now() < end) {} 'whole'"
        ran = api.post("/executions/repl", json={"session_id": session["id"], "input": code})
        if ran.status_code == 409:
            assert error_code(ran) == "SESSION_NOT_READY", ran.text
            answers["refused"] += 1
            session = make_session(template)
            continue
        assert ran.status_code == 201, ran.text
        assert ran.json()["status"] == "ok" and ran.json()["result"]["json"] == "whole"
        answers["whole"] += 1
    # Both happened: the race was run, not avoided.
    assert answers["refused"] > 0 and answers["whole"] > 0, answers


def test_the_lifetime_ends_a_running_execution_as_cancelled(
    api: httpx.Client, make_template: Make, make_session: Make
) -> None:
    template = make_template(cpu_ms=60_000, wall_ms=60_000)
    _lifecycle(api, template, max_lifetime_ms=1500)
    session = make_session(template)
    started = api.post(
        "/executions/repl",
        json={"session_id": session["id"], "input": "while (true) {}", "wait": False},
    )
    assert started.status_code == 202, started.text
    execution_id = started.json()["id"]

    closed = _closed(api, session)
    assert "lifecycle.max_lifetime_ms" in closed["last_error"]
    assert "1500 ms" in closed["last_error"]
    execution = api.get(f"/executions/{execution_id}").json()
    assert execution["status"] == "cancelled"
    events = api.get(f"/executions/{execution_id}/events").json()
    assert any("lifecycle.max_lifetime_ms" in str(event["payload"]) for event in events)
    wait_until(lambda: _worker_gone(session["runtime_meta"]["pid"]))


def test_a_shorter_timeout_reaches_the_sessions_already_open(
    api: httpx.Client, make_template: Make, make_session: Make
) -> None:
    template = make_template()
    session = make_session(template)
    _lifecycle(api, template, idle_timeout_ms=100)
    assert "lifecycle.idle_timeout_ms" in _closed(api, session)["last_error"]


def test_a_timeout_set_to_null_is_off_again(
    api: httpx.Client, make_template: Make, make_session: Make
) -> None:
    template = make_template()
    _lifecycle(api, template, idle_timeout_ms=LIFECYCLE_MAXIMUM_MS, max_lifetime_ms=60_000)
    _lifecycle(api, template, idle_timeout_ms=None)  # max_lifetime_ms is left as it is
    settings = api.get(f"/templates/{template['id']}").json()["settings"]["lifecycle"]
    assert settings == {"idle_timeout_ms": None, "max_lifetime_ms": 60_000, "restart": "never"}
    _lifecycle(api, template, max_lifetime_ms=None)
    session = make_session(template)
    assert api.get(f"/sessions/{session['id']}").json()["status"] == "ready"


@pytest.mark.parametrize("field", ["idle_timeout_ms", "max_lifetime_ms"])
@pytest.mark.parametrize(
    ("value", "code"),
    [
        (0, "VALIDATION_ERROR"),
        (-5, "VALIDATION_ERROR"),
        (LIFECYCLE_MAXIMUM_MS + 1, "VALIDATION_ERROR"),
        ("soon", "INVALID_REQUEST"),
        (1.5, "INVALID_REQUEST"),
    ],
)
def test_a_bad_timeout_is_refused_and_nothing_changes(
    api: httpx.Client, make_template: Make, field: str, value: object, code: str
) -> None:
    template = make_template()
    url = f"/templates/{template['id']}/settings"
    answer = api.put(url, json={"lifecycle": {field: value}})
    assert answer.status_code == 400, answer.text
    assert error_code(answer) == code
    if code == "VALIDATION_ERROR":
        details = answer.json()["error"]["details"]
        assert details["field"] == f"lifecycle.{field}"
        assert details["maximum"] == LIFECYCLE_MAXIMUM_MS
    lifecycle = api.get(f"/templates/{template['id']}").json()["settings"]["lifecycle"]
    assert lifecycle[field] is None


def test_a_crashed_session_restarted_past_its_lifetime_is_closed_at_once(
    api: httpx.Client, make_template: Make, make_session: Make
) -> None:
    template = make_template()
    session = make_session(template)
    os.kill(session["runtime_meta"]["pid"], signal.SIGKILL)

    def crashed() -> bool:
        return bool(api.get(f"/sessions/{session['id']}").json()["status"] == "crashed")

    wait_until(crashed, timeout=10)
    # A crashed session has no worker: its lifetime closes nothing until it has one again.
    _lifecycle(api, template, max_lifetime_ms=1)
    assert api.get(f"/sessions/{session['id']}").json()["status"] == "crashed"
    restarted = api.post(f"/sessions/{session['id']}/restart")
    assert restarted.status_code == 200, restarted.text
    assert "lifecycle.max_lifetime_ms" in _closed(api, session)["last_error"]


def test_a_close_the_store_refuses_leaves_the_session_whole_and_is_tried_again(
    tmp_path: Path, worktree: Path
) -> None:
    with running_daemon(tmp_path / "home") as daemon, daemon.client() as api:
        session = start_session(api, worktree)
        put = api.put(
            f"/templates/{session['vm_id']}/settings",
            json={"lifecycle": {"idle_timeout_ms": 300}},
        )
        assert put.status_code == 200, put.text
        url = f"/sessions/{session['id']}"
        pid = session["runtime_meta"]["pid"]
        with _store_locked(daemon.db_path):
            wait_until(lambda: f"session {session['id']} was not closed" in daemon.log(), 30)
            # The session stays as it was, its worker up: not a row that says ready with
            # no worker behind it.
            assert api.get(url).json()["status"] == "ready"
            assert psutil.pid_exists(pid) and not _worker_gone(pid)
        closed = _closed(api, session)
        assert "lifecycle.idle_timeout_ms" in closed["last_error"]
        wait_until(lambda: _worker_gone(pid))


def test_a_close_or_restart_the_store_refuses_keeps_the_session_and_its_state(
    tmp_path: Path, worktree: Path
) -> None:
    with running_daemon(tmp_path / "home") as daemon, daemon.client() as api:
        session = start_session(api, worktree)
        ran = api.post(
            "/executions/repl", json={"session_id": session["id"], "input": "globalThis.k = 7"}
        )
        assert ran.status_code == 201, ran.text
        with _store_locked(daemon.db_path):
            for action in ("close", "restart"):
                refused = api.post(f"/sessions/{session['id']}/{action}")
                assert refused.status_code == 500, (action, refused.text)  # a store fault
        current = api.get(f"/sessions/{session['id']}").json()
        assert current["status"] == "ready"
        assert current["runtime_meta"]["pid"] == session["runtime_meta"]["pid"]
        again = api.post("/executions/repl", json={"session_id": session["id"], "input": "k"})
        assert again.status_code == 201 and again.json()["result"]["json"] == 7
        assert api.post(f"/sessions/{session['id']}/close").json()["status"] == "closed"
