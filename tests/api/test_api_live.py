"""Live executions: events in the store while the code runs, long-polled, streamed, cancelled.

Every wait here is on the daemon (a long-poll, a stream, a cancel's answer), bounded by
its own timeout; none sleeps.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from real_daemon import Daemon, error_code, running_daemon, start_session, wait_until

Make = Callable[..., dict[str, Any]]

# A line every 20 ms (a busy wait: the worker is never idle between lines), `count` of them,
# then 'done'.
TICKER = (
    "let t = Date.now(); for (let i = 1; i <= {count}; i++) {{"
    " while (Date.now() - t < 20) {{}} t = Date.now(); console.log('tick ' + i) }} 'done'"
)
SPIN = "globalThis.spun = true; for (;;) {}"


def _start(api: httpx.Client, session_id: str, code: str) -> dict[str, Any]:
    response = api.post(
        "/executions/repl", json={"session_id": session_id, "input": code, "wait": False}
    )
    assert response.status_code == 202, response.text
    record: dict[str, Any] = response.json()
    assert record["status"] == "running"
    return record


def _events(
    api: httpx.Client, execution_id: str, after_seq: int = 0, wait_ms: int = 0
) -> list[dict[str, Any]]:
    response = api.get(
        f"/executions/{execution_id}/events",
        params={"after_seq": after_seq, "wait_ms": wait_ms},
        timeout=40,
    )
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()
    return events


def _until_ended(api: httpx.Client, execution_id: str) -> list[dict[str, Any]]:
    """Long-poll until the record has ended; every event, in order."""
    events: list[dict[str, Any]] = []
    ended = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        page = _events(api, execution_id, events[-1]["seq"] if events else 0, wait_ms=5000)
        events += page
        if ended and not page:
            return events
        ended = ended or api.get(f"/executions/{execution_id}").json()["status"] != "running"
    raise AssertionError(f"execution {execution_id} did not end within 60 s")


def test_events_are_in_the_store_while_the_execution_runs(
    api: httpx.Client, make_session: Make
) -> None:
    session = make_session()
    # About 1.2 s of a busy wait: well inside the default cpu_ms of 2,000.
    record = _start(api, session["id"], TICKER.format(count=60))
    echo = _events(api, record["id"], wait_ms=10_000)
    assert echo[0]["type"] == "input_echo"
    first = _events(api, record["id"], after_seq=1, wait_ms=10_000)
    assert first[0] == {**first[0], "seq": 2, "type": "console"}
    assert first[0]["payload"]["text"] == "tick 1"
    running = api.get(f"/executions/{record['id']}").json()
    assert running["status"] == "running"  # still ticking, with its metrics so far
    assert running["metrics"]["events"] >= 2
    assert running["metrics"]["output_bytes"] > 0
    events = _until_ended(api, record["id"])
    assert [e["seq"] for e in events] == list(range(1, 63))
    assert [e["payload"]["text"] for e in events[1:61]] == [f"tick {i}" for i in range(1, 61)]
    final = api.get(f"/executions/{record['id']}").json()
    assert final["status"] == "ok" and final["result"]["json"] == "done"
    assert final["metrics"]["events"] == 62


def test_a_long_poll_answers_at_the_next_event_the_end_or_its_timeout(
    api: httpx.Client, make_session: Make
) -> None:
    session = make_session()
    quiet = "let t = Date.now(); while (Date.now() - t < 1500) {} 'quiet'"
    record = _start(api, session["id"], quiet)
    started = time.monotonic()
    assert _events(api, record["id"], after_seq=1, wait_ms=200) == []  # nothing within 200 ms
    assert time.monotonic() - started >= 0.2
    ended = _events(api, record["id"], after_seq=1, wait_ms=20_000)  # answered at the end
    assert [e["type"] for e in ended] == ["value"]
    assert time.monotonic() - started < 15  # not at its 20 s timeout
    # An ended execution answers at once, whatever the wait.
    assert _events(api, record["id"], after_seq=2, wait_ms=20_000) == []


@pytest.mark.parametrize("wait_ms", ["-1", "30001", "soon"])
def test_an_out_of_range_wait_is_refused(
    api: httpx.Client, make_session: Make, wait_ms: str
) -> None:
    session = make_session()
    done = api.post("/executions/repl", json={"session_id": session["id"], "input": "1"}).json()
    response = api.get(f"/executions/{done['id']}/events", params={"wait_ms": wait_ms})
    assert response.status_code == 400 and error_code(response) == "VALIDATION_ERROR"


def test_not_waiting_still_answers_every_error_before_the_code_runs(
    api: httpx.Client, make_session: Make
) -> None:
    session = make_session()
    _start(api, session["id"], TICKER.format(count=50))
    busy = api.post(
        "/executions/repl", json={"session_id": session["id"], "input": "1", "wait": False}
    )
    assert busy.status_code == 409 and error_code(busy) == "SESSION_BUSY"
    unknown = api.post(
        "/executions/repl",
        json={"session_id": "00000000-0000-0000-0000-000000000000", "input": "1", "wait": False},
    )
    assert unknown.status_code == 404


# -- the stream -------------------------------------------------------------------------


def _messages(lines: Iterator[str]) -> Iterator[dict[str, str]]:
    """Server-sent events as dicts of their fields; comment lines as {"comment": ...}."""
    message: dict[str, str] = {}
    for line in lines:
        if line == "":
            if message:
                yield message
            message = {}
        elif line.startswith(":"):
            yield {"comment": line[1:].strip()}
        else:
            field, _, value = line.partition(":")
            message[field] = value[1:] if value.startswith(" ") else value


def _stream(
    daemon: Daemon,
    execution_id: str,
    stop_after: int | None = None,
    headers: dict[str, str] | None = None,
) -> list[dict[str, str]]:
    """Read the stream to its end (or ``stop_after`` events, then hang up)."""
    got: list[dict[str, str]] = []
    with (
        daemon.client() as client,
        client.stream(
            "GET", f"/executions/{execution_id}/stream", headers=headers, timeout=60
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for message in _messages(response.iter_lines()):
            if "comment" in message:
                continue
            got.append(message)
            if message.get("event") == "end":
                break
            if stop_after is not None and len(got) == stop_after:
                break
    return got


def test_a_stream_sends_every_event_in_order_then_the_record(
    api: httpx.Client, daemon: Daemon, make_session: Make
) -> None:
    session = make_session()
    record = _start(api, session["id"], TICKER.format(count=30))
    messages = _stream(daemon, record["id"])
    events, end = messages[:-1], messages[-1]
    assert [int(m["id"]) for m in events] == list(range(1, 33))
    assert [m["event"] for m in events] == ["input_echo"] + ["console"] * 30 + ["value"]
    assert json.loads(events[5]["data"])["payload"] == {"level": "log", "text": "tick 5"}
    assert end["event"] == "end"
    final = json.loads(end["data"])
    assert final["id"] == record["id"] and final["status"] == "ok"


def test_a_reconnect_with_the_last_id_neither_misses_nor_repeats(
    api: httpx.Client, daemon: Daemon, make_session: Make
) -> None:
    session = make_session()
    record = _start(api, session["id"], TICKER.format(count=40))
    first = _stream(daemon, record["id"], stop_after=7)  # hangs up mid-run
    rest = _stream(daemon, record["id"], headers={"Last-Event-ID": first[-1]["id"]})
    seqs = [int(m["id"]) for m in first + rest if m.get("event") != "end"]
    assert seqs == list(range(1, 43))
    assert rest[-1]["event"] == "end"
    # after_seq does the same for a client that cannot set the header.
    tail = _stream_after(daemon, record["id"], 40)
    assert [m.get("id") for m in tail] == ["41", "42", None]


def _stream_after(daemon: Daemon, execution_id: str, after_seq: int) -> list[dict[str, str]]:
    with (
        daemon.client() as client,
        client.stream(
            "GET", f"/executions/{execution_id}/stream", params={"after_seq": after_seq}, timeout=60
        ) as response,
    ):
        return [m for m in _messages(response.iter_lines()) if "comment" not in m]


def test_a_stream_of_an_unknown_execution_is_404(api: httpx.Client) -> None:
    response = api.get("/executions/00000000-0000-0000-0000-000000000000/stream")
    assert response.status_code == 404 and error_code(response) == "EXECUTION_NOT_FOUND"


def test_a_reader_that_stops_reading_slows_nobody(
    api: httpx.Client, daemon: Daemon, make_template: Make, make_session: Make
) -> None:
    template = make_template(max_events=100_000, max_output_kb=8192)
    flood = make_session(template)
    record = _start(
        api, flood["id"], "for (let i = 0; i < 60000; i++) console.log('x'.repeat(80)); 1"
    )
    # A client that asks for the stream and then reads nothing at all.
    stalled = socket.create_connection(("127.0.0.1", daemon.port))
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    request = (
        f"GET /api/v1/executions/{record['id']}/stream HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{daemon.port}\r\nAuthorization: Bearer {daemon.token}\r\n\r\n"
    )
    stalled.sendall(request.encode())
    try:
        # The flood ends and is recorded whole, another session runs, another reader
        # gets every event: the stalled reader held back none of them.
        events = _until_ended(api, record["id"])
        assert len(events) == 60_002
        other = make_session()
        assert (
            api.post("/executions/repl", json={"session_id": other["id"], "input": "6*7"}).json()[
                "result"
            ]["json"]
            == 42
        )
        streamed = _stream(daemon, record["id"])
        assert len(streamed) == 60_003 and streamed[-1]["event"] == "end"
    finally:
        stalled.close()


# -- cancel -----------------------------------------------------------------------------


def test_cancel_interrupts_softly_and_the_state_survives(
    api: httpx.Client, make_session: Make
) -> None:
    session = make_session()
    api.post("/executions/repl", json={"session_id": session["id"], "input": "var kept = 41"})
    record = _start(api, session["id"], SPIN)
    assert _events(api, record["id"], wait_ms=10_000)[0]["type"] == "input_echo"
    response = api.post(f"/executions/{record['id']}/cancel")
    assert response.status_code == 200, response.text
    cancelled = response.json()
    assert cancelled["status"] == "cancelled" and cancelled["error"]["code"] == "CANCELLED"
    assert _events(api, record["id"])[-1]["type"] == "system"
    assert api.get(f"/sessions/{session['id']}").json()["status"] == "ready"
    after = api.post(
        "/executions/repl", json={"session_id": session["id"], "input": "kept + 1 + !!spun"}
    ).json()
    assert after["result"]["json"] == 43  # globals from before, and from the cancelled snippet
    again = api.post(f"/executions/{record['id']}/cancel", json={})
    assert again.status_code == 200 and again.json() == cancelled  # idempotent on an ended one


def test_cancel_of_an_ended_execution_returns_it_unchanged(
    api: httpx.Client, make_session: Make
) -> None:
    session = make_session()
    done = api.post("/executions/repl", json={"session_id": session["id"], "input": "2"}).json()
    response = api.post(f"/executions/{done['id']}/cancel")
    assert response.status_code == 200 and response.json() == done


def test_cancel_of_an_unknown_execution_is_404_and_a_body_is_refused(
    api: httpx.Client, make_session: Make
) -> None:
    missing = api.post("/executions/00000000-0000-0000-0000-000000000000/cancel")
    assert missing.status_code == 404
    session = make_session()
    done = api.post("/executions/repl", json={"session_id": session["id"], "input": "2"}).json()
    body = api.post(f"/executions/{done['id']}/cancel", json={"now": True})
    assert body.status_code == 400


def test_a_worker_that_ignores_the_interrupt_is_killed_after_the_grace(
    api: httpx.Client, make_template: Make, make_session: Make
) -> None:
    # The fixture reads nothing once it has its request: a worker stuck in native code.
    session = make_session(make_template("hangs", wall_ms=60_000))
    record = _start(api, session["id"], "anything")
    started = time.monotonic()
    cancelled = api.post(f"/executions/{record['id']}/cancel", timeout=30).json()
    assert time.monotonic() - started < 10  # the grace and the kill, not its 60 s limit
    assert cancelled["status"] == "cancelled"
    assert api.get(f"/sessions/{session['id']}").json()["status"] == "crashed"


def test_closing_a_session_cancels_its_execution_the_same_way(
    api: httpx.Client, make_session: Make
) -> None:
    session = make_session()
    record = _start(api, session["id"], SPIN)
    assert api.post(f"/sessions/{session['id']}/close").status_code == 200
    final = api.get(f"/executions/{record['id']}").json()
    assert final["status"] == "cancelled"
    assert _events(api, record["id"])[-1]["type"] == "system"


# -- a daemon killed mid-run ------------------------------------------------------------


def test_a_killed_daemon_keeps_every_committed_event_and_cancels_the_run(
    tmp_path: Path, worktree: Path
) -> None:
    home = tmp_path / "home"
    with running_daemon(home) as first, first.client() as api:
        session = start_session(api, worktree)
        record = _start(api, session["id"], TICKER.format(count=10_000))
        seen = _events(api, record["id"], after_seq=20, wait_ms=20_000)  # 20 ticks committed
        assert seen[0]["seq"] == 21
        workers = psutil.Process(first.proc.pid).children(recursive=True)
        first.stop(signal.SIGKILL)
        psutil.wait_procs(workers, timeout=10)  # the leak check of conftest insists too
    with running_daemon(home) as second, second.client() as api:
        events = api.get(f"/executions/{record['id']}/events").json()
        final = api.get(f"/executions/{record['id']}").json()
    assert final["status"] == "cancelled"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))  # nothing lost between
    assert len(events) >= 22  # everything seen before the kill, and the final system event
    assert events[-1]["type"] == "system"
    assert [e["payload"]["text"] for e in events[1:21]] == [f"tick {i}" for i in range(1, 21)]
    assert final["metrics"]["events"] == len(events)


def _writing_to_a_full_pipe(pid: int) -> bool:
    """Whether a thread of ``pid`` is blocked writing into a pipe nobody reads."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            if "pipe_write" in (task / "wchan").read_text():
                return True
    return False


def test_a_store_that_falls_behind_holds_the_worker_back_not_the_daemon(
    tmp_path: Path, worktree: Path
) -> None:
    with running_daemon(tmp_path / "home") as daemon, daemon.client() as api:
        session = start_session(api, worktree, max_events=100_000, max_output_kb=8192)
        daemon_process = psutil.Process(daemon.proc.pid)
        before = daemon_process.memory_info().rss
        record = _start(api, session["id"], "for (let i = 0; i < 80000; i++) console.log(i); 1")
        # Another writer takes the store's write lock: no commit can happen meanwhile.
        blocker = sqlite3.connect(daemon.db_path, timeout=10)
        try:
            blocker.execute("BEGIN EXCLUSIVE")
            worker = session["runtime_meta"]["pid"]
            wait_until(lambda: _writing_to_a_full_pipe(worker), timeout=4)
            # ... and stays blocked while the lock is held: the daemon reads no further.
            with pytest.raises(AssertionError, match="condition not met"):
                wait_until(lambda: not _writing_to_a_full_pipe(worker), timeout=1.5)
            growth = daemon_process.memory_info().rss - before
        finally:
            blocker.rollback()
            blocker.close()
        events = _until_ended(api, record["id"])
    assert growth < 64 * 1024 * 1024  # a window of events, not all 80,000 of them
    assert [e["seq"] for e in events] == list(range(1, 80_003))
    assert events[-1]["type"] == "value"


def test_a_stream_cut_by_a_killed_daemon_resumes_on_the_next_one(
    tmp_path: Path, worktree: Path
) -> None:
    home = tmp_path / "home"
    with running_daemon(home) as first, first.client() as api:
        session = start_session(api, worktree)
        record = _start(api, session["id"], TICKER.format(count=10_000))
        got: list[dict[str, str]] = []
        url = f"/executions/{record['id']}/stream"
        # The connection dies with the daemon.
        with pytest.raises(httpx.HTTPError), api.stream("GET", url, timeout=30) as stream:
            for message in _messages(stream.iter_lines()):
                if "comment" in message:
                    continue
                got.append(message)
                if len(got) == 15:
                    first.stop(signal.SIGKILL)
        assert [int(m["id"]) for m in got] == list(range(1, len(got) + 1))
    with running_daemon(home) as second:
        rest = _stream(second, record["id"], headers={"Last-Event-ID": got[-1]["id"]})
    seqs = [int(m["id"]) for m in got + rest if m.get("event") != "end"]
    assert seqs == list(range(1, len(seqs) + 1))  # nothing missed, nothing twice
    assert rest[-2]["event"] == "system"
    assert json.loads(rest[-1]["data"])["status"] == "cancelled"


def test_a_stream_never_ends_before_the_last_events_are_sent(
    api: httpx.Client, daemon: Daemon, make_session: Make
) -> None:
    # The end message must come after every event, even when the execution ends while its
    # last events are still on their way to the store.
    session = make_session()
    for round_ in range(50):
        record = _start(api, session["id"], f"console.log('line {round_}'); {round_}")
        # On the same connection, at once: the stream's first read lands as the run ends.
        with api.stream("GET", f"/executions/{record['id']}/stream", timeout=30) as response:
            kinds = [m.get("event") for m in _messages(response.iter_lines()) if "comment" not in m]
        assert kinds == ["input_echo", "console", "value", "end"], round_
