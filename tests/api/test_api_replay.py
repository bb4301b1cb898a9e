"""POST /sessions/{id}/restart {"replay": true}: the state made again, and what differed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from real_daemon import error_code, running_daemon, start_session, wait_until

Make = Callable[..., dict[str, Any]]


def _run(api: httpx.Client, session: dict[str, Any], code: str) -> dict[str, Any]:
    answer = api.post("/executions/repl", json={"session_id": session["id"], "input": code})
    record: dict[str, Any] = answer.json()
    return record


def _value(api: httpx.Client, session: dict[str, Any], code: str) -> Any:
    record = _run(api, session, code)
    assert record["status"] == "ok", record
    return record["result"]["json"]


def _restart(api: httpx.Client, session: dict[str, Any], **body: Any) -> dict[str, Any]:
    answer = api.post(f"/sessions/{session['id']}/restart", json=body)
    assert answer.status_code == 200, answer.text
    restarted: dict[str, Any] = answer.json()
    assert restarted["status"] == "ready"
    return restarted


def test_a_replay_makes_the_state_again_from_the_executions_that_ended_ok(
    api: httpx.Client, make_session: Make
) -> None:
    session = make_session()
    assert _value(api, session, "globalThis.n = 1") == 1
    failed = _run(api, session, "globalThis.failed = true; throw new Error('not replayed')")
    assert failed["status"] == "error"
    assert _value(api, session, "n += 41") == 42
    for _ in range(20):  # more than a page of the store's (replay.PAGE)
        _value(api, session, "globalThis.m = (globalThis.m || 0) + 1")

    restarted = _restart(api, session, replay=True)
    assert restarted["runtime_meta"]["replay"] == {"replayed": 22, "diverged": [], "failed": None}
    assert restarted["runtime_meta"]["pid"] != session["runtime_meta"]["pid"]
    assert _value(api, session, "[n, m, typeof failed]") == [42, 20, "undefined"]


def test_a_restart_without_replay_starts_the_state_afresh(
    api: httpx.Client, make_session: Make
) -> None:
    session = make_session()
    _value(api, session, "globalThis.before = 1")
    plain = api.post(f"/sessions/{session['id']}/restart")  # no body, as in v1
    assert plain.status_code == 200, plain.text
    assert "replay" not in plain.json()["runtime_meta"]
    _value(api, session, "globalThis.after = 2")

    restarted = _restart(api, session, replay=True)
    assert restarted["runtime_meta"]["replay"]["replayed"] == 1
    assert _value(api, session, "typeof before") == "undefined"
    assert _value(api, session, "after") == 2
    # A replay keeps where the state started: the next one runs the same executions
    # again, and the two since.
    again = _restart(api, session, replay=True)
    assert again["runtime_meta"]["replay"]["replayed"] == 3
    assert again["runtime_meta"]["state_since"] == restarted["runtime_meta"]["state_since"]
    assert (
        _restart(api, session, replay=False)["runtime_meta"]["state_since"]
        > (again["runtime_meta"]["state_since"])
    )


def test_a_replay_says_which_values_differ(api: httpx.Client, make_session: Make) -> None:
    session = make_session()
    random = _run(api, session, "Math.random()")
    _value(api, session, "6 * 7")
    replay = _restart(api, session, replay=True)["runtime_meta"]["replay"]
    assert replay["replayed"] == 2 and replay["failed"] is None
    [diverged] = replay["diverged"]
    assert diverged["execution_id"] == random["id"]
    assert diverged["recorded"] == {"type": "number", "preview": random["result"]["preview"]}
    assert diverged["now"]["type"] == "number"
    assert diverged["now"]["preview"] != random["result"]["preview"]


def test_a_replay_report_stays_small_whatever_the_values_and_errors(
    api: httpx.Client, make_template: Make, make_session: Make, worktree: Path
) -> None:
    session = make_session(make_template(max_output_kb=8192))
    big = "Math.random() + 'x'.repeat(100000)"  # 100 kB a value, another each run
    for _ in range(3):
        assert _run(api, session, big)["status"] == "ok"
    (worktree / "later.js").write_text("1\n")
    ran = api.post("/executions/run-file", json={"session_id": session["id"], "path": "later.js"})
    assert ran.json()["status"] == "ok", ran.text
    (worktree / "later.js").write_text("throw new Error('y'.repeat(100000))\n")

    replay = _restart(api, session, replay=True)["runtime_meta"]["replay"]
    assert replay["replayed"] == 3 and len(replay["diverged"]) == 3
    for diverged in replay["diverged"]:
        assert len(diverged["recorded"]["preview"]) <= 201
        assert len(diverged["now"]["preview"]) <= 201
    assert replay["failed"]["execution_id"] == ran.json()["id"]
    assert len(replay["failed"]["error"]["message"]) <= 2001


def test_a_replay_stops_at_the_first_failure_and_the_session_is_ready(
    api: httpx.Client, make_session: Make, worktree: Path
) -> None:
    (worktree / "step.js").write_text("globalThis.steps = (globalThis.steps || 0) + 1;\n")
    session = make_session()
    _value(api, session, "globalThis.first = 1")
    ran = api.post("/executions/run-file", json={"session_id": session["id"], "path": "step.js"})
    assert ran.json()["status"] == "ok", ran.text
    _value(api, session, "globalThis.third = 3")
    (worktree / "step.js").write_text("throw new Error('changed since');\n")

    replay = _restart(api, session, replay=True)["runtime_meta"]["replay"]
    assert replay["replayed"] == 1
    assert replay["failed"]["execution_id"] == ran.json()["id"]
    assert replay["failed"]["error"]["code"] == "JS_EXCEPTION"
    assert "changed since" in replay["failed"]["error"]["message"]
    assert _value(api, session, "[typeof first, typeof third]") == ["number", "undefined"]


def test_a_replay_runs_under_the_current_limits_and_a_killed_worker_is_replaced(
    api: httpx.Client, make_template: Make, make_session: Make
) -> None:
    template = make_template(cpu_ms=30_000, wall_ms=30_000)
    session = make_session(template)
    _value(api, session, "globalThis.kept = 1")
    # Seconds of one native call, which QuickJS cannot interrupt: past wall_ms and its
    # grace (HARD_DEADLINE_GRACE, 1 s), only the kill stops it.
    native = _run(api, session, "(7n ** 350000n).toString().length")
    assert native["status"] == "ok", native
    put = api.put(f"/templates/{template['id']}/settings", json={"limits": {"wall_ms": 20}})
    assert put.status_code == 200, put.text

    restarted = _restart(api, session, replay=True)
    replay = restarted["runtime_meta"]["replay"]
    assert replay["replayed"] == 1
    assert replay["failed"]["execution_id"] == native["id"]
    assert replay["failed"]["error"]["code"] == "EXECUTION_TIMEOUT"
    # The worker that ran the replay was killed: the session has a fresh one, fresh state.
    assert _value(api, session, "typeof kept") == "undefined"
    assert restarted["runtime_meta"]["state_since"] > native["started_at"]


@pytest.mark.parametrize("body", [{"replay": "yes"}, {"replay": None}, {"again": True}, []])
def test_a_bad_restart_body_is_refused_and_the_worker_kept(
    api: httpx.Client, make_session: Make, body: object
) -> None:
    session = make_session()
    answer = api.post(f"/sessions/{session['id']}/restart", json=body)
    assert answer.status_code == 400 and error_code(answer) == "INVALID_REQUEST", answer.text
    current = api.get(f"/sessions/{session['id']}").json()
    assert current["runtime_meta"]["pid"] == session["runtime_meta"]["pid"]


def test_a_replay_brings_a_session_back_after_the_daemon_restarted(
    tmp_path: Path, worktree: Path
) -> None:
    home = tmp_path / "home"
    with running_daemon(home) as first, first.client() as api:
        session = start_session(api, worktree)
        _value(api, session, "globalThis.total = 40")
        _value(api, session, "total += 2")
    with running_daemon(home) as second, second.client() as api:
        assert api.get(f"/sessions/{session['id']}").json()["status"] == "crashed"
        restarted = _restart(api, session, replay=True)
        assert restarted["runtime_meta"]["replay"]["replayed"] == 2
        assert _value(api, session, "total") == 42


def test_a_replay_whose_executions_were_pruned_runs_nothing_and_says_so(
    tmp_path: Path, worktree: Path
) -> None:
    home = tmp_path / "home"
    with running_daemon(home, ["--retain", "forever"]) as first, first.client() as api:
        session = start_session(api, worktree)
        for n in range(3):
            _value(api, session, f"globalThis.v{n} = {n}")
    with running_daemon(home, ["--retain", "2"]) as second, second.client() as api:

        def pruned() -> bool:
            listed = api.get("/executions", params={"session_id": session["id"]})
            return len(listed.json()) == 2

        wait_until(pruned, timeout=20)
        replay = _restart(api, session, replay=True)["runtime_meta"]["replay"]
        assert replay["replayed"] == 0
        assert replay["failed"]["execution_id"] is None
        assert replay["failed"]["error"]["code"] == "REPLAY_INCOMPLETE"
        assert _value(api, session, "typeof v2") == "undefined"
