"""What an execution reads and writes on its way: the template as it is now, its record as
it is now, and nothing half-written after a crash.

The daemon keeps templates and settings in memory (sessions/catalog.py) and writes a
running execution's row with its first group commit (store/eventlog.py); these tests hold
it to what the store alone used to guarantee. To catch an execution before its row is
committed, a test holds the store's write lock from outside, as a second writer would.
"""

from __future__ import annotations

import contextlib
import signal
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil

from real_daemon import Daemon, error_code, running_daemon, start_session, wait_until

Make = Callable[..., dict[str, Any]]

# About 1.5 s of a busy wait, well inside the default cpu_ms of 2,000.
SLOW = "let t = Date.now(); while (Date.now() - t < 1500) {} 'slow'"


def _repl(api: httpx.Client, session_id: str, code: str, **body: Any) -> httpx.Response:
    return api.post("/executions/repl", json={"session_id": session_id, "input": code, **body})


def _stored(db_path: Path, execution_id: str) -> tuple[str, int] | None:
    """The execution's status and its number of events, read from the SQLite file."""
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as conn:
        row = conn.execute("SELECT status FROM executions WHERE id = ?", (execution_id,)).fetchone()
        (events,) = conn.execute(
            "SELECT COUNT(*) FROM events WHERE execution_id = ?", (execution_id,)
        ).fetchone()
    return None if row is None else (row[0], events)


def _stored_statuses(db_path: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as conn:
        return [status for (status,) in conn.execute("SELECT status FROM executions")]


@contextlib.contextmanager
def _write_lock(db_path: Path) -> Iterator[None]:
    """The store's write lock, held by another connection: no commit happens meanwhile."""
    blocker = sqlite3.connect(db_path, timeout=10)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        yield
    finally:
        blocker.rollback()
        blocker.close()


def _listed(api: httpx.Client, session_id: str) -> list[dict[str, Any]]:
    response = api.get("/executions", params={"session_id": session_id})
    assert response.status_code == 200, response.text
    listed: list[dict[str, Any]] = response.json()
    return listed


# -- the template as it is now ------------------------------------------------------------


def test_a_settings_change_applies_to_the_next_execution_at_once(
    api: httpx.Client, make_template: Make, make_session: Make
) -> None:
    template = make_template()
    session = make_session(template)
    assert _repl(api, session["id"], "1+1").status_code == 201  # the template is read once
    put = api.put(f"/templates/{template['id']}/settings", json={"limits": {"wall_ms": 300}})
    assert put.status_code == 200, put.text
    stopped = _repl(api, session["id"], "while (true) {}")
    assert stopped.status_code == 422 and error_code(stopped) == "EXECUTION_TIMEOUT"
    assert stopped.json()["error"]["details"]["limit_value"] == 300
    put = api.put(f"/templates/{template['id']}/settings", json={"limits": {"max_events": 3}})
    assert put.status_code == 200, put.text
    flood = _repl(api, session["id"], "for (let i = 0; i < 10; i++) console.log(i)")
    assert flood.status_code == 422 and error_code(flood) == "OUTPUT_LIMIT_EXCEEDED"
    assert flood.json()["error"]["details"]["limit_value"] == 3


def test_a_module_added_or_removed_applies_to_the_next_execution_at_once(
    api: httpx.Client, make_template: Make, make_session: Make
) -> None:
    template = make_template()
    session = make_session(template)
    refused = _repl(api, session["id"], "require('fs'); 1").json()
    assert refused["status"] == "error", refused
    added = api.post(f"/templates/{template['id']}/modules", json={"name": "fs"})
    assert added.status_code == 201, added.text
    assert api.get(f"/templates/{template['id']}/modules").json() == ["fs"]
    ok = _repl(api, session["id"], "typeof require('fs').readFileSync").json()
    assert ok["status"] == "ok" and ok["result"]["json"] == "function", ok
    removed = api.delete(f"/templates/{template['id']}/modules/fs")
    assert removed.status_code == 200, removed.text
    assert api.get(f"/templates/{template['id']}/modules").json() == []
    again = _repl(api, session["id"], "require('fs'); 1").json()
    assert again["status"] == "error", again


def test_every_write_to_a_template_is_read_back_at_once(
    api: httpx.Client, make_template: Make
) -> None:
    template = make_template()
    url = f"/templates/{template['id']}"
    assert api.get(f"{url}/libraries").json() == []  # read (and kept) before the writes
    stamps = [api.get(url).json()["template"]["updated_at"]]
    writes: list[Callable[[], httpx.Response]] = [
        lambda: api.post(f"{url}/libraries", json={"name": "lib-a"}),
        lambda: api.post(f"{url}/capabilities", json={"kind": "net", "name": "c"}),
        lambda: api.post(f"{url}/startup-files", json={"path": "s.js"}),
        lambda: api.put(f"{url}/settings", json={"runtime": {"strict": True}}),
        lambda: api.delete(f"{url}/libraries/lib-a"),
    ]
    for write in writes:
        response = write()
        assert response.status_code in (200, 201), response.text
        stamps.append(api.get(url).json()["template"]["updated_at"])
    assert api.get(f"{url}/libraries").json() == []
    assert api.get(url).json()["settings"]["runtime"]["strict"] is True
    assert api.delete(url).status_code == 200
    assert error_code(api.get(f"{url}/modules")) == "TEMPLATE_NOT_FOUND"
    assert error_code(api.put(f"{url}/settings", json={})) == "TEMPLATE_NOT_FOUND"
    assert stamps == sorted(stamps)


# -- the record as it is now ------------------------------------------------------------


def test_a_waiting_clients_execution_is_seen_running_before_its_row_is_committed(
    tmp_path: Path, worktree: Path
) -> None:
    with (
        running_daemon(tmp_path / "home") as daemon,
        daemon.client() as api,
        daemon.client() as waiting,
        ThreadPoolExecutor(1) as pool,
    ):
        session = start_session(api, worktree)
        with _write_lock(daemon.db_path):
            answer = pool.submit(_repl, waiting, session["id"], SLOW)
            wait_until(lambda: bool(_listed(api, session["id"])), timeout=5)
            (running,) = _listed(api, session["id"])
            assert running["status"] == "running" and running["input"] == SLOW
            assert api.get(f"/executions/{running['id']}").json() == running
            assert _stored(daemon.db_path, running["id"]) is None  # not in the store yet
        final = answer.result(timeout=30)
        assert final.status_code == 201, final.text
        assert final.json()["id"] == running["id"] and final.json()["status"] == "ok"
        assert _listed(api, session["id"]) == [final.json()]
        assert _stored(daemon.db_path, running["id"]) == ("ok", 2)


def test_a_running_execution_is_stored_while_it_runs(
    daemon: Daemon, api: httpx.Client, make_session: Make
) -> None:
    session = make_session()
    with ThreadPoolExecutor(1) as pool, daemon.client() as waiting:
        answer = pool.submit(_repl, waiting, session["id"], SLOW)
        wait_until(lambda: bool(_listed(api, session["id"])), timeout=5)
        (running,) = _listed(api, session["id"])
        # Its row goes with the next group commit (within about 10 ms), not at its end.
        wait_until(lambda: _stored(daemon.db_path, running["id"]) is not None, timeout=5)
        assert _stored(daemon.db_path, running["id"]) == ("running", 1)  # and its input_echo
        assert answer.result(timeout=30).json()["status"] == "ok"


def test_a_client_that_does_not_wait_is_answered_a_committed_record(
    daemon: Daemon, api: httpx.Client, make_session: Make
) -> None:
    session = make_session()
    accepted = _repl(api, session["id"], SLOW, wait=False)
    assert accepted.status_code == 202, accepted.text
    record = accepted.json()
    assert record["status"] == "running"
    assert _stored(daemon.db_path, record["id"]) is not None  # before the answer left
    wait_until(lambda: api.get(f"/executions/{record['id']}").json()["status"] == "ok", 30)


def test_a_client_that_does_not_wait_is_refused_when_the_row_cannot_be_committed(
    tmp_path: Path, worktree: Path
) -> None:
    with running_daemon(tmp_path / "home") as daemon, daemon.client() as api:
        session = start_session(api, worktree)
        with _write_lock(daemon.db_path):
            refused = _repl(api, session["id"], "globalThis.ran = true", wait=False)
        assert refused.status_code >= 500, refused.text  # the store is busy: not 202
        assert _listed(api, session["id"]) == []
        ran = _repl(api, session["id"], "typeof globalThis.ran").json()
        assert ran["result"]["json"] == "undefined"  # the execution never ran


# -- a crash -----------------------------------------------------------------------------


def _killed_mid_run(daemon: Daemon, api: httpx.Client, session_id: str, stored: bool) -> str:
    """Start SLOW for a waiting client and kill -9 the daemon while it runs, once its row
    is ``stored`` (else at once); its id."""
    with daemon.client() as waiting, ThreadPoolExecutor(1) as pool:
        answer: Future[httpx.Response] = pool.submit(_repl, waiting, session_id, SLOW)
        wait_until(lambda: bool(_listed(api, session_id)), timeout=5)
        (running,) = _listed(api, session_id)
        if stored:
            wait_until(lambda: _stored(daemon.db_path, running["id"]) is not None, timeout=5)
        workers = psutil.Process(daemon.proc.pid).children(recursive=True)
        daemon.stop(signal.SIGKILL)
        psutil.wait_procs(workers, timeout=10)
        with contextlib.suppress(httpx.HTTPError):
            answer.result(timeout=30)
    execution_id: str = running["id"]
    return execution_id


def test_a_daemon_killed_mid_run_leaves_no_running_row_after_its_restart(
    tmp_path: Path, worktree: Path
) -> None:
    home = tmp_path / "home"
    with running_daemon(home) as first, first.client() as api:
        session = start_session(api, worktree)
        committed = _killed_mid_run(first, api, session["id"], stored=True)
    with running_daemon(home) as second, second.client() as api:
        assert api.get(f"/executions/{committed}").json()["status"] == "cancelled"
        session = start_session(api, worktree)
        # This run's row never reaches the store: it is not there at all afterwards.
        with _write_lock(second.db_path):
            never = _killed_mid_run(second, api, session["id"], stored=False)
    with running_daemon(home) as third, third.client() as api:
        assert error_code(api.get(f"/executions/{never}")) == "EXECUTION_NOT_FOUND"
        assert _stored(third.db_path, never) is None
        assert "running" not in _stored_statuses(third.db_path)
