"""Executions: REPL and run-file, events, limits, busy and concurrency, through real HTTP."""

from __future__ import annotations

import concurrent.futures
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from real_daemon import Daemon, error_code, wait_until

Make = Callable[..., dict[str, Any]]


def _repl(api: httpx.Client, session_id: str, code: str) -> httpx.Response:
    return api.post("/executions/repl", json={"session_id": session_id, "input": code})


def _events(api: httpx.Client, execution_id: str, after: int = 0) -> list[dict[str, Any]]:
    response = api.get(f"/executions/{execution_id}/events", params={"after_seq": after})
    assert response.status_code == 200
    events: list[dict[str, Any]] = response.json()
    return events


def test_repl_ok_records_echo_console_value_in_order(api: httpx.Client, make_session: Make) -> None:
    session = make_session()
    response = _repl(api, session["id"], "console.log('hi', 1); console.warn('careful'); 6 * 7")
    assert response.status_code == 201
    execution = response.json()
    assert execution["status"] == "ok" and execution["kind"] == "repl"
    assert execution["result"]["preview"] == "42" and execution["result"]["json"] == 42
    assert execution["error"] is None and execution["ended_at"]
    assert execution["args"] == {} and execution["env"] == {}
    metrics = execution["metrics"]
    assert metrics["events"] == 4 and metrics["output_bytes"] > 0
    assert {"wall_ms", "cpu_ms"} <= set(metrics)
    events = _events(api, execution["id"])
    assert [e["type"] for e in events] == ["input_echo", "console", "console", "value"]
    assert [e["seq"] for e in events] == [1, 2, 3, 4]
    assert events[0]["payload"] == {"text": execution["input"]}
    assert events[1]["payload"] == {"level": "log", "text": "hi 1"}
    assert events[2]["payload"] == {"level": "warn", "text": "careful"}
    assert api.get(f"/executions/{execution['id']}").json() == execution


def test_state_persists_across_executions(api: httpx.Client, make_session: Make) -> None:
    session = make_session()
    _repl(api, session["id"], "var counter = 1")
    _repl(api, session["id"], "counter += 1")
    assert _repl(api, session["id"], "counter").json()["result"]["json"] == 2


def test_exception_is_recorded_not_an_http_error(api: httpx.Client, make_session: Make) -> None:
    session = make_session()
    response = _repl(api, session["id"], "console.log('before'); null.x")
    assert response.status_code == 201
    execution = response.json()
    assert execution["status"] == "error" and execution["result"] is None
    assert execution["error"]["code"] == "JS_EXCEPTION"
    assert "TypeError" in execution["error"]["message"]
    events = _events(api, execution["id"])
    assert [e["type"] for e in events] == ["input_echo", "console", "exception"]
    assert "TypeError" in events[-1]["payload"]["message"]


def test_after_seq_pages_events(api: httpx.Client, make_session: Make) -> None:
    session = make_session()
    execution = _repl(api, session["id"], "for (let i = 0; i < 5; i++) console.log(i); 'done'")
    events = _events(api, execution.json()["id"])
    assert len(events) == 7
    assert _events(api, execution.json()["id"], after=4) == events[4:]
    assert _events(api, execution.json()["id"], after=99) == []
    bad = api.get(f"/executions/{execution.json()['id']}/events", params={"after_seq": -1})
    assert bad.status_code == 400 and error_code(bad) == "VALIDATION_ERROR"


def test_list_executions_newest_first_with_limit(api: httpx.Client, make_session: Make) -> None:
    session = make_session()
    ids = [_repl(api, session["id"], str(i)).json()["id"] for i in range(3)]
    listed = api.get("/executions", params={"session_id": session["id"]}).json()
    assert [e["id"] for e in listed] == ids[::-1]
    limited = api.get("/executions", params={"session_id": session["id"], "limit": 2}).json()
    assert [e["id"] for e in limited] == ids[:0:-1]


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({}, 400, "VALIDATION_ERROR"),
        ({"session_id": "nope"}, 400, "VALIDATION_ERROR"),
        ({"session_id": str(uuid.uuid4())}, 404, "SESSION_NOT_FOUND"),
    ],
)
def test_list_executions_errors(
    api: httpx.Client, params: dict[str, str], status: int, code: str
) -> None:
    response = api.get("/executions", params=params)
    assert response.status_code == status and error_code(response) == code


def test_list_executions_limit_must_be_positive(api: httpx.Client, make_session: Make) -> None:
    session = make_session()
    for limit in ["0", "-1", "many"]:
        response = api.get("/executions", params={"session_id": session["id"], "limit": limit})
        assert response.status_code == 400 and error_code(response) == "VALIDATION_ERROR"


def test_unknown_execution_is_not_found(api: httpx.Client) -> None:
    for suffix in ["", "/events"]:
        response = api.get(f"/executions/{uuid.uuid4()}{suffix}")
        assert response.status_code == 404 and error_code(response) == "EXECUTION_NOT_FOUND"


def test_repl_validation(api: httpx.Client, make_session: Make) -> None:
    session = make_session()
    empty = api.post("/executions/repl", json={"session_id": session["id"], "input": ""})
    assert empty.status_code == 400 and error_code(empty) == "VALIDATION_ERROR"
    missing = _repl(api, str(uuid.uuid4()), "1")
    assert missing.status_code == 404 and error_code(missing) == "SESSION_NOT_FOUND"


def test_run_file_with_args_and_env(api: httpx.Client, make_session: Make, worktree: Path) -> None:
    (worktree / "lib").mkdir()
    (worktree / "lib" / "main.js").write_text(
        "console.log(__ARGS__.name, __ENV__.MODE); __ARGS__.n * 2"
    )
    session = make_session()
    response = api.post(
        "/executions/run-file",
        json={
            "session_id": session["id"],
            "path": "./lib/../lib/main.js",
            "args": {"name": "vm", "n": 21},
            "env": {"MODE": "test"},
        },
    )
    assert response.status_code == 201, response.text
    execution = response.json()
    assert execution["kind"] == "run_file" and execution["path"] == "lib/main.js"
    assert execution["args"] == {"name": "vm", "n": 21} and execution["env"] == {"MODE": "test"}
    assert execution["result"]["json"] == 42
    events = _events(api, execution["id"])
    assert [e["type"] for e in events] == ["console", "value"]
    assert events[0]["payload"]["text"] == "vm test"


def test_run_file_module_imports_sibling(
    api: httpx.Client, make_session: Make, worktree: Path
) -> None:
    (worktree / "util.mjs").write_text("export const twice = (x) => x * 2;")
    (worktree / "main.mjs").write_text("import { twice } from './util.mjs'; console.log(twice(4));")
    session = make_session()
    response = api.post(
        "/executions/run-file", json={"session_id": session["id"], "path": "main.mjs"}
    )
    assert response.json()["status"] == "ok", response.text
    assert _events(api, response.json()["id"])[0]["payload"]["text"] == "8"


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("", 400, "VALIDATION_ERROR"),
        ("   ", 422, "INVALID_PATH"),
        (".", 422, "INVALID_PATH"),
        ("/etc/passwd", 422, "INVALID_PATH"),
        ("../outside.js", 422, "INVALID_PATH"),
        ("link.js", 422, "INVALID_PATH"),
        ("missing.js", 404, "FILE_NOT_FOUND"),
    ],
)
def test_run_file_path_rules_record_nothing(
    api: httpx.Client,
    make_session: Make,
    worktree: Path,
    tmp_path: Path,
    path: str,
    status: int,
    code: str,
) -> None:
    outside = tmp_path / "outside.js"
    outside.write_text("'secret'")
    os.symlink(outside, worktree / "link.js")
    session = make_session()
    response = api.post("/executions/run-file", json={"session_id": session["id"], "path": path})
    assert response.status_code == status and error_code(response) == code
    assert api.get("/executions", params={"session_id": session["id"]}).json() == []


def _limit_failure(response: httpx.Response, code: str, limit: str) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["details"]["limit"] == limit
    details: dict[str, Any] = error["details"]
    return details


def test_event_limit_stops_a_console_flood(
    api: httpx.Client, make_template: Make, make_session: Make
) -> None:
    session = make_session(make_template(max_events=20))
    response = _repl(api, session["id"], "for (;;) console.log('flood')")
    details = _limit_failure(response, "OUTPUT_LIMIT_EXCEEDED", "max_events")
    assert details["limit_value"] == 20
    execution = api.get(f"/executions/{details['execution_id']}").json()
    assert execution["status"] == "error"
    assert execution["error"]["code"] == "OUTPUT_LIMIT_EXCEEDED"
    events = _events(api, execution["id"])
    assert len(events) == 21 and events[-1]["type"] == "system"
    assert [e["seq"] for e in events] == list(range(1, 22))
    assert execution["metrics"]["events"] == 21
    # The session survives and keeps its state.
    assert _repl(api, session["id"], "1 + 1").json()["result"]["json"] == 2


def test_output_limit_stops_big_lines(
    api: httpx.Client, make_template: Make, make_session: Make
) -> None:
    session = make_session(make_template(max_output_kb=4))
    response = _repl(api, session["id"], "for (;;) console.log('x'.repeat(1000))")
    details = _limit_failure(response, "OUTPUT_LIMIT_EXCEEDED", "max_output_kb")
    execution = api.get(f"/executions/{details['execution_id']}").json()
    assert execution["metrics"]["output_bytes"] <= 4 * 1024 + 512


def test_a_batch_of_console_lines_is_stored_as_sent_and_cut_at_max_output_kb_exactly(
    api: httpx.Client, make_template: Make, make_session: Make
) -> None:
    # One synchronous loop: the worker sends these lines in one batch, which the daemon
    # stores as one JSON array that SQLite splits into rows (store/eventlog.py).
    texts = ['a"b\\c', "line\nbreak\ttab", "\u2028\u2029", "é中文😀", "\x00\x1f\x7f"]
    texts += ["</script>", ""]
    session = make_session(make_template(max_output_kb=2))
    code = (
        f"for (const t of {json.dumps(texts)}) console.log(t);"
        "for (let i = 0; i < 100; i++) console.log('x'.repeat(100))"
    )
    details = _limit_failure(
        _repl(api, session["id"], code), "OUTPUT_LIMIT_EXCEEDED", "max_output_kb"
    )
    events = _events(api, details["execution_id"])
    consoles = [e["payload"] for e in events if e["type"] == "console"]
    # The one change on the way is the worker's: a NUL cannot cross its C strings.
    sent = [text.replace("\x00", "\ufffd") for text in texts]
    assert [c["text"] for c in consoles[: len(texts)]] == sent
    assert all(c == {"level": "log", "text": "x" * 100} for c in consoles[len(texts) :])
    sizes = [len(msgspec.json.encode(e["payload"])) for e in events if e["type"] != "system"]
    execution = api.get(f"/executions/{details['execution_id']}").json()
    # Every event kept fits, and the next line (125 bytes) would not have.
    assert execution["metrics"]["output_bytes"] == sum(sizes)
    assert 2048 - 125 < sum(sizes) <= 2048
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))


def test_input_over_output_limit_is_stopped_before_it_runs(
    api: httpx.Client, make_template: Make, make_session: Make
) -> None:
    session = make_session(make_template(max_output_kb=1))
    code = "globalThis.ran = true; '" + "y" * 4000 + "'"
    details = _limit_failure(
        _repl(api, session["id"], code), "OUTPUT_LIMIT_EXCEEDED", "max_output_kb"
    )
    events = _events(api, details["execution_id"])
    assert [e["type"] for e in events] == ["input_echo", "system"]
    assert len(events[0]["payload"]["text"]) < len(code)
    assert _repl(api, session["id"], "typeof ran").json()["result"]["preview"] == "undefined"


def test_wall_timeout_keeps_state(
    api: httpx.Client, make_template: Make, make_session: Make
) -> None:
    session = make_session(make_template(wall_ms=300, cpu_ms=10_000))
    _repl(api, session["id"], "var survivor = 'still here'")
    details = _limit_failure(
        _repl(api, session["id"], "while (true) {}"), "EXECUTION_TIMEOUT", "wall_ms"
    )
    assert details["limit_value"] == 300
    execution = api.get(f"/executions/{details['execution_id']}").json()
    assert execution["status"] == "timeout"
    assert _events(api, execution["id"])[-1]["type"] == "system"
    assert api.get(f"/sessions/{session['id']}").json()["status"] == "ready"
    assert _repl(api, session["id"], "survivor").json()["result"]["preview"] == "still here"


def test_cpu_timeout(api: httpx.Client, make_template: Make, make_session: Make) -> None:
    session = make_session(make_template(cpu_ms=200, wall_ms=10_000))
    details = _limit_failure(
        _repl(api, session["id"], "while (true) {}"), "EXECUTION_TIMEOUT", "cpu_ms"
    )
    assert details["limit_value"] == 200


def test_native_overshoot_is_killed_at_the_hard_deadline(
    api: httpx.Client, make_template: Make, make_session: Make
) -> None:
    session = make_session(make_template(wall_ms=200, cpu_ms=200))
    # One native replaceAll runs for seconds and never reaches the interrupt handler.
    code = "'x'.repeat(4e7).replaceAll('x', 'yy').length"
    details = _limit_failure(_repl(api, session["id"], code), "EXECUTION_TIMEOUT", "wall_ms")
    execution = api.get(f"/executions/{details['execution_id']}").json()
    assert execution["status"] == "timeout"
    assert _events(api, execution["id"])[-1]["type"] == "system"
    after = api.get(f"/sessions/{session['id']}").json()
    assert after["status"] == "crashed" and "hard deadline wall_ms=200" in after["last_error"]
    assert session["id"] not in api.get("/runtime/summary").json()["active_session_ids"]


def test_native_overrun_answered_inside_the_grace_is_a_timeout_and_keeps_state(
    api: httpx.Client, make_template: Make, make_session: Make
) -> None:
    session = make_session(make_template(cpu_ms=100, wall_ms=3000))
    _repl(api, session["id"], "var survivor = 'still here'")
    # About 0.5 s of CPU in one BigInt operation the interrupt never sees: the worker
    # answers ok, late, before the hard deadline (wall_ms + 1 s) would kill it.
    code = "(7n ** 150000n).toString().length"
    details = _limit_failure(_repl(api, session["id"], code), "EXECUTION_TIMEOUT", "cpu_ms")
    assert details["limit_value"] == 100
    execution = api.get(f"/executions/{details['execution_id']}").json()
    assert execution["status"] == "timeout" and execution["result"] is None
    assert execution["metrics"]["cpu_ms"] > 100
    assert execution["error"]["limit"] == "cpu_ms"
    assert _events(api, execution["id"])[-1]["payload"]["limit"] == "cpu_ms"
    assert api.get(f"/sessions/{session['id']}").json()["status"] == "ready"
    assert _repl(api, session["id"], "survivor").json()["result"]["preview"] == "still here"


def test_memory_limit_then_session_still_works(
    api: httpx.Client, make_template: Make, make_session: Make
) -> None:
    session = make_session(make_template(mem_mb=32))
    code = "let hog = []; for (;;) hog.push(new Array(100000).fill(1))"
    details = _limit_failure(_repl(api, session["id"], code), "MEMORY_LIMIT_EXCEEDED", "mem_mb")
    assert details["limit_value"] == 32
    assert _repl(api, session["id"], "40 + 2").json()["result"]["json"] == 42


def test_limits_changed_apply_to_the_next_execution(
    api: httpx.Client, make_template: Make, make_session: Make
) -> None:
    template = make_template()
    session = make_session(template)
    assert (
        _repl(api, session["id"], "for (let i = 0; i < 10; i++) console.log(i)").status_code == 201
    )
    api.put(f"/templates/{template['id']}/settings", json={"limits": {"max_events": 5}})
    response = _repl(api, session["id"], "for (let i = 0; i < 10; i++) console.log(i)")
    assert _limit_failure(response, "OUTPUT_LIMIT_EXCEEDED", "max_events")["limit_value"] == 5


def test_busy_session_answers_409_at_once(
    api: httpx.Client, daemon: Daemon, make_template: Make, make_session: Make
) -> None:
    session = make_session(make_template(wall_ms=3000, cpu_ms=3000))
    with concurrent.futures.ThreadPoolExecutor(1) as pool, daemon.client() as other:
        slow = pool.submit(_repl, other, session["id"], "while (true) {}")
        wait_until(lambda: api.get("/runtime/summary").json()["busy_sessions"] == 1)
        busy = _repl(api, session["id"], "1")
        assert busy.status_code == 409 and error_code(busy) == "SESSION_BUSY"
        assert slow.result(timeout=30).status_code == 422


def test_closing_a_session_cancels_its_running_execution(
    api: httpx.Client, daemon: Daemon, make_template: Make, make_session: Make
) -> None:
    session = make_session(make_template(wall_ms=20_000, cpu_ms=20_000))
    with concurrent.futures.ThreadPoolExecutor(1) as pool, daemon.client() as other:
        slow = pool.submit(_repl, other, session["id"], "while (true) {}")
        wait_until(lambda: api.get("/runtime/summary").json()["busy_sessions"] == 1)
        assert api.post(f"/sessions/{session['id']}/close").status_code == 200
        answer = slow.result(timeout=30)
    assert answer.status_code == 201
    assert answer.json()["status"] == "cancelled"


def test_concurrent_repl_on_many_sessions(
    api: httpx.Client, daemon: Daemon, make_session: Make
) -> None:
    sessions = [make_session() for _ in range(6)]

    def run(session: dict[str, Any]) -> list[Any]:
        with daemon.client() as client:
            return [
                _repl(client, session["id"], f"var n = (globalThis.n || 0) + {i}; n").json()[
                    "result"
                ]["json"]
                for i in range(1, 6)
            ]

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(run, sessions))
    assert results == [[1, 3, 6, 10, 15]] * 6


def test_fs_module_reads_the_worktree_only_when_the_template_exposes_it(
    api: httpx.Client, make_template: Make, make_session: Make, worktree: Path, tmp_path: Path
) -> None:
    (worktree / "data").mkdir()
    (worktree / "data" / "a.txt").write_text("alpha")
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink(tmp_path / "secret.txt", worktree / "data" / "leak.txt")
    plain = make_session(make_template())
    refused = _repl(api, plain["id"], "require('fs')").json()
    assert refused["status"] == "error" and "Cannot find module 'fs'" in refused["error"]["message"]

    template = make_template()
    api.post(f"/templates/{template['id']}/modules", json={"name": "fs"})
    session = make_session(template)
    code = (
        "const fs = require('fs');"
        "[fs.readFileSync('data/a.txt', 'utf8'), fs.existsSync('data/a.txt'),"
        " fs.existsSync('nope'), fs.readdirSync('data')]"
    )
    ok = _repl(api, session["id"], code).json()
    assert ok["result"]["json"] == ["alpha", True, False, ["a.txt", "leak.txt"]]
    for path in ["../secret.txt", "/etc/passwd", "data/leak.txt"]:
        escaped = _repl(api, session["id"], f"require('fs').readFileSync({path!r})").json()
        assert escaped["status"] == "error", path
        assert "secret" not in str(escaped["result"])
