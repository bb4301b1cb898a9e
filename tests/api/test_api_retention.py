"""Retention: ``--retain`` prunes ended executions, their events and closed sessions."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from real_daemon import running_daemon, session_body, start_session, wait_until
from vmctl.daemon_options import parse_retain


def _page_count(db_path: Path) -> int:
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        count: int = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.close()
    return count


def _run(api: httpx.Client, session_id: str, code: str) -> dict[str, Any]:
    response = api.post("/executions/repl", json={"session_id": session_id, "input": code})
    assert response.status_code == 201, response.text
    record: dict[str, Any] = response.json()
    return record


def test_a_count_keeps_the_newest_ended_executions_and_gives_the_space_back(
    tmp_path: Path, worktree: Path
) -> None:
    home = tmp_path / "home"
    with running_daemon(home, ["--retain", "forever"]) as first, first.client() as api:
        session = start_session(api, worktree, max_events=100_000, max_output_kb=8192)
        flood = "for (let i = 0; i < 50000; i++) console.log('line ' + i); 'flood'"
        old = [_run(api, session["id"], flood) for _ in range(3)]
        kept = [_run(api, session["id"], f"{n} * 2") for n in range(2)]
    grown = _page_count(first.db_path)
    with running_daemon(home, ["--retain", "2"]) as second, second.client() as api:
        wait_until(lambda: api.get(f"/executions/{old[-1]['id']}").status_code == 404, 20)
        listed = api.get("/executions", params={"session_id": session["id"]}).json()
        assert {e["id"] for e in listed} == {e["id"] for e in kept}
        assert api.get(f"/executions/{old[0]['id']}/events").status_code == 404
        assert len(api.get(f"/executions/{kept[0]['id']}/events").json()) == 2
        # 150,000 events went, and their pages with them (the store is incremental_vacuum'd).
        wait_until(lambda: _page_count(second.db_path) < grown / 4, 20)


def test_an_age_prunes_what_ended_before_it_and_closed_sessions_left_empty(
    tmp_path: Path, worktree: Path
) -> None:
    home = tmp_path / "home"
    with running_daemon(home) as first, first.client() as api:
        closed = start_session(api, worktree)
        ended = _run(api, closed["id"], "1")
        api.post(f"/sessions/{closed['id']}/close")
        open_session = api.post("/sessions", json=session_body(closed["vm_id"], worktree)).json()
        recent = _run(api, open_session["id"], "2")
    stopped = time.time()
    # An age of one second; the prune runs as the daemon starts: let a second pass first
    # (time itself is what this waits for).
    time.sleep(max(0.0, 1.2 - (time.time() - stopped)))
    with running_daemon(home, ["--retain", "1s"]) as second, second.client() as api:
        wait_until(lambda: api.get(f"/sessions/{closed['id']}").status_code == 404, 20)
        assert api.get(f"/executions/{ended['id']}").status_code == 404
        assert api.get(f"/executions/{recent['id']}").status_code == 404  # ended: pruned too
        # A session that was not closed (it is crashed now) stays, even without executions.
        assert api.get(f"/sessions/{open_session['id']}").status_code == 200


@pytest.mark.parametrize(
    ("value", "parsed"),
    [("30d", (2_592_000, None)), ("12h", (43_200, None)), ("90m", (5_400, None)),
     ("3600s", (3_600, None)), ("10000", (None, 10_000)), ("forever", (None, None))],
)  # fmt: skip
def test_retain_values(value: str, parsed: tuple[int | None, int | None]) -> None:
    assert parse_retain(value) == parsed


@pytest.mark.parametrize("value", ["", "0", "-1", "0d", "3w", "d", "1.5h", "never"])
def test_bad_retain_values_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="expected an age"):
        parse_retain(value)
