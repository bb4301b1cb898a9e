"""The durable store: templates, sessions, executions and events in one SQLite file.

All of vmctl's SQL is in this module. :class:`Store` methods take and return the
Structs of :mod:`vmctl.supervisor.models`; SQLite's errors leave it only as the
domain errors below, so nothing above this module imports :mod:`sqlite3`.

Threads. SQLite calls block, so none runs on the event loop. One writer thread
owns the only connection that writes: each write method is one job on its queue
and one ``BEGIN IMMEDIATE`` ... ``COMMIT``, so writes happen one at a time in the
order they were called, and a job that fails rolls back whole. A reader thread
owns a second, read-only connection: in WAL mode a reader sees the last commit
and never waits for the writer, so ``get_session`` does not queue behind a
50,000-event commit. Each thread hands its results to the event loop through an
asyncio future. A job whose caller stopped waiting (was cancelled) still runs: a
write, once handed over, is done, which is what a shutdown that cancels requests
wants for the final record of an execution. Arguments are read on the store's
thread, so callers must not change a Struct they passed until the call returns.

Durability. WAL with ``synchronous=NORMAL``: a commit survives a crash of the
daemon; after a power cut the file is consistent but may lack the last commits.
An event can only be committed in a transaction that sees its execution's row
(the foreign key sees to it), and ``finish_execution`` writes the final row and
the remaining events in one transaction, so a crash at any point leaves an
execution and its events consistent: at worst ``running`` with the events
appended so far, which ``recover_abandoned`` closes at the next start.

Sub-resource writes (capabilities, startup files, modules, libraries, settings)
raise :class:`NotFound` when the template does not exist; their list methods
return ``[]`` for an unknown template, so callers check the template first.

Errors::

    StoreError              the store could not do it (SQLite's message inside)
    ├── NotFound            the template / session / execution referred to does not exist
    ├── TemplateNameTaken   another template has that name
    ├── TemplateInUse       a session of the template is not closed
    └── Duplicate           a unique key (capability kind+name, startup file path, event seq)
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from vmctl.supervisor.models import (
    Capability,
    Event,
    Execution,
    ExecutionMetrics,
    Limits,
    Resolver,
    Runtime,
    Session,
    Settings,
    StartupFile,
    Template,
    TemplateDetail,
    utc_now,
)
from vmctl.supervisor.sqlite_thread import ConnectionThread, transaction

__all__ = [
    "Duplicate",
    "NotFound",
    "Store",
    "StoreError",
    "TemplateInUse",
    "TemplateNameTaken",
    "open_store",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

BUSY_TIMEOUT_MS = 5000  # another process holding the write lock (a second daemon, sqlite3 CLI)


# -- errors --------------------------------------------------------------------------------------


class StoreError(Exception):
    """The store could not do what was asked."""


class NotFound(StoreError):
    def __init__(self, resource: str, id: str) -> None:
        super().__init__(f"{resource} {id} not found")
        self.resource = resource
        self.id = id


class TemplateNameTaken(StoreError):
    def __init__(self, name: str) -> None:
        super().__init__(f"a template named {name!r} already exists")
        self.name = name


class TemplateInUse(StoreError):
    def __init__(self, template_id: str, session_ids: list[str]) -> None:
        super().__init__(f"template {template_id} is used by sessions not closed: {session_ids}")
        self.template_id = template_id
        self.session_ids = session_ids


class Duplicate(StoreError):
    """A row with the same unique key exists; ``key`` maps each key field to the value given."""

    def __init__(self, resource: str, key: Mapping[str, object], message: str = "") -> None:
        described = ", ".join(f"{field}={value!r}" for field, value in key.items())
        super().__init__(message or f"{resource} with {described} already exists")
        self.resource = resource
        self.key = dict(key)

    @property
    def field(self) -> str:
        return ", ".join(self.key)


@contextlib.contextmanager
def _constraints(
    missing: StoreError | None = None, unique: Mapping[str, StoreError] | None = None
) -> Iterator[None]:
    """Turn constraint failures in the block into domain errors.

    ``missing`` is raised for a failed foreign key (the parent row is gone);
    ``unique`` maps SQLite's ``table.column, ...`` of a failed unique key to its error.
    """
    try:
        yield
    except sqlite3.IntegrityError as exc:
        message = str(exc)
        columns = message.removeprefix("UNIQUE constraint failed: ")
        if missing is not None and message == "FOREIGN KEY constraint failed":
            raise missing from exc
        if unique is not None and columns in unique:
            raise unique[columns] from exc
        raise


def _as_store_error(exc: Exception) -> Exception:
    """What a caller sees of an exception raised on a store thread."""
    if isinstance(exc, sqlite3.Error):
        error = StoreError(f"{type(exc).__name__}: {exc}")
        error.__cause__ = exc
        return error
    return exc


# -- schema --------------------------------------------------------------------------------------

# Migration n brings user_version from n-1 to n; each runs in its own transaction.
# Append new migrations; never edit one that has shipped.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE templates (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            engine TEXT NOT NULL,
            is_active INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL)""",
        """CREATE TABLE settings (
            vm_id TEXT PRIMARY KEY REFERENCES templates (id) ON DELETE CASCADE,
            limits TEXT NOT NULL,
            resolver TEXT NOT NULL,
            runtime TEXT NOT NULL) WITHOUT ROWID""",
        """CREATE TABLE capabilities (
            id TEXT PRIMARY KEY,
            vm_id TEXT NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            name TEXT NOT NULL,
            enabled INTEGER NOT NULL,
            config TEXT NOT NULL,
            UNIQUE (vm_id, kind, name))""",
        """CREATE TABLE startup_files (
            id TEXT PRIMARY KEY,
            vm_id TEXT NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
            path TEXT NOT NULL,
            order_index INTEGER NOT NULL,
            mode TEXT NOT NULL,
            UNIQUE (vm_id, path))""",
        """CREATE TABLE template_modules (
            vm_id TEXT NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            PRIMARY KEY (vm_id, name)) WITHOUT ROWID""",
        """CREATE TABLE template_libraries (
            vm_id TEXT NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            PRIMARY KEY (vm_id, name)) WITHOUT ROWID""",
        # No foreign key on vm_id: sessions outlive their template as history.
        """CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            vm_id TEXT NOT NULL,
            workspace_id TEXT NOT NULL,
            base_commit_oid TEXT NOT NULL,
            worktree_path TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at TEXT NOT NULL,
            closed_at TEXT,
            last_error TEXT,
            runtime_meta TEXT)""",
        "CREATE INDEX sessions_by_created ON sessions (created_at)",
        "CREATE INDEX sessions_by_status ON sessions (status, created_at)",
        "CREATE INDEX sessions_by_template ON sessions (vm_id, status)",
        """CREATE TABLE executions (
            id TEXT PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES sessions (id),
            kind TEXT NOT NULL,
            input TEXT,
            path TEXT,
            args TEXT NOT NULL,
            env TEXT NOT NULL,
            status TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at TEXT,
            result TEXT,
            error TEXT,
            metrics TEXT NOT NULL)""",
        "CREATE INDEX executions_by_session ON executions (session_id, started_at)",
        # Small by construction (only live executions), for recovery at start.
        "CREATE INDEX executions_running ON executions (id) WHERE status = 'running'",
        # Clustered on (execution_id, seq): a range read is one sequential scan.
        """CREATE TABLE events (
            execution_id TEXT NOT NULL REFERENCES executions (id),
            seq INTEGER NOT NULL,
            ts TEXT NOT NULL,
            type TEXT NOT NULL,
            payload TEXT NOT NULL,
            PRIMARY KEY (execution_id, seq)) WITHOUT ROWID""",
    ),
)

SCHEMA_VERSION = len(_MIGRATIONS)


def _user_version(conn: sqlite3.Connection) -> int:
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


def _migrate(conn: sqlite3.Connection) -> None:
    found = _user_version(conn)
    if found > SCHEMA_VERSION:
        raise StoreError(
            f"the database has schema version {found}, newer than this vmctl knows"
            f" ({SCHEMA_VERSION}); run a newer vmctl or use another database file"
        )
    for version, statements in enumerate(_MIGRATIONS, start=1):
        with transaction(conn):
            # Read again under the write lock: another process may have migrated meanwhile.
            if _user_version(conn) >= version:
                continue
            for statement in statements:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")


def _connect(path: str, *, read_only: bool) -> sqlite3.Connection:
    # isolation_level=None: no implicit BEGIN/COMMIT; transaction() says when.
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise StoreError(f"{path}: cannot use WAL journal mode (got {mode!r})")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        if read_only:
            conn.execute("PRAGMA query_only = ON")
    except BaseException:
        conn.close()
        raise
    return conn


def _open_writer(path: str) -> sqlite3.Connection:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = _connect(path, read_only=False)
    try:
        _migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


# -- rows <-> Structs ----------------------------------------------------------------------------

_encoder = msgspec.json.Encoder()
_decode_object = msgspec.json.Decoder(dict[str, Any]).decode
_decode_limits = msgspec.json.Decoder(Limits).decode
_decode_resolver = msgspec.json.Decoder(Resolver).decode
_decode_runtime = msgspec.json.Decoder(Runtime).decode
_decode_metrics = msgspec.json.Decoder(ExecutionMetrics).decode


def _json(value: object) -> str:
    return _encoder.encode(value).decode()


def _json_or_none(value: object | None) -> str | None:
    return None if value is None else _json(value)


def _object_or_none(text: str | None) -> dict[str, Any] | None:
    return None if text is None else _decode_object(text)


_TEMPLATE_COLUMNS = "id, name, engine, is_active, created_at, updated_at"
_SESSION_COLUMNS = (
    "id, vm_id, workspace_id, base_commit_oid, worktree_path, status, created_at, closed_at,"
    " last_error, runtime_meta"
)
_EXECUTION_COLUMNS = (
    "id, session_id, kind, input, path, args, env, status, started_at, ended_at, result, error,"
    " metrics"
)
_SESSION_INSERT = f"INSERT INTO sessions ({_SESSION_COLUMNS}) SELECT {', '.join('?' * 10)}"
_EXECUTION_INSERT = f"INSERT INTO executions ({_EXECUTION_COLUMNS}) VALUES ({', '.join('?' * 13)})"
_EVENT_INSERT = "INSERT INTO events (execution_id, seq, ts, type, payload) VALUES (?, ?, ?, ?, ?)"
_NEWEST_FIRST = "rowid DESC"  # after the timestamp: rows made in the same millisecond


def _session_row(s: Session) -> tuple[Any, ...]:
    return (
        s.id, s.vm_id, s.workspace_id, s.base_commit_oid, s.worktree_path, s.status,
        s.created_at, s.closed_at, s.last_error, _json_or_none(s.runtime_meta),
    )  # fmt: skip


def _session(row: Sequence[Any]) -> Session:
    (id, vm_id, workspace_id, base_commit_oid, worktree_path, status, created_at, closed_at,
     last_error, runtime_meta) = row  # fmt: skip
    return Session(
        id=id, vm_id=vm_id, workspace_id=workspace_id, base_commit_oid=base_commit_oid,
        worktree_path=worktree_path, status=status, created_at=created_at, closed_at=closed_at,
        last_error=last_error, runtime_meta=_object_or_none(runtime_meta),
    )  # fmt: skip


def _execution_row(e: Execution) -> tuple[Any, ...]:
    return (
        e.id, e.session_id, e.kind, e.input, e.path, _json(e.args), _json(e.env), e.status,
        e.started_at, e.ended_at, _json_or_none(e.result), _json_or_none(e.error),
        _json(e.metrics),
    )  # fmt: skip


def _execution(row: Sequence[Any]) -> Execution:
    (id, session_id, kind, input, path, args, env, status, started_at, ended_at, result, error,
     metrics) = row  # fmt: skip
    return Execution(
        id=id, session_id=session_id, kind=kind, input=input, path=path,
        args=_decode_object(args), env=_decode_object(env), status=status,
        started_at=started_at, ended_at=ended_at, result=_object_or_none(result),
        error=_object_or_none(error), metrics=_decode_metrics(metrics),
    )  # fmt: skip


def _event_rows(execution_id: str, events: Sequence[Event]) -> Iterator[tuple[Any, ...]]:
    for e in events:
        if e.execution_id != execution_id:
            raise ValueError(f"event {e.seq} belongs to execution {e.execution_id}")
        yield (e.execution_id, e.seq, e.ts, e.type, _json(e.payload))


def _event(row: Sequence[Any]) -> Event:
    execution_id, seq, ts, type, payload = row
    payload = _decode_object(payload)
    return Event(execution_id=execution_id, seq=seq, ts=ts, type=type, payload=payload)


def _settings(row: Sequence[Any]) -> Settings:
    vm_id, limits, resolver, runtime = row
    return Settings(
        vm_id=vm_id,
        limits=_decode_limits(limits),
        resolver=_decode_resolver(resolver),
        runtime=_decode_runtime(runtime),
    )


def _names(conn: sqlite3.Connection, table: str, vm_id: str | None) -> dict[str, list[str]]:
    """The module or library names of one template (or all), sorted, by template id."""
    where, params = ("WHERE vm_id = ?", (vm_id,)) if vm_id is not None else ("", ())
    names: dict[str, list[str]] = {}
    for template_id, name in conn.execute(
        f"SELECT vm_id, name FROM {table} {where} ORDER BY vm_id, name", params
    ):
        names.setdefault(template_id, []).append(name)
    return names


def _templates(conn: sqlite3.Connection, vm_id: str | None = None) -> list[Template]:
    where, params = ("WHERE id = ?", (vm_id,)) if vm_id is not None else ("", ())
    rows = conn.execute(
        f"SELECT {_TEMPLATE_COLUMNS} FROM templates {where}"
        f" ORDER BY created_at DESC, {_NEWEST_FIRST}",
        params,
    ).fetchall()
    modules = _names(conn, "template_modules", vm_id)
    libraries = _names(conn, "template_libraries", vm_id)
    return [
        Template(
            id=id,
            name=name,
            engine=engine,
            is_active=bool(is_active),
            created_at=created_at,
            updated_at=updated_at,
            exposed_modules=modules.get(id, []),
            libraries=libraries.get(id, []),
        )
        for id, name, engine, is_active, created_at, updated_at in rows
    ]


def _capabilities(conn: sqlite3.Connection, vm_id: str) -> list[Capability]:
    rows = conn.execute(
        "SELECT id, vm_id, kind, name, enabled, config FROM capabilities"
        " WHERE vm_id = ? ORDER BY rowid",
        (vm_id,),
    )
    return [
        Capability(
            id=id,
            vm_id=vm_id,
            kind=kind,
            name=name,
            enabled=bool(enabled),
            config=_decode_object(config),
        )
        for id, vm_id, kind, name, enabled, config in rows
    ]


def _startup_files(conn: sqlite3.Connection, vm_id: str) -> list[StartupFile]:
    rows = conn.execute(
        "SELECT id, vm_id, path, order_index, mode FROM startup_files"
        " WHERE vm_id = ? ORDER BY order_index, path",
        (vm_id,),
    )
    return [StartupFile(*row) for row in rows]


def _touch(conn: sqlite3.Connection, vm_id: str) -> None:
    conn.execute("UPDATE templates SET updated_at = ? WHERE id = ?", (utc_now(), vm_id))


def _get_settings(conn: sqlite3.Connection, vm_id: str) -> Settings | None:
    row = conn.execute(
        "SELECT vm_id, limits, resolver, runtime FROM settings WHERE vm_id = ?", (vm_id,)
    ).fetchone()
    return None if row is None else _settings(row)


def _write_settings(conn: sqlite3.Connection, s: Settings) -> None:
    with _constraints(missing=NotFound("template", s.vm_id)):
        conn.execute(
            "INSERT INTO settings (vm_id, limits, resolver, runtime) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (vm_id) DO UPDATE SET limits = excluded.limits,"
            " resolver = excluded.resolver, runtime = excluded.runtime",
            (s.vm_id, _json(s.limits), _json(s.resolver), _json(s.runtime)),
        )


# -- the store -----------------------------------------------------------------------------------


class Store:
    """The daemon's records. Get one from :func:`open_store`; close it with :meth:`aclose`."""

    def __init__(self, path: str, writer: ConnectionThread, reader: ConnectionThread) -> None:
        self.path = path
        self._writer = writer
        self._reader = reader

    def __repr__(self) -> str:
        return f"<Store {self.path!r}{' closed' if self._writer.stopping else ''}>"

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Finish the work already queued, close the connections, stop the threads. Idempotent."""
        # Both stop requests go in before the first await, so even a cancelled aclose stops both.
        self._writer.stop()
        self._reader.stop()
        await self._writer.wait_stopped()
        await self._reader.wait_stopped()

    async def _read_one(
        self, convert: Callable[[Sequence[Any]], _T], sql: str, params: Sequence[object]
    ) -> _T | None:
        def read(conn: sqlite3.Connection) -> _T | None:
            row = conn.execute(sql, params).fetchone()
            return None if row is None else convert(row)

        return await self._reader.run(read)

    async def _read_all(
        self, convert: Callable[[Sequence[Any]], _T], sql: str, params: Sequence[object]
    ) -> list[_T]:
        def read(conn: sqlite3.Connection) -> list[_T]:
            return [convert(row) for row in conn.execute(sql, params)]

        return await self._reader.run(read)

    # -- templates

    async def create_template(self, template: Template, settings: Settings) -> None:
        """Insert a template with its settings, modules and libraries. Raises TemplateNameTaken."""
        if settings.vm_id != template.id:
            raise ValueError("settings.vm_id must be the template's id")

        def write(conn: sqlite3.Connection) -> None:
            with _constraints(unique={"templates.name": TemplateNameTaken(template.name)}):
                conn.execute(
                    f"INSERT INTO templates ({_TEMPLATE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        template.id,
                        template.name,
                        template.engine,
                        template.is_active,
                        template.created_at,
                        template.updated_at,
                    ),
                )
            _write_settings(conn, settings)
            for table, names in (
                ("template_modules", template.exposed_modules),
                ("template_libraries", template.libraries),
            ):
                conn.executemany(
                    f"INSERT OR IGNORE INTO {table} (vm_id, name) VALUES (?, ?)",
                    [(template.id, name) for name in names],
                )

        await self._writer.run(write)

    async def list_templates(self) -> list[Template]:
        """Every template, newest first."""
        return await self._reader.run(_templates)

    async def get_template(self, vm_id: str) -> Template | None:
        templates = await self._reader.run(functools.partial(_templates, vm_id=vm_id))
        return templates[0] if templates else None

    async def get_template_detail(self, vm_id: str) -> TemplateDetail | None:
        """The template with its settings, capabilities and startup files, read as one snapshot."""

        def read(conn: sqlite3.Connection) -> TemplateDetail | None:
            templates = _templates(conn, vm_id)
            settings = _get_settings(conn, vm_id)
            if not templates or settings is None:
                return None
            return TemplateDetail(
                template=templates[0],
                settings=settings,
                capabilities=_capabilities(conn, vm_id),
                startup_files=_startup_files(conn, vm_id),
            )

        return await self._reader.run(read)

    async def get_settings(self, vm_id: str) -> Settings | None:
        return await self._reader.run(functools.partial(_get_settings, vm_id=vm_id))

    async def put_settings(self, settings: Settings) -> None:
        """Replace the template's settings and bump its updated_at. Raises NotFound."""

        def write(conn: sqlite3.Connection) -> None:
            _write_settings(conn, settings)
            _touch(conn, settings.vm_id)

        await self._writer.run(write)

    async def delete_template(self, vm_id: str) -> bool:
        """Delete a template and its sub-resources; False if there was none.

        Raises TemplateInUse if a session of it is not closed. The check and the
        delete are one transaction, and ``insert_session`` checks the template
        in its own, so a session cannot slip in between.
        """

        def write(conn: sqlite3.Connection) -> bool:
            in_use = conn.execute(
                "SELECT id FROM sessions WHERE vm_id = ? AND status != 'closed' ORDER BY id",
                (vm_id,),
            ).fetchall()
            if in_use:
                raise TemplateInUse(vm_id, [session_id for (session_id,) in in_use])
            return conn.execute("DELETE FROM templates WHERE id = ?", (vm_id,)).rowcount > 0

        return await self._writer.run(write)

    # -- template sub-resources

    async def add_capability(self, capability: Capability) -> None:
        """Raises Duplicate (kind, name) or NotFound (template)."""
        c = capability
        duplicate = Duplicate("capability", {"kind": c.kind, "name": c.name})

        def write(conn: sqlite3.Connection) -> None:
            with _constraints(
                missing=NotFound("template", c.vm_id),
                unique={"capabilities.vm_id, capabilities.kind, capabilities.name": duplicate},
            ):
                conn.execute(
                    "INSERT INTO capabilities (id, vm_id, kind, name, enabled, config)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (c.id, c.vm_id, c.kind, c.name, c.enabled, _json(c.config)),
                )
            _touch(conn, c.vm_id)

        await self._writer.run(write)

    async def list_capabilities(self, vm_id: str) -> list[Capability]:
        """In the order they were added."""
        return await self._reader.run(functools.partial(_capabilities, vm_id=vm_id))

    async def add_startup_file(self, startup_file: StartupFile) -> None:
        """Raises Duplicate (path) or NotFound (template)."""
        f = startup_file
        duplicate = Duplicate("startup file", {"path": f.path})

        def write(conn: sqlite3.Connection) -> None:
            with _constraints(
                missing=NotFound("template", f.vm_id),
                unique={"startup_files.vm_id, startup_files.path": duplicate},
            ):
                conn.execute(
                    "INSERT INTO startup_files (id, vm_id, path, order_index, mode)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (f.id, f.vm_id, f.path, f.order_index, f.mode),
                )
            _touch(conn, f.vm_id)

        await self._writer.run(write)

    async def list_startup_files(self, vm_id: str) -> list[StartupFile]:
        """By order_index, then path."""
        return await self._reader.run(functools.partial(_startup_files, vm_id=vm_id))

    async def add_module(self, vm_id: str, name: str) -> bool:
        """Idempotent; True if it was not there yet. Raises NotFound (template)."""
        return await self._add_name("template_modules", vm_id, name)

    async def remove_module(self, vm_id: str, name: str) -> bool:
        """True if it was there."""
        return await self._remove_name("template_modules", vm_id, name)

    async def add_library(self, vm_id: str, name: str) -> bool:
        """Idempotent; True if it was not there yet. Raises NotFound (template)."""
        return await self._add_name("template_libraries", vm_id, name)

    async def remove_library(self, vm_id: str, name: str) -> bool:
        """True if it was there."""
        return await self._remove_name("template_libraries", vm_id, name)

    async def _add_name(self, table: str, vm_id: str, name: str) -> bool:
        def write(conn: sqlite3.Connection) -> bool:
            with _constraints(missing=NotFound("template", vm_id)):
                added = conn.execute(
                    f"INSERT INTO {table} (vm_id, name) VALUES (?, ?) ON CONFLICT DO NOTHING",
                    (vm_id, name),
                ).rowcount
            if added:
                _touch(conn, vm_id)
            return added > 0

        return await self._writer.run(write)

    async def _remove_name(self, table: str, vm_id: str, name: str) -> bool:
        def write(conn: sqlite3.Connection) -> bool:
            sql = f"DELETE FROM {table} WHERE vm_id = ? AND name = ?"
            removed = conn.execute(sql, (vm_id, name)).rowcount
            if removed:
                _touch(conn, vm_id)
            return removed > 0

        return await self._writer.run(write)

    # -- sessions

    async def insert_session(self, session: Session) -> None:
        """Raises NotFound if its template does not exist (checked in the same transaction)."""

        def write(conn: sqlite3.Connection) -> None:
            inserted = conn.execute(
                f"{_SESSION_INSERT} WHERE EXISTS (SELECT 1 FROM templates WHERE id = ?)",
                (*_session_row(session), session.vm_id),
            ).rowcount
            if not inserted:
                raise NotFound("template", session.vm_id)

        await self._writer.run(write)

    async def update_session(self, session: Session) -> None:
        """Replace the session's row with this one (matched by id). Raises NotFound."""
        columns = _SESSION_COLUMNS.split(", ")[1:]
        sql = f"UPDATE sessions SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?"

        def write(conn: sqlite3.Connection) -> None:
            id, *values = _session_row(session)
            if not conn.execute(sql, (*values, id)).rowcount:
                raise NotFound("session", session.id)

        await self._writer.run(write)

    async def get_session(self, session_id: str) -> Session | None:
        sql = f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE id = ?"
        return await self._read_one(_session, sql, (session_id,))

    async def list_sessions(self, status: str | None = None) -> list[Session]:
        """Newest first, all of them or those with this status."""
        where, params = ("WHERE status = ?", (status,)) if status is not None else ("", ())
        sql = (
            f"SELECT {_SESSION_COLUMNS} FROM sessions {where}"
            f" ORDER BY created_at DESC, {_NEWEST_FIRST}"
        )
        return await self._read_all(_session, sql, params)

    # -- executions and events

    async def insert_execution(self, execution: Execution) -> None:
        """Record an execution as it starts. Raises NotFound (session)."""

        def write(conn: sqlite3.Connection) -> None:
            with _constraints(missing=NotFound("session", execution.session_id)):
                conn.execute(_EXECUTION_INSERT, _execution_row(execution))

        await self._writer.run(write)

    async def append_events(self, execution_id: str, events: Sequence[Event]) -> None:
        """Add events of a running execution in one transaction.

        Raises NotFound (execution) or Duplicate (seq); either way none is written.
        """

        def write(conn: sqlite3.Connection) -> None:
            _insert_events(conn, execution_id, events)

        await self._writer.run(write)

    async def finish_execution(self, execution: Execution, events: Sequence[Event] = ()) -> None:
        """Write the execution's final row and its events not yet appended, in one transaction.

        The row is inserted if ``insert_execution`` never was (an execution
        refused before it ran), else replaced. If the events cannot be written
        (Duplicate), neither is the row.
        """
        columns = _EXECUTION_COLUMNS.split(", ")[1:]
        upsert = f"{_EXECUTION_INSERT} ON CONFLICT (id) DO UPDATE SET " + ", ".join(
            f"{c} = excluded.{c}" for c in columns
        )

        def write(conn: sqlite3.Connection) -> None:
            with _constraints(missing=NotFound("session", execution.session_id)):
                conn.execute(upsert, _execution_row(execution))
            _insert_events(conn, execution.id, events)

        await self._writer.run(write)

    async def get_execution(self, execution_id: str) -> Execution | None:
        sql = f"SELECT {_EXECUTION_COLUMNS} FROM executions WHERE id = ?"
        return await self._read_one(_execution, sql, (execution_id,))

    async def list_executions(self, session_id: str, limit: int = 50) -> list[Execution]:
        """The session's latest executions, newest first."""
        sql = (
            f"SELECT {_EXECUTION_COLUMNS} FROM executions WHERE session_id = ?"
            f" ORDER BY started_at DESC, {_NEWEST_FIRST} LIMIT ?"
        )
        return await self._read_all(_execution, sql, (session_id, limit))

    async def list_events(self, execution_id: str, after_seq: int = 0) -> list[Event]:
        """The execution's events with seq > after_seq, ascending."""
        sql = (
            "SELECT execution_id, seq, ts, type, payload FROM events"
            " WHERE execution_id = ? AND seq > ? ORDER BY seq"
        )
        return await self._read_all(_event, sql, (execution_id, after_seq))

    # -- recovery

    async def recover_abandoned(self, reason: str) -> tuple[int, int]:
        """Close what a daemon that died left open; returns (sessions, executions) changed.

        Run at start, before any session exists: sessions ``starting``/``ready``
        become ``crashed`` with ``last_error=reason``; executions ``running``
        become ``cancelled`` with a final ``system`` event, in one transaction.
        """
        return await self._writer.run(functools.partial(_recover, reason=reason))


def _insert_events(conn: sqlite3.Connection, execution_id: str, events: Sequence[Event]) -> None:
    # SQLite does not say which row of the batch clashed, hence no seq value.
    duplicate = Duplicate(
        "event", {"seq": None}, f"execution {execution_id} already has an event with a seq given"
    )
    with _constraints(
        missing=NotFound("execution", execution_id),
        unique={"events.execution_id, events.seq": duplicate},
    ):
        conn.executemany(_EVENT_INSERT, _event_rows(execution_id, events))


def _recover(conn: sqlite3.Connection, reason: str) -> tuple[int, int]:
    now = utc_now()
    sessions = conn.execute(
        "UPDATE sessions SET status = 'crashed', last_error = ?"
        " WHERE status IN ('starting', 'ready')",
        (reason,),
    ).rowcount
    running = conn.execute("SELECT id, metrics FROM executions WHERE status = 'running'").fetchall()
    error = _json({"code": "CANCELLED", "message": reason})
    payload = _json({"level": "error", "message": reason})
    for execution_id, metrics in running:
        (seq,) = conn.execute(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE execution_id = ?", (execution_id,)
        ).fetchone()
        conn.execute(_EVENT_INSERT, (execution_id, seq, now, "system", payload))
        # seq has no gaps, so the last one is the number of events recorded, this one included.
        final_metrics = msgspec.structs.replace(_decode_metrics(metrics), events=seq)
        conn.execute(
            "UPDATE executions SET status = 'cancelled', ended_at = ?, error = ?, metrics = ?"
            " WHERE id = ?",
            (now, error, _json(final_metrics), execution_id),
        )
    return sessions, len(running)


async def open_store(path: str) -> Store:
    """Open (creating it and its directory if needed) and migrate the store at ``path``.

    Raises StoreError if the file cannot be opened or has a newer schema than this vmctl knows.
    """
    writer = ConnectionThread(
        "vmctl-store-writer",
        functools.partial(_open_writer, path),
        "BEGIN IMMEDIATE",
        _as_store_error,
    )
    reader = ConnectionThread(
        "vmctl-store-reader",
        functools.partial(_connect, path, read_only=True),
        "BEGIN",
        _as_store_error,
    )
    store = Store(path, writer, reader)
    try:
        await writer.start()
        await reader.start()  # after the writer: the file exists, is in WAL mode and migrated
    except BaseException:
        await store.aclose()
        raise
    return store
