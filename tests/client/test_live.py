"""Executions followed as they happen: events before the end, a dropped stream resumed
without a gap or a repeat, a stream that keeps dropping, and cancel."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from cli.cutting_proxy import cutting_proxy

from client.scripts import TICKS
from real_daemon import Daemon
from vmctl.client import Client, StreamLost, live

LINES = 2000


def test_events_arrive_while_the_execution_runs(
    client: Client, gated_template: str, tmp_path: Path, gate: Path
) -> None:
    seen: list[str] = []
    with client.session(gated_template, tmp_path) as session:
        running = session.repl(TICKS, wait=False)
        assert running.started.status == "running"
        for event in running:
            seen.append(event.type)
            if event.payload.get("text") == "tick 5":
                assert client.get_execution(running.id).status == "running"
                gate.touch()
        run = running.wait()
    assert run.ok and run.value >= 5
    assert run.console == [f"tick {n}" for n in range(1, run.value + 1)]
    assert seen == [event.type for event in run.events]
    assert seen[0] == "input_echo" and seen[-1] == "value"


def test_stream_events_ends_with_the_record(client: Client, tmp_path: Path) -> None:
    with client.session(f"t-{uuid.uuid4()}", tmp_path) as session:
        execution = client.repl(session.id, "console.log(1); console.log(2); 3")
        with client.stream_events(execution.id, after_seq=1) as stream:
            seqs = [event.seq for event in stream]
    assert seqs == [2, 3, 4]
    assert stream.execution is not None and stream.execution.status == "ok"
    assert stream.last_seq == 4


def test_cancel_stops_it_and_the_session_keeps_its_state(
    client: Client, gated_template: str, tmp_path: Path
) -> None:
    with client.session(gated_template, tmp_path) as session:
        assert session.repl("globalThis.kept = 'still here'").ok
        running = session.repl(TICKS, wait=False)
        first = next(iter(running))
        run = running.cancel()
        after = session.repl("kept")
    assert first.type == "input_echo"
    assert run.status == "cancelled" and run.events[0] == first
    assert after.value == "still here"


@pytest.fixture
def long_execution(client: Client, tmp_path: Path) -> str:
    """An ended execution of LINES console lines (its stream is some 250 KB)."""
    with client.session(f"t-{uuid.uuid4()}", tmp_path) as session:
        code = f"for (let i = 1; i <= {LINES}; i++) console.log('line ' + i); 'end'"
        return session.repl(code).id


def test_a_dropped_stream_is_resumed_without_a_gap_or_a_repeat(
    daemon: Daemon, long_execution: str
) -> None:
    with cutting_proxy(daemon.port, cuts=[40_000, 40_000, 40_000]) as proxy:
        with Client(proxy.url, daemon.token) as client:
            stream = client.stream_events(long_execution)
            seqs = [event.seq for event in stream]
        assert proxy.cut == 3
        resumed_from = proxy.last_event_ids()
    assert seqs == list(range(1, LINES + 3))  # input_echo, the lines, the value
    assert stream.execution is not None and stream.execution.status == "ok"
    assert resumed_from[0] == "" and len(resumed_from) == 4
    assert [int(seq) for seq in resumed_from[1:]] == sorted(int(s) for s in resumed_from[1:])


def test_a_stream_that_keeps_dropping_is_lost_with_where_it_was(
    daemon: Daemon, long_execution: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "RETRY_DELAYS", (0.0, 0.0))
    received = []
    with cutting_proxy(daemon.port, cuts=[40_000, 0, 0, 0, 0]) as proxy:
        with Client(proxy.url, daemon.token) as client, pytest.raises(StreamLost) as caught:
            for event in client.stream_events(long_execution):
                received.append(event.seq)
        assert proxy.cut == 3  # the stream that brought events, then the two retries
    assert 0 < len(received) < LINES
    assert received == list(range(1, len(received) + 1))
    assert (caught.value.execution_id, caught.value.after_seq) == (long_execution, received[-1])
