"""Sessions: lifecycle, runtime summary, startup, crash and restart, through real HTTP."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from real_daemon import Daemon, error_code, session_body, wait_until

Make = Callable[..., dict[str, Any]]


def _wait_status(api: httpx.Client, session_id: str, status: str) -> dict[str, Any]:
    """Bounded wait for a session to reach ``status`` (it changes in another process)."""
    found: dict[str, Any] = {}

    def reached() -> bool:
        found.update(api.get(f"/sessions/{session_id}").json())
        return bool(found["status"] == status)

    wait_until(reached, timeout=10.0)
    return found


def test_create_session_is_ready_with_runtime_meta(
    api: httpx.Client, make_template: Make, worktree: Path
) -> None:
    template = make_template()
    response = api.post("/sessions", json=session_body(template["id"], worktree))
    assert response.status_code == 201
    session = response.json()
    assert session["status"] == "ready"
    assert session["vm_id"] == template["id"]
    assert session["worktree_path"] == str(worktree)
    assert session["closed_at"] is None
    meta = session["runtime_meta"]
    assert meta["engine"] == "quickjs" and meta["restarts"] == 0
    assert psutil.Process(meta["pid"]).is_running()
    assert api.get(f"/sessions/{session['id']}").json() == session


@pytest.mark.parametrize(
    "field", ["template_id", "workspace_id", "base_commit_oid", "worktree_path"]
)
def test_each_session_field_is_required(
    api: httpx.Client, make_template: Make, worktree: Path, field: str
) -> None:
    body = session_body(make_template()["id"], worktree)
    del body[field]
    response = api.post("/sessions", json=body)
    assert response.status_code == 400 and error_code(response) == "VALIDATION_ERROR"


@pytest.mark.parametrize("tree", ["relative/dir", "/no/such/dir", "/etc/passwd"])
def test_worktree_must_be_an_absolute_existing_directory(
    api: httpx.Client, make_template: Make, tree: str
) -> None:
    body = session_body(make_template()["id"], Path(tree))
    body["worktree_path"] = tree
    response = api.post("/sessions", json=body)
    assert response.status_code == 400 and error_code(response) == "VALIDATION_ERROR"


def test_unknown_template_is_not_found(api: httpx.Client, worktree: Path) -> None:
    response = api.post("/sessions", json=session_body(str(uuid.uuid4()), worktree))
    assert response.status_code == 404 and error_code(response) == "TEMPLATE_NOT_FOUND"


def test_an_unknown_template_is_told_before_a_worktree_outside_the_roots(
    api: httpx.Client, make_template: Make
) -> None:
    # docs/api.md, "Validation order": existence (404), then the domain's rules (422).
    outside = Path("/usr")
    response = api.post("/sessions", json=session_body(str(uuid.uuid4()), outside))
    assert response.status_code == 404 and error_code(response) == "TEMPLATE_NOT_FOUND"
    known = api.post("/sessions", json=session_body(make_template()["id"], outside))
    assert known.status_code == 422 and error_code(known) == "INVALID_PATH"


def test_lifecycle_and_runtime_summary(api: httpx.Client, make_session: Make) -> None:
    before = api.get("/runtime/summary").json()["active_sessions"]
    first, second = make_session(), make_session()
    summary = api.get("/runtime/summary").json()
    assert summary["active_sessions"] == before + 2
    assert {first["id"], second["id"]} <= set(summary["active_session_ids"])
    assert summary["active_session_ids"] == sorted(summary["active_session_ids"])

    closed = api.post(f"/sessions/{first['id']}/close")
    assert closed.status_code == 200
    assert closed.json()["status"] == "closed" and closed.json()["closed_at"]
    assert not psutil.pid_exists(first["runtime_meta"]["pid"]) or (
        psutil.Process(first["runtime_meta"]["pid"]).status() == psutil.STATUS_ZOMBIE
    )
    again = api.delete(f"/sessions/{first['id']}")  # closing a closed session is a no-op
    assert again.status_code == 200 and again.json() == closed.json()
    summary = api.get("/runtime/summary").json()
    assert first["id"] not in summary["active_session_ids"]
    assert second["id"] in summary["active_session_ids"]


def test_list_sessions_filters_by_status(api: httpx.Client, make_session: Make) -> None:
    session = make_session()
    api.post(f"/sessions/{session['id']}/close")
    closed_ids = [s["id"] for s in api.get("/sessions", params={"status": "closed"}).json()]
    ready_ids = [s["id"] for s in api.get("/sessions", params={"status": "ready"}).json()]
    assert session["id"] in closed_ids and session["id"] not in ready_ids
    bad = api.get("/sessions", params={"status": "sleeping"})
    assert bad.status_code == 400 and error_code(bad) == "VALIDATION_ERROR"


def test_session_not_found_and_bad_id(api: httpx.Client) -> None:
    for method, suffix in [("GET", ""), ("POST", "/close"), ("POST", "/restart")]:
        missing = api.request(method, f"/sessions/{uuid.uuid4()}{suffix}")
        assert missing.status_code == 404 and error_code(missing) == "SESSION_NOT_FOUND"
    bad = api.get("/sessions/123")
    assert bad.status_code == 400 and error_code(bad) == "VALIDATION_ERROR"


def test_startup_files_and_libraries_run_in_order(
    api: httpx.Client, make_template: Make, worktree: Path, daemon: Daemon
) -> None:
    libraries = daemon.home / "libraries"
    libraries.mkdir(exist_ok=True)
    (libraries / "greet.js").write_text(
        "var order = ['lib']; function greet(n) { return 'hi ' + n }"
    )
    (worktree / "a.js").write_text("order.push('a'); var who = 'a';")
    (worktree / "b.js").write_text("order.push('b'); who = who + 'b';")
    template = make_template()
    url = f"/templates/{template['id']}"
    api.post(f"{url}/startup-files", json={"path": "b.js", "order_index": 2})
    api.post(f"{url}/startup-files", json={"path": "a.js", "order_index": 1})
    api.post(f"{url}/libraries", json={"name": "greet"})
    session = api.post("/sessions", json=session_body(template["id"], worktree)).json()
    assert session["status"] == "ready"
    run = api.post(
        "/executions/repl",
        json={"session_id": session["id"], "input": "order.join(',') + ' ' + greet(who)"},
    )
    assert run.json()["result"]["preview"] == "lib,a,b hi ab"
    # Startup runs are not recorded as executions.
    listed = api.get("/executions", params={"session_id": session["id"]}).json()
    assert [e["id"] for e in listed] == [run.json()["id"]]


def _failed_start(api: httpx.Client, template: dict[str, Any], tree: Path) -> dict[str, Any]:
    response = api.post("/sessions", json=session_body(template["id"], tree))
    assert response.status_code == 422, response.text
    error: dict[str, Any] = response.json()["error"]
    session = api.get(f"/sessions/{error['details']['session_id']}").json()
    assert session["status"] == "crashed" and session["last_error"]
    assert session["id"] not in api.get("/runtime/summary").json()["active_session_ids"]
    return error


def test_startup_file_that_throws_fails_the_session(
    api: httpx.Client, make_template: Make, worktree: Path
) -> None:
    (worktree / "boom.js").write_text("throw new Error('startup exploded')")
    template = make_template()
    api.post(f"/templates/{template['id']}/startup-files", json={"path": "boom.js"})
    error = _failed_start(api, template, worktree)
    assert error["code"] == "STARTUP_FAILED"
    assert "boom.js" in error["message"] and "startup exploded" in error["message"]


def test_missing_library_fails_the_session_naming_it(
    api: httpx.Client, make_template: Make, worktree: Path
) -> None:
    template = make_template()
    api.post(f"/templates/{template['id']}/libraries", json={"name": "nowhere"})
    error = _failed_start(api, template, worktree)
    assert error["code"] == "STARTUP_FAILED" and "nowhere" in error["message"]


def test_startup_symlink_leaving_the_worktree_is_invalid_path(
    api: httpx.Client, make_template: Make, worktree: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.js"
    outside.write_text("var leaked = 1")
    os.symlink(outside, worktree / "link.js")
    template = make_template()
    api.post(f"/templates/{template['id']}/startup-files", json={"path": "link.js"})
    assert _failed_start(api, template, worktree)["code"] == "INVALID_PATH"


def test_killed_worker_turns_crashed_and_restart_brings_it_back(
    api: httpx.Client, make_session: Make
) -> None:
    session = make_session()
    sid = session["id"]
    api.post("/executions/repl", json={"session_id": sid, "input": "var kept = 41"})
    os.kill(session["runtime_meta"]["pid"], signal.SIGKILL)
    crashed = _wait_status(api, sid, "crashed")
    assert "signal 9" in crashed["last_error"] or "SIGKILL" in crashed["last_error"]
    assert sid not in api.get("/runtime/summary").json()["active_session_ids"]
    refused = api.post("/executions/repl", json={"session_id": sid, "input": "1"})
    assert refused.status_code == 409 and error_code(refused) == "SESSION_NOT_READY"

    restarted = api.post(f"/sessions/{sid}/restart")
    assert restarted.status_code == 200
    body = restarted.json()
    assert body["status"] == "ready" and body["runtime_meta"]["restarts"] == 1
    assert body["runtime_meta"]["pid"] != session["runtime_meta"]["pid"]
    # JavaScript state from before the crash is gone.
    after = api.post("/executions/repl", json={"session_id": sid, "input": "typeof kept"})
    assert after.json()["result"]["preview"] == "undefined"


def test_closed_session_cannot_restart_or_execute(api: httpx.Client, make_session: Make) -> None:
    session = make_session()
    api.post(f"/sessions/{session['id']}/close")
    restart = api.post(f"/sessions/{session['id']}/restart")
    assert restart.status_code == 409 and error_code(restart) == "SESSION_NOT_READY"
    run = api.post("/executions/repl", json={"session_id": session["id"], "input": "1"})
    assert run.status_code == 409 and error_code(run) == "SESSION_NOT_READY"
