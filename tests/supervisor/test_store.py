"""The store against real SQLite files: every method, its errors, its ordering, its threads."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from vmctl.supervisor.store import (
    Duplicate,
    RowNotFound,
    Store,
    StoreError,
    TemplateInUse,
    TemplateNameTaken,
    open_store,
)
from vmctl.supervisor.store import schema as store_schema
from vmctl.supervisor.store.models import (
    Capability,
    Event,
    Execution,
    ExecutionMetrics,
    ExecutionStatus,
    Limits,
    Runtime,
    Session,
    SessionStatus,
    Settings,
    StartupFile,
    Template,
    new_id,
)

T0 = "2026-01-01T00:00:00.000Z"  # every row made "in the same millisecond" unless a test says
T1 = "2026-01-01T00:00:00.001Z"


@pytest.fixture(autouse=True)
def no_store_threads_left() -> Iterator[None]:
    yield
    left = [t.name for t in threading.enumerate() if t.name.startswith("vmctl-store")]
    assert left == []


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    # asyncio.run's own machinery, kept open so a test can make several calls on one loop.
    with asyncio.Runner() as runner:
        yield runner


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "home" / "vmctl.db")


@pytest.fixture
def store(runner: asyncio.Runner, db_path: str) -> Iterator[Store]:
    store = runner.run(open_store(db_path))
    yield store
    runner.run(store.aclose())


def a_template(name: str = "t", created_at: str = T0) -> Template:
    return Template(
        id=new_id(), name=name, engine="quickjs", created_at=created_at, updated_at=created_at
    )


def a_session(vm_id: str, status: SessionStatus = "ready", created_at: str = T0) -> Session:
    return Session(
        id=new_id(),
        vm_id=vm_id,
        workspace_id="ws",
        base_commit_oid="abc123",
        worktree_path="/tmp/wt",
        status=status,
        created_at=created_at,
    )


def an_execution(
    session_id: str, started_at: str = T0, status: ExecutionStatus = "running"
) -> Execution:
    return Execution(
        id=new_id(),
        session_id=session_id,
        kind="repl",
        status=status,
        started_at=started_at,
        input="1 + 1",
    )


def events(execution_id: str, seqs: Iterable[int]) -> list[Event]:
    return [
        Event(
            execution_id=execution_id,
            seq=seq,
            ts=T0,
            type="console",
            payload={"level": "log", "text": f"line {seq}"},
        )
        for seq in seqs
    ]


async def given_template(store: Store, name: str | None = None) -> Template:
    template = a_template(name or new_id())
    await store.create_template(template, Settings(vm_id=template.id))
    return template


async def given_session(store: Store, status: SessionStatus = "ready") -> Session:
    template = await given_template(store)
    session = a_session(template.id, status)
    await store.insert_session(session)
    return session


def sql(path: str, query: str) -> list[Any]:
    """Look at (or write to) the file from the outside, as another process would."""
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:  # commits what it wrote
        return conn.execute(query).fetchall()


# -- opening, schema, migrations


def test_open_creates_the_directory_and_records_the_schema_version(
    store: Store, db_path: str
) -> None:
    assert Path(db_path).is_file()
    assert sql(db_path, "PRAGMA user_version") == [(store_schema.SCHEMA_VERSION,)]
    assert sql(db_path, "PRAGMA journal_mode") == [("wal",)]


def test_every_connection_has_wal_foreign_keys_and_a_busy_timeout(
    runner: asyncio.Runner, store: Store
) -> None:
    def pragmas(conn: sqlite3.Connection) -> list[object]:
        names = ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
        return [conn.execute(f"PRAGMA {name}").fetchone()[0] for name in names]

    expected = ["wal", 1, store_schema.BUSY_TIMEOUT_MS, 1]  # synchronous 1 = NORMAL
    assert runner.run(store._writer.run(pragmas)) == expected
    assert runner.run(store._reader.run(pragmas)) == expected


def test_the_reader_connection_cannot_write(runner: asyncio.Runner, store: Store) -> None:
    def write(conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM templates")

    with pytest.raises(StoreError, match="readonly"):
        runner.run(store._reader.run(write))


def test_reopening_keeps_the_data_and_the_version(runner: asyncio.Runner, db_path: str) -> None:
    async def scenario() -> None:
        async with await open_store(db_path) as store:
            template = await given_template(store, "kept")
        async with await open_store(db_path) as store:
            assert await store.get_template(template.id) == template

    runner.run(scenario())
    assert sql(db_path, "PRAGMA user_version") == [(store_schema.SCHEMA_VERSION,)]


def test_a_newer_schema_version_refuses_to_open(runner: asyncio.Runner, db_path: str) -> None:
    Path(db_path).parent.mkdir()
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        conn.execute("PRAGMA user_version = 99")

    with pytest.raises(StoreError, match="schema version 99, newer than this vmctl knows"):
        runner.run(open_store(db_path))


def test_a_new_migration_upgrades_an_existing_file(
    runner: asyncio.Runner, db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner.run(runner.run(open_store(db_path)).aclose())
    monkeypatch.setattr(
        store_schema, "_MIGRATIONS", (*store_schema._MIGRATIONS, ("CREATE TABLE extra (x)",))
    )
    monkeypatch.setattr(store_schema, "SCHEMA_VERSION", len(store_schema._MIGRATIONS))

    runner.run(runner.run(open_store(db_path)).aclose())

    assert sql(db_path, "PRAGMA user_version") == [(store_schema.SCHEMA_VERSION,)]
    assert sql(db_path, "SELECT name FROM sqlite_master WHERE name = 'extra'") == [("extra",)]


def test_a_failing_migration_is_rolled_back_whole(
    runner: asyncio.Runner, db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = store_schema.SCHEMA_VERSION
    broken = ("CREATE TABLE extra (x)", "this is not SQL")
    monkeypatch.setattr(store_schema, "_MIGRATIONS", (*store_schema._MIGRATIONS, broken))
    monkeypatch.setattr(store_schema, "SCHEMA_VERSION", len(store_schema._MIGRATIONS))

    with pytest.raises(StoreError, match="syntax error"):
        runner.run(open_store(db_path))

    assert sql(db_path, "PRAGMA user_version") == [(shipped,)]  # the earlier ones stay applied
    assert sql(db_path, "SELECT name FROM sqlite_master WHERE name = 'extra'") == []


def test_a_version_1_file_keeps_its_rows_when_vm_id_becomes_template_id(
    runner: asyncio.Runner, db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as version_1:
        version_1.setattr(store_schema, "_MIGRATIONS", store_schema._MIGRATIONS[:1])
        version_1.setattr(store_schema, "SCHEMA_VERSION", 1)
        template_id = new_id()
        runner.run(runner.run(open_store(db_path)).aclose())
        sql(
            db_path,
            "INSERT INTO templates (id, name, engine, is_active, created_at, updated_at)"
            f" VALUES ('{template_id}', 'old', 'quickjs', 1, '{T0}', '{T0}')",
        )
        session = a_session(template_id)
        sql(
            db_path,
            "INSERT INTO sessions (id, vm_id, workspace_id, base_commit_oid, worktree_path,"
            f" status, created_at) VALUES ('{session.id}', '{template_id}', "
            f"'{session.workspace_id}', '{session.base_commit_oid}', "
            f"'{session.worktree_path}', 'ready', '{T0}')",
        )

    store = runner.run(open_store(db_path))
    try:
        assert runner.run(store.get_session(session.id)) == session
        columns = [row[1] for row in sql(db_path, "PRAGMA table_info(sessions)")]
        assert "template_id" in columns and "vm_id" not in columns
        assert sql(db_path, "PRAGMA user_version") == [(store_schema.SCHEMA_VERSION,)]
    finally:
        runner.run(store.aclose())


def test_a_file_that_cannot_be_opened_gives_store_error(
    runner: asyncio.Runner, tmp_path: Path
) -> None:
    with pytest.raises(StoreError, match="unable to open"):
        runner.run(open_store(str(tmp_path)))  # a directory


# -- templates


def test_a_template_comes_back_with_its_modules_and_libraries_sorted(
    runner: asyncio.Runner, store: Store
) -> None:
    template = a_template()
    template.exposed_modules = ["zlib", "fs"]
    template.libraries = ["lodash"]
    runner.run(store.create_template(template, Settings(vm_id=template.id)))
    runner.run(store.add_library(template.id, "dayjs"))

    got = runner.run(store.get_template(template.id))

    assert got is not None
    assert (got.exposed_modules, got.libraries) == (["fs", "zlib"], ["dayjs", "lodash"])
    assert got.updated_at > template.updated_at  # adding a library changes the template


def test_getters_return_none_for_unknown_ids(runner: asyncio.Runner, store: Store) -> None:
    unknown = new_id()
    assert runner.run(store.get_template(unknown)) is None
    assert runner.run(store.get_template_detail(unknown)) is None
    assert runner.run(store.get_settings(unknown)) is None
    assert runner.run(store.get_session(unknown)) is None
    assert runner.run(store.get_execution(unknown)) is None
    assert runner.run(store.list_events(unknown)) == []
    assert runner.run(store.list_executions(unknown)) == []


def test_templates_are_listed_newest_first_even_within_one_millisecond(
    runner: asyncio.Runner, store: Store
) -> None:
    older = a_template("older", created_at=T0)
    tied = [a_template(f"tied-{i}", created_at=T1) for i in range(3)]
    for template in [older, *tied]:
        runner.run(store.create_template(template, Settings(vm_id=template.id)))

    names = [t.name for t in runner.run(store.list_templates())]

    assert names == ["tied-2", "tied-1", "tied-0", "older"]


def test_a_taken_template_name_is_refused(runner: asyncio.Runner, store: Store) -> None:
    runner.run(given_template(store, "same"))
    second = a_template("same")

    with pytest.raises(TemplateNameTaken) as caught:
        runner.run(store.create_template(second, Settings(vm_id=second.id)))

    assert caught.value.name == "same"
    assert runner.run(store.get_template(second.id)) is None


def test_template_detail_holds_settings_capabilities_and_ordered_startup_files(
    runner: asyncio.Runner, store: Store
) -> None:
    template = runner.run(given_template(store))
    vm_id = template.id
    capabilities = [
        Capability(id=new_id(), vm_id=vm_id, kind="net", name="http", config={"a": [1]}),
        Capability(id=new_id(), vm_id=vm_id, kind="fs", name="read", enabled=True),
    ]
    files = [
        StartupFile(id=new_id(), vm_id=vm_id, path="b.js", order_index=1),
        StartupFile(id=new_id(), vm_id=vm_id, path="z.js", order_index=0),
        StartupFile(id=new_id(), vm_id=vm_id, path="a.js", order_index=1),
    ]
    for capability in capabilities:
        runner.run(store.add_capability(capability))
    for startup_file in files:
        runner.run(store.add_startup_file(startup_file))

    detail = runner.run(store.get_template_detail(vm_id))

    assert detail is not None
    assert detail.settings == Settings(vm_id=vm_id)
    assert detail.capabilities == capabilities  # in the order they were added
    assert [f.path for f in detail.startup_files] == ["z.js", "a.js", "b.js"]
    assert runner.run(store.list_capabilities(vm_id)) == capabilities
    assert runner.run(store.list_startup_files(vm_id)) == detail.startup_files


def test_put_settings_replaces_them_and_bumps_updated_at(
    runner: asyncio.Runner, store: Store
) -> None:
    template = runner.run(given_template(store))
    settings = Settings(vm_id=template.id, limits=Limits(cpu_ms=7), runtime=Runtime(esm=True))

    runner.run(store.put_settings(settings))

    assert runner.run(store.get_settings(template.id)) == settings
    got = runner.run(store.get_template(template.id))
    assert got is not None and got.updated_at > template.updated_at


def test_put_settings_of_an_unknown_template_raises_not_found(
    runner: asyncio.Runner, store: Store
) -> None:
    with pytest.raises(RowNotFound) as caught:
        runner.run(store.put_settings(Settings(vm_id="nope")))
    assert (caught.value.resource, caught.value.id) == ("template", "nope")


def test_duplicate_capabilities_and_startup_paths_name_their_key(
    runner: asyncio.Runner, store: Store
) -> None:
    vm_id = runner.run(given_template(store)).id
    runner.run(store.add_capability(Capability(id=new_id(), vm_id=vm_id, kind="k", name="n")))
    runner.run(store.add_startup_file(StartupFile(id=new_id(), vm_id=vm_id, path="a.js")))

    with pytest.raises(Duplicate) as capability:
        runner.run(store.add_capability(Capability(id=new_id(), vm_id=vm_id, kind="k", name="n")))
    with pytest.raises(Duplicate) as startup_file:
        runner.run(store.add_startup_file(StartupFile(id=new_id(), vm_id=vm_id, path="a.js")))

    assert capability.value.key == {"kind": "k", "name": "n"}
    assert startup_file.value.key == {"path": "a.js"}
    assert len(runner.run(store.list_capabilities(vm_id))) == 1


def test_sub_resources_of_an_unknown_template_raise_not_found(
    runner: asyncio.Runner, store: Store
) -> None:
    vm_id = new_id()
    writes = [
        store.add_capability(Capability(id=new_id(), vm_id=vm_id, kind="k", name="n")),
        store.add_startup_file(StartupFile(id=new_id(), vm_id=vm_id, path="a.js")),
        store.add_module(vm_id, "fs"),
        store.add_library(vm_id, "lodash"),
    ]
    for write in writes:
        with pytest.raises(RowNotFound, match=f"template {vm_id} not found"):
            runner.run(write)
    assert runner.run(store.list_capabilities(vm_id)) == []
    assert runner.run(store.list_startup_files(vm_id)) == []


def test_modules_and_libraries_are_idempotent_and_removable(
    runner: asyncio.Runner, store: Store
) -> None:
    vm_id = runner.run(given_template(store)).id

    added = [runner.run(store.add_module(vm_id, "fs")) for _ in range(2)]
    added += [runner.run(store.add_library(vm_id, "lodash")) for _ in range(2)]
    assert added == [True, False, True, False]

    removed = [runner.run(store.remove_module(vm_id, "fs")) for _ in range(2)]
    removed += [runner.run(store.remove_library(vm_id, "lodash")) for _ in range(2)]
    assert removed == [True, False, True, False]

    got = runner.run(store.get_template(vm_id))
    assert got is not None and (got.exposed_modules, got.libraries) == ([], [])


def test_deleting_a_template_takes_its_sub_resources_with_it(
    runner: asyncio.Runner, store: Store, db_path: str
) -> None:
    template = a_template("gone")
    template.exposed_modules, template.libraries = ["fs"], ["lodash"]
    runner.run(store.create_template(template, Settings(vm_id=template.id)))
    kept = runner.run(given_template(store, "kept"))
    for vm_id in (template.id, kept.id):
        runner.run(store.add_capability(Capability(id=new_id(), vm_id=vm_id, kind="k", name="n")))
        runner.run(store.add_startup_file(StartupFile(id=new_id(), vm_id=vm_id, path="a.js")))

    assert runner.run(store.delete_template(template.id)) is True

    assert runner.run(store.get_template_detail(template.id)) is None
    tables = ("settings", "capabilities", "startup_files", "template_modules", "template_libraries")
    for table in tables:
        query = f"SELECT count(*) FROM {table} WHERE template_id = '{template.id}'"
        assert sql(db_path, query) == [(0,)]
    kept_detail = runner.run(store.get_template_detail(kept.id))
    assert kept_detail is not None and len(kept_detail.capabilities) == 1


def test_deleting_an_unknown_template_returns_false(runner: asyncio.Runner, store: Store) -> None:
    assert runner.run(store.delete_template(new_id())) is False


@pytest.mark.parametrize("status", ["starting", "ready", "crashed"])
def test_a_template_with_a_session_not_closed_is_in_use(
    runner: asyncio.Runner, store: Store, status: SessionStatus
) -> None:
    session = runner.run(given_session(store, status))

    with pytest.raises(TemplateInUse) as caught:
        runner.run(store.delete_template(session.vm_id))

    assert caught.value.session_ids == [session.id]
    assert runner.run(store.get_template(session.vm_id)) is not None


def test_a_template_whose_sessions_are_closed_can_go_and_they_stay(
    runner: asyncio.Runner, store: Store
) -> None:
    session = runner.run(given_session(store, "closed"))

    assert runner.run(store.delete_template(session.vm_id)) is True

    assert runner.run(store.get_session(session.id)) == session  # history outlives the template


# -- sessions


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


# -- threads, concurrency, lifetime


def test_many_tasks_can_use_the_store_at_once(runner: asyncio.Runner, store: Store) -> None:
    vm_id = runner.run(given_template(store)).id

    async def one_session() -> int:
        session = a_session(vm_id)
        await store.insert_session(session)
        execution = an_execution(session.id, status="ok")
        await store.finish_execution(execution, events(execution.id, range(1, 11)))
        got = await store.get_session(session.id)
        assert got == session
        return len(await store.list_events(execution.id))

    async def scenario() -> list[int]:
        return await asyncio.gather(*(one_session() for _ in range(100)))

    assert runner.run(scenario()) == [10] * 100
    assert len(runner.run(store.list_sessions("ready"))) == 100


def test_a_write_whose_caller_was_cancelled_is_still_done(
    runner: asyncio.Runner, store: Store
) -> None:
    session = runner.run(given_session(store))
    execution = an_execution(session.id, status="ok")

    async def scenario() -> list[dict[str, Any]]:
        loop_errors: list[dict[str, Any]] = []
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: loop_errors.append(ctx))
        finishing = asyncio.create_task(
            store.finish_execution(execution, events(execution.id, range(1, 1001)))
        )
        await asyncio.sleep(0)  # the task runs up to its await: the job is queued
        finishing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await finishing
        # The writer works in order: once a later write is done, the earlier one is too.
        await store.add_module(session.vm_id, "fs")
        return loop_errors

    assert runner.run(scenario()) == []  # settling the cancelled future did not fail
    assert runner.run(store.get_execution(execution.id)) == execution
    assert len(runner.run(store.list_events(execution.id))) == 1000


def test_the_event_loop_runs_while_a_large_write_is_done(
    runner: asyncio.Runner, store: Store
) -> None:
    session = runner.run(given_session(store))
    execution = an_execution(session.id, status="ok")
    flood = events(execution.id, range(1, 50_001))

    async def scenario() -> int:
        ticks = 0
        finishing = asyncio.create_task(store.finish_execution(execution, flood))
        while not finishing.done():
            ticks += 1
            await asyncio.sleep(0.001)
        await finishing
        return ticks

    # Had the write run on the loop, the ticker would have seen the task done at its second tick.
    assert runner.run(scenario()) > 2


def test_closing_finishes_the_writes_already_queued(runner: asyncio.Runner, db_path: str) -> None:
    async def scenario() -> tuple[str, list[bool]]:
        store = await open_store(db_path)
        vm_id = (await given_template(store)).id
        writes = [asyncio.create_task(store.add_module(vm_id, f"m{i}")) for i in range(20)]
        await asyncio.sleep(0)  # all twenty are queued
        await store.aclose()
        return vm_id, await asyncio.gather(*writes)

    vm_id, added = runner.run(scenario())

    assert added == [True] * 20
    assert len(sql(db_path, f"SELECT * FROM template_modules WHERE template_id = '{vm_id}'")) == 20


def test_a_closed_store_refuses_calls_and_closes_again_quietly(
    runner: asyncio.Runner, store: Store
) -> None:
    runner.run(store.aclose())
    runner.run(store.aclose())

    with pytest.raises(RuntimeError, match="the store is closed"):
        runner.run(store.list_templates())
    with pytest.raises(RuntimeError, match="the store is closed"):
        runner.run(store.add_module(new_id(), "fs"))
    assert "closed" in repr(store)
