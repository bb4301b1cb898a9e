"""The durable store: templates, sessions, executions and events in one SQLite file.

:class:`Store` methods take and return the Structs of
:mod:`vmctl.api.models`; the SQL they run is here and in
``rows.py``, the schema in ``schema.py``, and SQLite's errors leave the store
only as the domain errors of ``errors.py``.

Threads. SQLite calls block, so none runs on the event loop. One writer thread
owns the only connection that writes: each write method is one job on its queue
and one ``BEGIN IMMEDIATE`` ... ``COMMIT``, so writes happen one at a time in the
order they were called, and a job that fails rolls back whole. A reader thread
owns a second, read-only connection: in WAL mode a reader sees the last commit
and never waits for the writer, so ``get_session`` does not queue behind a
50,000-event commit. Each thread hands its results to the event loop through an
asyncio future (``thread.py``). A job whose caller stopped waiting (was
cancelled) still runs: a write, once handed over, is done, which is what a
shutdown that cancels requests wants for the final record of an execution.
Arguments are read on the store's thread, so callers must not change a Struct
they passed until the call returns.

Executions and events. They are written only through :attr:`Store.events`, the
event log (``eventlog.py``), and read back with :meth:`Store.get_execution`,
:meth:`Store.events_page` and :meth:`Store.events_after`.

Consistency. An event can only be committed in a transaction that sees its
execution's row (the foreign key sees to it), and the event log commits a final
row in the same transaction as the execution's last events, so a crash at any
point leaves an execution and its events consistent: at worst ``running``, which
``recover_abandoned`` closes at the next start.

Sub-resource writes (capabilities, startup files, modules, libraries, settings)
raise :class:`RowNotFound` when the template does not exist; their list methods
return ``[]`` for an unknown template, so callers check the template first.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from vmctl.api.models import (
    Capability,
    Execution,
    Session,
    Settings,
    StartupFile,
    Template,
    TemplateDetail,
)
from vmctl.supervisor.metrics import Metrics
from vmctl.supervisor.store import retention, rows, schema
from vmctl.supervisor.store.errors import (
    Duplicate,
    RowNotFound,
    TemplateInUse,
    TemplateNameTaken,
    as_store_error,
    constraints,
)
from vmctl.supervisor.store.eventlog import EventLog
from vmctl.supervisor.store.thread import ConnectionThread

log = logging.getLogger(__name__)

_T = TypeVar("_T")


class Store:
    """The daemon's records. Get one from :func:`open_store`; close it with :meth:`aclose`."""

    def __init__(
        self, path: str, writer: ConnectionThread, reader: ConnectionThread, metrics: Metrics
    ) -> None:
        self.path = path
        self._writer = writer
        self._reader = reader
        # Running executions' events, committed in groups on the writer (eventlog.py).
        self.events = EventLog(self._writer.run, metrics)

    def __repr__(self) -> str:
        return f"<Store {self.path!r}{' closed' if self._writer.stopping else ''}>"

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Commit the events still pending, finish the work already queued, close the
        connections, stop the threads. Idempotent."""
        try:
            await self.events.aclose()
        finally:
            # Both stop requests go in before the next await: even a cancelled aclose stops both.
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
            with constraints(unique={"templates.name": TemplateNameTaken(template.name)}):
                conn.execute(
                    f"INSERT INTO templates ({rows.TEMPLATE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        template.id,
                        template.name,
                        template.engine,
                        template.is_active,
                        template.created_at,
                        template.updated_at,
                    ),
                )
            rows.write_settings(conn, settings)
            for table, names in (
                ("template_modules", template.exposed_modules),
                ("template_libraries", template.libraries),
            ):
                conn.executemany(
                    f"INSERT OR IGNORE INTO {table} (template_id, name) VALUES (?, ?)",
                    [(template.id, name) for name in names],
                )

        await self._writer.run(write)

    async def list_templates(self) -> list[Template]:
        """Every template, newest first."""
        return await self._reader.run(rows.read_templates)

    async def get_template_detail(self, template_id: str) -> TemplateDetail | None:
        """The template with its settings, capabilities and startup files, read as one snapshot."""

        def read(conn: sqlite3.Connection) -> TemplateDetail | None:
            templates = rows.read_templates(conn, template_id)
            settings = rows.read_settings(conn, template_id)
            if not templates or settings is None:
                return None
            return TemplateDetail(
                template=templates[0],
                settings=settings,
                capabilities=rows.read_capabilities(conn, template_id),
                startup_files=rows.read_startup_files(conn, template_id),
            )

        return await self._reader.run(read)

    async def get_template_for_sessions(
        self, template_id: str
    ) -> tuple[Template, Settings | None, list[StartupFile]] | None:
        """The template, its settings (None when it has none stored) and its startup files,
        read as one snapshot."""

        def read(
            conn: sqlite3.Connection,
        ) -> tuple[Template, Settings | None, list[StartupFile]] | None:
            templates = rows.read_templates(conn, template_id)
            if not templates:
                return None
            settings = rows.read_settings(conn, template_id)
            return templates[0], settings, rows.read_startup_files(conn, template_id)

        return await self._reader.run(read)

    async def put_settings(self, settings: Settings) -> None:
        """Replace the template's settings and bump its updated_at. Raises RowNotFound."""

        def write(conn: sqlite3.Connection) -> None:
            rows.write_settings(conn, settings)
            rows.touch(conn, settings.vm_id)

        await self._writer.run(write)

    async def delete_template(self, template_id: str) -> bool:
        """Delete a template and its sub-resources; False if there was none.

        Raises TemplateInUse if a session of it is not closed. The check and the
        delete are one transaction, and ``insert_session`` checks the template
        in its own, so a session cannot slip in between.
        """

        def write(conn: sqlite3.Connection) -> bool:
            in_use = conn.execute(
                "SELECT id FROM sessions WHERE template_id = ? AND status != 'closed' ORDER BY id",
                (template_id,),
            ).fetchall()
            if in_use:
                raise TemplateInUse(template_id, [session_id for (session_id,) in in_use])
            return conn.execute("DELETE FROM templates WHERE id = ?", (template_id,)).rowcount > 0

        return await self._writer.run(write)

    # -- template sub-resources

    async def add_capability(self, capability: Capability) -> None:
        """Raises Duplicate (kind, name) or RowNotFound (template)."""
        c = capability
        duplicate = Duplicate("capability", {"kind": c.kind, "name": c.name})

        def write(conn: sqlite3.Connection) -> None:
            with constraints(
                missing=RowNotFound("template", c.vm_id),
                unique={
                    "capabilities.template_id, capabilities.kind, capabilities.name": duplicate
                },
            ):
                conn.execute(
                    "INSERT INTO capabilities (id, template_id, kind, name, enabled, config)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (c.id, c.vm_id, c.kind, c.name, c.enabled, rows.to_json(c.config)),
                )
            rows.touch(conn, c.vm_id)

        await self._writer.run(write)

    async def list_capabilities(self, template_id: str) -> list[Capability]:
        """In the order they were added."""
        return await self._reader.run(
            functools.partial(rows.read_capabilities, template_id=template_id)
        )

    async def add_startup_file(self, startup_file: StartupFile) -> None:
        """Raises Duplicate (path) or RowNotFound (template)."""
        f = startup_file
        duplicate = Duplicate("startup file", {"path": f.path})

        def write(conn: sqlite3.Connection) -> None:
            with constraints(
                missing=RowNotFound("template", f.vm_id),
                unique={"startup_files.template_id, startup_files.path": duplicate},
            ):
                conn.execute(
                    "INSERT INTO startup_files (id, template_id, path, order_index, mode)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (f.id, f.vm_id, f.path, f.order_index, f.mode),
                )
            rows.touch(conn, f.vm_id)

        await self._writer.run(write)

    async def list_startup_files(self, template_id: str) -> list[StartupFile]:
        """By order_index, then path."""
        return await self._reader.run(
            functools.partial(rows.read_startup_files, template_id=template_id)
        )

    async def add_module(self, template_id: str, name: str) -> bool:
        """Idempotent; True if it was not there yet. Raises RowNotFound (template)."""
        return await self._add_name("template_modules", template_id, name)

    async def remove_module(self, template_id: str, name: str) -> bool:
        """True if it was there."""
        return await self._remove_name("template_modules", template_id, name)

    async def add_library(self, template_id: str, name: str) -> bool:
        """Idempotent; True if it was not there yet. Raises RowNotFound (template)."""
        return await self._add_name("template_libraries", template_id, name)

    async def remove_library(self, template_id: str, name: str) -> bool:
        """True if it was there."""
        return await self._remove_name("template_libraries", template_id, name)

    async def _add_name(self, table: str, template_id: str, name: str) -> bool:
        def write(conn: sqlite3.Connection) -> bool:
            with constraints(missing=RowNotFound("template", template_id)):
                added = conn.execute(
                    f"INSERT INTO {table} (template_id, name) VALUES (?, ?) ON CONFLICT DO NOTHING",
                    (template_id, name),
                ).rowcount
            if added:
                rows.touch(conn, template_id)
            return added > 0

        return await self._writer.run(write)

    async def _remove_name(self, table: str, template_id: str, name: str) -> bool:
        def write(conn: sqlite3.Connection) -> bool:
            sql = f"DELETE FROM {table} WHERE template_id = ? AND name = ?"
            removed = conn.execute(sql, (template_id, name)).rowcount
            if removed:
                rows.touch(conn, template_id)
            return removed > 0

        return await self._writer.run(write)

    # -- sessions

    async def insert_session(self, session: Session) -> None:
        """Raises RowNotFound if its template does not exist (checked in the same transaction)."""

        def write(conn: sqlite3.Connection) -> None:
            inserted = conn.execute(
                f"{rows.SESSION_INSERT} WHERE EXISTS (SELECT 1 FROM templates WHERE id = ?)",
                (*rows.session_row(session), session.vm_id),
            ).rowcount
            if not inserted:
                raise RowNotFound("template", session.vm_id)

        await self._writer.run(write)

    async def update_session(self, session: Session) -> None:
        """Replace the session's row with this one (matched by id). Raises RowNotFound."""
        columns = rows.SESSION_COLUMNS.split(", ")[1:]
        sql = f"UPDATE sessions SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?"

        def write(conn: sqlite3.Connection) -> None:
            id, *values = rows.session_row(session)
            if not conn.execute(sql, (*values, id)).rowcount:
                raise RowNotFound("session", session.id)

        await self._writer.run(write)

    async def get_session(self, session_id: str) -> Session | None:
        sql = f"SELECT {rows.SESSION_COLUMNS} FROM sessions WHERE id = ?"
        return await self._read_one(rows.session_of, sql, (session_id,))

    async def list_sessions(self, status: str | None = None) -> list[Session]:
        """Newest first, all of them or those with this status."""
        where, params = ("WHERE status = ?", (status,)) if status is not None else ("", ())
        sql = (
            f"SELECT {rows.SESSION_COLUMNS} FROM sessions {where}"
            f" ORDER BY created_at DESC, {rows.NEWEST_FIRST}"
        )
        return await self._read_all(rows.session_of, sql, params)

    async def count_sessions(self) -> dict[str, int]:
        """How many sessions there are of each status (a status with none is left out)."""
        sql = "SELECT status, COUNT(*) FROM sessions GROUP BY status"
        counts = await self._read_all(tuple, sql, ())
        return {status: count for status, count in counts}

    # -- executions and events

    async def get_execution(self, execution_id: str) -> Execution | None:
        sql = f"SELECT {rows.EXECUTION_COLUMNS} FROM executions WHERE id = ?"
        return await self._read_one(rows.execution_of, sql, (execution_id,))

    async def list_executions(self, session_id: str, limit: int = 50) -> list[Execution]:
        """The session's latest executions, newest first."""
        sql = (
            f"SELECT {rows.EXECUTION_COLUMNS} FROM executions WHERE session_id = ?"
            f" ORDER BY started_at DESC, {rows.NEWEST_FIRST} LIMIT ?"
        )
        return await self._read_all(rows.execution_of, sql, (session_id, limit))

    async def replay_page(
        self, session_id: str, since: str, after: tuple[str, int] | None, limit: int
    ) -> rows.ReplayPage:
        """The session's executions that ended ``ok`` and started at ``since`` or later,
        oldest first, at most ``limit`` from ``after`` (the last page's ``after``)."""
        page = functools.partial(
            rows.replay_page, session_id=session_id, since=since, after=after, limit=limit
        )
        return await self._reader.run(page)

    async def events_page(self, execution_id: str, after_seq: int, limit: int) -> rows.EventPage:
        """At most ``limit`` events with seq > after_seq, as the API's JSON array (see
        :func:`rows.events_page`), and whether more follow them."""
        page = functools.partial(
            rows.events_page, execution_id=execution_id, after_seq=after_seq, limit=limit
        )
        return await self._reader.run(page)

    async def events_after(
        self, execution_id: str, after_seq: int, limit: int
    ) -> list[tuple[int, str, bytes]]:
        """At most ``limit`` events with seq > after_seq, each as (seq, type, its JSON)."""
        read = functools.partial(
            rows.events_after, execution_id=execution_id, after_seq=after_seq, limit=limit
        )
        return await self._reader.run(read)

    # -- retention

    async def prune(self, cutoff: str | None, keep: int | None) -> retention.Pruned:
        """Remove ended executions (and their events) ended before ``cutoff`` or beyond the
        newest ``keep``, and closed sessions left without any, in short steps; then give
        the freed pages back to the file system."""
        executions = events = sessions = 0
        while True:
            step = await self._writer.run(
                functools.partial(retention.prune_step, cutoff=cutoff, keep=keep)
            )
            executions += step.executions
            events += step.events
            sessions += step.sessions
            if step.executions < retention.EXECUTIONS_PER_STEP:
                break
        free = await self._writer.run(retention.vacuum_step)
        while free > 0 and executions:
            before, free = free, await self._writer.run(retention.vacuum_step)
            if free >= before:
                break
        return retention.Pruned(executions, events, sessions)

    # -- recovery

    async def recover_abandoned(self, reason: str) -> tuple[int, int]:
        """Close what a daemon that died left open; returns (sessions, executions) changed.

        Run at start, before any session exists: sessions ``starting``/``ready``
        become ``crashed`` with ``last_error=reason``; executions ``running``
        become ``cancelled`` with a final ``system`` event, in one transaction.
        """
        return await self._writer.run(functools.partial(rows.recover, reason=reason))


async def open_store(path: str, metrics: Metrics | None = None) -> Store:
    """Open (creating it and its directory if needed) and migrate the store at ``path``.

    Its group commits are timed in ``metrics`` (without, in a registry nobody reads).

    Raises StoreError if the file cannot be opened or has a newer schema than this vmctl knows.
    """
    writer = ConnectionThread(
        "vmctl-store-writer",
        functools.partial(schema.open_writer, path),
        "BEGIN IMMEDIATE",
        as_store_error,
    )
    reader = ConnectionThread(
        "vmctl-store-reader",
        functools.partial(schema.connect, path, read_only=True),
        "BEGIN",
        as_store_error,
    )
    store = Store(path, writer, reader, metrics or Metrics())
    try:
        await writer.start()
        await reader.start()  # after the writer: the file exists, is in WAL mode and migrated
    except BaseException:
        await store.aclose()
        raise
    return store
