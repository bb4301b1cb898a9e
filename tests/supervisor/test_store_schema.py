"""The store's file: opening it, its connections, its schema and migrations."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

import pytest

from supervisor.stores import (
    T0,
    a_session,
    given_template,
    sql,
)
from vmctl.supervisor.store import (
    Store,
    StoreError,
    open_store,
)
from vmctl.supervisor.store import schema as store_schema
from vmctl.supervisor.store.models import new_id


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
            assert await store.list_templates() == [template]

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
