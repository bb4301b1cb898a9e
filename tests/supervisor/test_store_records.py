"""The store's sessions, executions and events, and the recovery of what a dead daemon left."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from supervisor.stores import (
    T0,
    T1,
    a_session,
    an_execution,
    events,
    given_session,
    given_template,
    sql,
)
from vmctl.api.models import Execution, ExecutionMetrics
from vmctl.supervisor.store import (
    Duplicate,
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


# -- executions and events


def test_an_execution_round_trips_with_its_json_fields(
    runner: asyncio.Runner, store: Store
) -> None:
    session = runner.run(given_session(store))
    execution = Execution(
        id=new_id(),
        session_id=session.id,
        kind="run_file",
        status="running",
        started_at=T0,
        path="main.js",
        args={"n": [1, 2, {"deep": None}]},
        env={"HOME": "/x"},
    )
    runner.run(store.insert_execution(execution))
    assert runner.run(store.get_execution(execution.id)) == execution

    execution.status, execution.ended_at = "error", T1
    execution.error = {"code": "EXECUTION_TIMEOUT", "limit": "wall_ms", "limit_value": 5}
    execution.result = {"type": "number", "preview": "2", "json": 2}
    execution.metrics = ExecutionMetrics(wall_ms=1.5, cpu_ms=1.25, events=0, output_bytes=9)
    runner.run(store.finish_execution(execution, []))

    assert runner.run(store.get_execution(execution.id)) == execution


def test_an_execution_of_an_unknown_session_raises_not_found(
    runner: asyncio.Runner, store: Store
) -> None:
    execution = an_execution(new_id())
    for write in (store.insert_execution(execution), store.finish_execution(execution, [])):
        with pytest.raises(RowNotFound, match="session"):
            runner.run(write)


def test_executions_are_listed_newest_first_per_session_up_to_a_limit(
    runner: asyncio.Runner, store: Store
) -> None:
    session = runner.run(given_session(store))
    other = runner.run(given_session(store))
    made = [an_execution(session.id, T0)] + [an_execution(session.id, T1) for _ in range(3)]
    for execution in [*made, an_execution(other.id, T1)]:
        runner.run(store.insert_execution(execution))

    assert runner.run(store.list_executions(session.id)) == made[::-1]
    assert runner.run(store.list_executions(session.id, limit=2)) == made[:1:-1]


def test_finish_writes_the_final_row_and_its_events(runner: asyncio.Runner, store: Store) -> None:
    session = runner.run(given_session(store))
    execution = an_execution(session.id)
    runner.run(store.insert_execution(execution))

    execution.status = "ok"
    runner.run(store.finish_execution(execution, events(execution.id, [1, 2, 3, 4])))

    assert runner.run(store.get_execution(execution.id)) == execution
    assert runner.run(store.list_events(execution.id)) == events(execution.id, [1, 2, 3, 4])
    assert runner.run(store.list_events(execution.id, after_seq=2)) == events(execution.id, [3, 4])
    assert runner.run(store.list_events(execution.id, after_seq=4)) == []


def test_finish_records_an_execution_that_was_never_inserted(
    runner: asyncio.Runner, store: Store
) -> None:
    session = runner.run(given_session(store))
    execution = an_execution(session.id, status="error")

    runner.run(store.finish_execution(execution, events(execution.id, [1])))

    assert runner.run(store.list_executions(session.id)) == [execution]
    assert len(runner.run(store.list_events(execution.id))) == 1


def test_finish_with_a_clashing_seq_writes_neither_row_nor_events(
    runner: asyncio.Runner, store: Store
) -> None:
    session = runner.run(given_session(store))
    running = an_execution(session.id)
    runner.run(store.insert_execution(running))
    finished = an_execution(session.id, status="ok")
    finished.id = running.id

    with pytest.raises(Duplicate) as caught:
        runner.run(store.finish_execution(finished, events(running.id, [1, 2, 2])))

    assert caught.value.key == {"seq": None}
    assert runner.run(store.get_execution(running.id)) == running
    assert runner.run(store.list_events(running.id)) == []


def test_an_execution_needs_its_session(runner: asyncio.Runner, store: Store) -> None:
    unknown = new_id()
    execution = an_execution(unknown, status="ok")
    with pytest.raises(RowNotFound, match=f"session {unknown}"):
        runner.run(store.finish_execution(execution, events(execution.id, [1])))
    assert runner.run(store.get_execution(execution.id)) is None


def test_an_event_of_another_execution_is_refused(runner: asyncio.Runner, store: Store) -> None:
    session = runner.run(given_session(store))
    execution = an_execution(session.id)
    runner.run(store.insert_execution(execution))

    with pytest.raises(ValueError, match="belongs to execution"):
        runner.run(store.finish_execution(execution, events(new_id(), [1])))


def test_finish_writes_fifty_thousand_events_in_one_call(
    runner: asyncio.Runner, store: Store
) -> None:
    session = runner.run(given_session(store))
    execution = an_execution(session.id, status="ok")

    runner.run(store.finish_execution(execution, events(execution.id, range(1, 50_001))))

    got = runner.run(store.list_events(execution.id))
    assert [e.seq for e in got] == list(range(1, 50_001))
    assert got[-1].payload == {"level": "log", "text": "line 50000"}
    assert len(runner.run(store.list_events(execution.id, after_seq=49_990))) == 10


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
    done = an_execution(closed.id, status="ok")
    for execution in (with_events, without_events):
        runner.run(store.insert_execution(execution))
    # What a daemon killed mid-run would leave: events of an execution still running.
    for event in events(with_events.id, [1, 2, 3]):
        sql(
            db_path,
            "INSERT INTO events (execution_id, seq, ts, type, payload)"
            f" VALUES ('{event.execution_id}', {event.seq}, '{event.ts}', 'console', '{{}}')",
        )
    runner.run(store.finish_execution(done, events(done.id, [1])))

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
        last = runner.run(store.list_events(execution.id))[-1]
        assert (last.seq, last.type) == (last_seq, "system")
        assert last.payload == {"level": "error", "message": "the daemon stopped"}
    assert runner.run(store.get_execution(done.id)) == done


def test_recovery_with_nothing_left_open_changes_nothing(
    runner: asyncio.Runner, store: Store
) -> None:
    runner.run(given_session(store, "closed"))
    assert runner.run(store.recover_abandoned("again")) == (0, 0)
