"""lifecycle.restart "on-crash": a crashed session comes back, until it flaps."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import httpx

from real_daemon import error_code, plugin_engine, running_daemon, session_body, wait_until
from vmctl.supervisor.config import FLAP_LIMIT


def _on_crash(api: httpx.Client, engine: str = "quickjs") -> dict[str, Any]:
    template = api.post("/templates", json={"name": f"t-{engine}", "engine": engine}).json()
    put = api.put(
        f"/templates/{template['id']}/settings", json={"lifecycle": {"restart": "on-crash"}}
    )
    assert put.status_code == 200, put.text
    assert put.json()["lifecycle"]["restart"] == "on-crash"
    return template  # type: ignore[no-any-return]


def test_a_crashed_session_is_restarted_with_its_startup_state(
    tmp_path: Path, worktree: Path
) -> None:
    with running_daemon(tmp_path / "home") as daemon, daemon.client() as api:
        template = _on_crash(api)
        session = api.post("/sessions", json=session_body(template["id"], worktree)).json()
        first_pid = session["runtime_meta"]["pid"]
        os.kill(first_pid, signal.SIGKILL)

        def restarted() -> bool:
            current = api.get(f"/sessions/{session['id']}").json()
            return bool(
                current["status"] == "ready" and current["runtime_meta"]["pid"] != first_pid
            )

        wait_until(restarted, timeout=20)
        current = api.get(f"/sessions/{session['id']}").json()
        assert current["runtime_meta"]["restarts"] == 1
        answer = api.post("/executions/repl", json={"session_id": session["id"], "input": "6*7"})
        assert answer.json()["result"]["json"] == 42
        assert "restarted after its crash" in daemon.log()


def test_a_session_that_keeps_dying_is_left_crashed_at_the_flap_limit(
    tmp_path: Path, worktree: Path
) -> None:
    args = ["--engine", plugin_engine("dying", "exits_while_idle")]
    with running_daemon(tmp_path / "home", args) as daemon, daemon.client() as api:
        template = _on_crash(api, "dying")
        session = api.post("/sessions", json=session_body(template["id"], worktree)).json()
        pids = {session["runtime_meta"]["pid"]}
        os.kill(session["runtime_meta"]["pid"], signal.SIGUSR1)  # it exits at once

        def next_death() -> bool:
            current = api.get(f"/sessions/{session['id']}").json()
            if current["status"] == "ready" and current["runtime_meta"]["pid"] not in pids:
                pids.add(current["runtime_meta"]["pid"])
                os.kill(current["runtime_meta"]["pid"], signal.SIGUSR1)
            return "flap limit" in (current["last_error"] or "")

        wait_until(next_death, timeout=40)
        final = api.get(f"/sessions/{session['id']}").json()
    assert final["status"] == "crashed"
    assert len(pids) == FLAP_LIMIT  # the first worker and FLAP_LIMIT - 1 restarts


def test_a_bad_restart_policy_is_refused(tmp_path: Path) -> None:
    with running_daemon(tmp_path / "home") as daemon, daemon.client() as api:
        template = api.post("/templates", json={"name": "t"}).json()
        url = f"/templates/{template['id']}/settings"
        bad = api.put(url, json={"lifecycle": {"restart": "always"}})
        assert bad.status_code == 400 and error_code(bad) in ("VALIDATION_ERROR", "INVALID_REQUEST")
        settings = api.get(f"/templates/{template['id']}").json()["settings"]
        assert settings["lifecycle"]["restart"] == "never"
