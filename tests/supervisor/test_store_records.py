"""The store's sessions, executions and events, and the recovery of what a dead daemon left."""

from __future__ import annotations

import asyncio
import functools
import sqlite3

import msgspec
import pytest

from supervisor.stores import (
    T0,
    T1,
    WAIT,
    a_session,
    an_execution,
    append_console,
    committed_running,
    console,
    ended,
    events,
    given_session,
    given_template,
    recorded,
    sql,
    stored_events,
)
from vmctl.api.models import Execution, ExecutionMetrics
from vmctl.supervisor.store import (
    RowNotFound,
    Store,
    StoreError,
)
from vmctl.supervisor.store.models import new_id


def test_a_session_round_trips_and_is_replaced_whole(runner: asyncio.Runner, store: Store) -> None:
    session = runner.run(given_session(store, "starting"))
    assert runner.run(store.get_session(session.id)) == session

    session.status = "crashed"
    session.last_error = "exit code 3"
    session.runtime_meta = {"pid": 42, "engine": {"name": "quickjs", "version": "0.10"}}
    runner.run(store.update_session(session))

    assert runner.run(store.get_session(session.id)) == session


def test_a_session_of_an_unknown_template_is_refused(runner: asyncio.Runner, store: Store) -> None:
    session = a_session(new_id())
    with pytest.raises(RowNotFound, match="template"):
        runner.run(store.insert_session(session))
    assert runner.run(store.get_session(session.id)) is None


def test_updating_an_unknown_session_raises_not_found(runner: asyncio.Runner, store: Store) -> None:
    with pytest.raises(RowNotFound, match="session"):
        runner.run(store.update_session(a_session(new_id())))


def test_sessions_are_listed_newest_first_and_filtered_by_status(
    runner: asyncio.Runner, store: Store
) -> None:
    vm_id = runner.run(given_template(store)).id
    made = [
        a_session(vm_id, "closed", T0),
        a_session(vm_id, "ready", T1),
        a_session(vm_id, "closed", T1),
        a_session(vm_id, "ready", T1),
    ]
    for session in made:
        runner.run(store.insert_session(session))

    everything = runner.run(store.list_sessions())
    ready = runner.run(store.list_sessions("ready"))

    assert everything == made[::-1]
    assert ready == [made[3], made[1]]
    assert runner.run(store.list_sessions("starting")) == []


def test_sqlite_errors_reach_callers_as_store_errors(runner: asyncio.Runner, store: Store) -> None:
    session = runner.run(given_session(store))

    with pytest.raises(StoreError, match=r"UNIQUE constraint failed: sessions\.id") as caught:
        runner.run(store.insert_session(session))

    assert isinstance(caught.value.__cause__, sqlite3.IntegrityError)


# -- executions and events, written through the event log


def test_an_execution_round_trips_with_its_json_fields(
    runner: asyncio.Runner, store: Store
) -> None:
    session = runner.run(given_session(store))
    running = Execution(
        id=new_id(),
        session_id=session.id,
        kind="run_file",
        status="running",
        started_at=T0,
        path="main.js",
        args={"n": [1, 2, {"deep": None}]},
        env={"HOME": "/x"},
    )
    log = runner.run(committed_running(store, running))
    assert runner.run(store.get_execution(running.id)) == running

    final = msgspec.structs.replace(
        ended(running, "error"),
        error={"code": "EXECUTION_TIMEOUT", "limit": "wall_ms", "limit_value": 5},
        result={"type": "number", "preview": "2", "json": 2},
        metrics=ExecutionMetrics(wall_ms=1.5, cpu_ms=1.25, events=0, output_bytes=9),
    )
    runner.run(log.finish(final))

    assert runner.run(store.get_execution(running.id)) == final


def test_an_execution_of_an_unknown_session_raises_not_found(
    runner: asyncio.Runner, store: Store
) -> None:
    unknown = new_id()
    committed_first, quick = an_execution(unknown), an_execution(unknown)

    async def scenario() -> None:
        log = store.events.open(committed_first)
        with pytest.raises(RowNotFound, match=f"session {unknown} not found"):
            await log.commit_running()
        store.events.discard(log)
        # Its ended record stays in the log's memory, tried again until the store closes.
        with pytest.raises(RowNotFound, match=f"session {unknown} not found"):
            await recorded(store, quick, ended(quick), count=1)

    runner.run(scenario())

    for execution in (committed_first, quick):
        assert runner.run(store.get_execution(execution.id)) is None
        assert runner.run(stored_events(store, execution.id)) == []


def test_executions_are_listed_newest_first_per_session_up_to_a_limit(
    runner: asyncio.Runner, store: Store
) -> None:
    session = runner.run(given_session(store))
    other = runner.run(given_session(store))
    made = [an_execution(session.id, T0)] + [an_execution(session.id, T1) for _ in range(3)]
    for execution in [*made, an_execution(other.id, T1)]:
        runner.run(committed_running(store, execution))

    assert runner.run(store.list_executions(session.id)) == made[::-1]
    assert runner.run(store.list_executions(session.id, limit=2)) == made[:1:-1]


def test_finish_writes_the_final_row_and_its_events(runner: asyncio.Runner, store: Store) -> None:
    session = runner.run(given_session(store))
    running = an_execution(session.id)
    final = ended(running)

    async def scenario() -> None:
        log = await committed_running(store, running)
        append_console(log, 4)
        await log.finish(final)

    runner.run(scenario())

    assert runner.run(store.get_execution(running.id)) == final
    assert runner.run(stored_events(store, running.id)) == events(running.id, [1, 2, 3, 4])
    assert runner.run(stored_events(store, running.id, after_seq=2)) == events(running.id, [3, 4])
    assert runner.run(stored_events(store, running.id, after_seq=4)) == []


def test_an_execution_that_ends_before_its_first_commit_is_written_as_it_ended(
    runner: asyncio.Runner, store: Store
) -> None:
    session = runner.run(given_session(store))
    running = an_execution(session.id)
    final = ended(running, "error")

    runner.run(recorded(store, running, final, count=1))

    assert runner.run(store.list_executions(session.id)) == [final]
    assert runner.run(stored_events(store, running.id)) == events(running.id, [1])


def test_a_commit_that_fails_writes_neither_the_final_row_nor_its_events(
    runner: asyncio.Runner, store: Store, db_path: str
) -> None:
    session = runner.run(given_session(store))
    running = an_execution(session.id)
    log = runner.run(committed_running(store, running))
    # A failure in the middle of the group, after its row and first events (as a full disk
    # would), made by SQLite itself.
    sql(
        db_path,
        "CREATE TRIGGER refuse_third BEFORE INSERT ON events WHEN NEW.seq = 3"
        " BEGIN SELECT RAISE(ABORT, 'refused'); END",
    )

    async def scenario() -> None:
        append_console(log, 4)
        with pytest.raises(StoreError, match="refused"):
            await log.finish(ended(running))

    runner.run(scenario())

    assert runner.run(store.get_execution(running.id)) == running
    assert runner.run(stored_events(store, running.id)) == []
    assert log.events_lost == 4


def test_fifty_thousand_events_are_committed_in_order_a_window_at_a_time(
    runner: asyncio.Runner, store: Store
) -> None:
    session = runner.run(given_session(store))
    running = an_execution(session.id)

    async def scenario() -> None:
        # As a flood reaches the log: console lines in batches, and no more while it is full.
        log = store.events.open(running)
        for first in range(1, 50_001, 500):
            if log.full:
                drained = asyncio.get_running_loop().create_future()
                log.when_drained(functools.partial(drained.set_result, None))
                await drained
            lines = msgspec.json.encode([console(seq) for seq in range(first, first + 500)])
            log.extend("console", 500, lines.decode(), T0)
        await log.finish(ended(running))

    runner.run(scenario())

    got = runner.run(stored_events(store, running.id))
    assert got == events(running.id, range(1, 50_001))
    assert len(runner.run(store.events_after(running.id, 49_990, 100))) == 10


# -- recovery


def test_recovery_crashes_live_sessions_and_cancels_running_executions(
    runner: asyncio.Runner, store: Store, db_path: str
) -> None:
    vm_id = runner.run(given_template(store)).id
    starting, ready, crashed, closed = (
        a_session(vm_id, status) for status in ("starting", "ready", "crashed", "closed")
    )
    crashed.last_error = "exit code 1"
    for session in (starting, ready, crashed, closed):
        runner.run(store.insert_session(session))
    with_events, without_events = an_execution(ready.id), an_execution(ready.id)
    done = an_execution(closed.id)

    async def scenario() -> None:
        # What a daemon killed mid-run would leave: two executions still running, one of
        # them with events committed.
        log = await committed_running(store, with_events)
        await committed_running(store, without_events)
        append_console(log, 3)
        await log.wait(2, timeout=WAIT)
        assert log.committed_seq == 3
        await recorded(store, done, ended(done), count=1)

    runner.run(scenario())

    assert runner.run(store.recover_abandoned("the daemon stopped")) == (2, 2)

    sessions = {s.id: s for s in runner.run(store.list_sessions())}
    assert [sessions[s.id].status for s in (starting, ready)] == ["crashed", "crashed"]
    assert sessions[ready.id].last_error == "the daemon stopped"
    assert (sessions[crashed.id], sessions[closed.id]) == (crashed, closed)
    for execution, last_seq in ((with_events, 4), (without_events, 1)):
        got = runner.run(store.get_execution(execution.id))
        assert got is not None and got.status == "cancelled" and got.ended_at is not None
        assert got.error == {"code": "CANCELLED", "message": "the daemon stopped"}
        assert got.metrics.events == last_seq
        last = runner.run(stored_events(store, execution.id))[-1]
        assert (last.seq, last.type) == (last_seq, "system")
        assert last.payload == {"level": "error", "message": "the daemon stopped"}
    assert runner.run(store.get_execution(done.id)) == ended(done)


def test_recovery_with_nothing_left_open_changes_nothing(
    runner: asyncio.Runner, store: Store
) -> None:
    runner.run(given_session(store, "closed"))
    assert runner.run(store.recover_abandoned("again")) == (0, 0)
