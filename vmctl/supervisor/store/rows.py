"""Rows and Structs: how each object of the contract is written to and read from its table.

The functions here run on a store thread, inside the transaction of one job,
and take its connection; :class:`~vmctl.supervisor.store.store.Store` hands
them to its threads. JSON columns (settings, args, results, payloads) are
encoded and decoded with msgspec, once each way.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, NamedTuple

import msgspec

from vmctl.api.models import (
    MAX_JSON_DEPTH,
    Capability,
    Execution,
    ExecutionMetrics,
    Lifecycle,
    Limits,
    Resolver,
    Runtime,
    Session,
    Settings,
    StartupFile,
    Template,
)
from vmctl.json_depth import nests_deeper, too_few_brackets
from vmctl.supervisor.store.errors import RowNotFound, constraints
from vmctl.supervisor.store.models import utc_now

_encoder = msgspec.json.Encoder()
_decode_dict = msgspec.json.Decoder(dict[str, Any]).decode
_decode_limits = msgspec.json.Decoder(Limits).decode
_decode_resolver = msgspec.json.Decoder(Resolver).decode
_decode_runtime = msgspec.json.Decoder(Runtime).decode
_decode_lifecycle = msgspec.json.Decoder(Lifecycle).decode
decode_metrics = msgspec.json.Decoder(ExecutionMetrics).decode


def to_json(value: object) -> str:
    return _encoder.encode(value).decode()


def json_or_none(value: object | None) -> str | None:
    return None if value is None else to_json(value)


def object_or_none(text: str | None) -> dict[str, Any] | None:
    return None if text is None else decode_object(text)


# Deeper than anything this vmctl writes (request bodies and worker values nest at most
# MAX_JSON_DEPTH, inside a column's object) and far from the recursion limit of the
# encoders that send a record to a client: a row of another writer (an older vmctl, a hand
# edit) that nests deeper is clipped as it is read, so it cannot make a list fail.
CLIP_DEPTH = 2 * MAX_JSON_DEPTH
NESTED_TOO_DEEPLY = "[vmctl: nested too deeply]"
NOT_AN_OBJECT = "[vmctl: not a JSON object]"


def decode_object(text: str) -> dict[str, Any]:
    """A JSON object column, with whatever nests deeper than :data:`CLIP_DEPTH` replaced by
    :data:`NESTED_TOO_DEEPLY`."""
    # Fewer brackets than levels cannot nest too deep: the common case is one count away.
    if too_few_brackets(text, CLIP_DEPTH):
        return _decode_dict(text)
    try:
        value = _decode_dict(text)
    except RecursionError:
        return {"unreadable": NESTED_TOO_DEEPLY}
    return _clipped(value, CLIP_DEPTH) if nests_deeper(value, CLIP_DEPTH) else value


def _clipped(value: Any, levels: int) -> Any:
    """``value`` with the containers below ``levels`` levels replaced (recursion <= levels)."""
    if not isinstance(value, dict | list):
        return value
    if levels == 0:
        return NESTED_TOO_DEEPLY
    if isinstance(value, dict):
        return {key: _clipped(item, levels - 1) for key, item in value.items()}
    return [_clipped(item, levels - 1) for item in value]


TEMPLATE_COLUMNS = "id, name, engine, is_active, created_at, updated_at"
SESSION_COLUMNS = (
    "id, template_id, workspace_id, base_commit_oid, worktree_path, status, created_at, closed_at,"
    " last_error, runtime_meta"
)
EXECUTION_COLUMNS = (
    "id, session_id, kind, input, path, args, env, status, started_at, ended_at, result, error,"
    " metrics"
)
SESSION_INSERT = f"INSERT INTO sessions ({SESSION_COLUMNS}) SELECT {', '.join('?' * 10)}"
EXECUTION_INSERT = f"INSERT INTO executions ({EXECUTION_COLUMNS}) VALUES ({', '.join('?' * 13)})"
EVENT_INSERT = "INSERT INTO events (execution_id, seq, ts, type, payload) VALUES (?, ?, ?, ?, ?)"
# Events of one type and time from one JSON array of their payloads, numbered from the
# given seq: SQLite's json_each makes the rows, with each element's JSON text as it came.
EVENTS_INSERT = (
    "INSERT INTO events (execution_id, seq, ts, type, payload) "
    "SELECT ?1, ?2 + key, ?3, ?4, value FROM json_each(?5)"
)
NEWEST_FIRST = "rowid DESC"  # after the timestamp: rows made in the same millisecond


def session_row(s: Session) -> tuple[Any, ...]:
    return (
        s.id, s.vm_id, s.workspace_id, s.base_commit_oid, s.worktree_path, s.status,
        s.created_at, s.closed_at, s.last_error, json_or_none(s.runtime_meta),
    )  # fmt: skip


def session_of(row: Sequence[Any]) -> Session:
    (id, template_id, workspace_id, base_commit_oid, worktree_path, status, created_at, closed_at,
     last_error, runtime_meta) = row  # fmt: skip
    return Session(
        id=id, vm_id=template_id, workspace_id=workspace_id, base_commit_oid=base_commit_oid,
        worktree_path=worktree_path, status=status, created_at=created_at, closed_at=closed_at,
        last_error=last_error, runtime_meta=object_or_none(runtime_meta),
    )  # fmt: skip


def execution_row(e: Execution) -> tuple[Any, ...]:
    return (
        e.id, e.session_id, e.kind, e.input, e.path, to_json(e.args), to_json(e.env), e.status,
        e.started_at, e.ended_at, json_or_none(e.result), json_or_none(e.error),
        to_json(e.metrics),
    )  # fmt: skip


def execution_of(row: Sequence[Any]) -> Execution:
    (id, session_id, kind, input, path, args, env, status, started_at, ended_at, result, error,
     metrics) = row  # fmt: skip
    return Execution(
        id=id, session_id=session_id, kind=kind, input=input, path=path,
        args=decode_object(args), env=decode_object(env), status=status,
        started_at=started_at, ended_at=ended_at, result=object_or_none(result),
        error=object_or_none(error), metrics=decode_metrics(metrics),
    )  # fmt: skip


EVENTS_PAGE_SQL = (
    "SELECT execution_id, seq, ts, type, payload FROM events"
    " WHERE execution_id = ? AND seq > ? ORDER BY seq LIMIT ?"
)


class ReplayPage(NamedTuple):
    """The next executions of a session to replay, oldest first (see Store.replay_page)."""

    executions: list[Execution]
    after: tuple[str, int] | None  # where the next page starts; None: this one is the last
    complete: bool  # no execution the replay needs was pruned


def replay_page(
    conn: sqlite3.Connection, session_id: str, since: str, after: tuple[str, int] | None, limit: int
) -> ReplayPage:
    (pruned_through,) = conn.execute(
        "SELECT pruned_through FROM sessions WHERE id = ?", (session_id,)
    ).fetchone() or (None,)
    started_at, rowid = after or (since, -1)
    found = conn.execute(
        f"SELECT {EXECUTION_COLUMNS}, rowid FROM executions"
        " WHERE session_id = ? AND status = 'ok' AND (started_at, rowid) > (?, ?)"
        " AND started_at >= ? ORDER BY started_at, rowid LIMIT ?",
        (session_id, started_at, rowid, since, limit),
    ).fetchall()
    last = (found[-1][8], found[-1][-1]) if len(found) == limit else None
    return ReplayPage(
        [execution_of(row[:-1]) for row in found],
        last,
        pruned_through is None or pruned_through < since,
    )


class EventPage(NamedTuple):
    """A page of an execution's events, already the JSON array the API answers."""

    body: bytes
    last_seq: int | None  # of the page's last event; None for an empty page
    more: bool  # more events follow the page


class _EventOut(msgspec.Struct):
    """The API's :class:`Event`, field for field, with its payload as stored (JSON text)."""

    execution_id: str
    seq: int
    ts: str
    type: str
    payload: msgspec.Raw


def events_page(
    conn: sqlite3.Connection, execution_id: str, after_seq: int, limit: int
) -> EventPage:
    """Up to ``limit`` events after ``after_seq``, as the JSON array the API answers.

    A page may hold 100,000 events. Made as Event Structs with decoded payloads and then
    encoded, it held about 140 MiB at its peak, most of which the daemon then kept; here
    each event is encoded as it is read (:func:`events_after`), its payload as stored.
    """
    events = events_after(conn, execution_id, after_seq, limit + 1)
    more = len(events) > limit
    del events[limit:]
    body = b"[" + b",".join(data for _, _, data in events) + b"]"
    return EventPage(body, events[-1][0] if events else None, more)


def events_after(
    conn: sqlite3.Connection, execution_id: str, after_seq: int, limit: int
) -> list[tuple[int, str, bytes]]:
    """Up to ``limit`` events after ``after_seq``, each as (seq, type, its JSON), its
    payload as it was stored (checked to be an object that nests no deeper than
    :data:`CLIP_DEPTH`, else clipped): a page's items, a stream's messages."""
    return [
        (seq, type, _encoder.encode(_EventOut(execution_id, seq, ts, type, _raw_object(payload))))
        for _, seq, ts, type, payload in conn.execute(
            EVENTS_PAGE_SQL, (execution_id, after_seq, limit)
        )
    ]


def _raw_object(text: str) -> msgspec.Raw:
    """A JSON object column as it goes out: as stored when it reads back well, else fixed."""
    if too_few_brackets(text, CLIP_DEPTH):
        try:
            _decode_dict(text)  # the check; the value itself is not needed
        except msgspec.DecodeError:
            return msgspec.Raw(_encoder.encode({"unreadable": NOT_AN_OBJECT}))
        return msgspec.Raw(text.encode())
    return msgspec.Raw(_encoder.encode(decode_object(text)))


def settings_of(row: Sequence[Any]) -> Settings:
    template_id, limits, resolver, runtime, lifecycle = row
    return Settings(
        vm_id=template_id,
        limits=_decode_limits(limits),
        resolver=_decode_resolver(resolver),
        runtime=_decode_runtime(runtime),
        lifecycle=_decode_lifecycle(lifecycle),
    )


def _names(conn: sqlite3.Connection, table: str, template_id: str | None) -> dict[str, list[str]]:
    """The module or library names of one template (or all), sorted, by template id."""
    where, params = (
        ("WHERE template_id = ?", (template_id,)) if template_id is not None else ("", ())
    )
    names: dict[str, list[str]] = {}
    for template_id, name in conn.execute(
        f"SELECT template_id, name FROM {table} {where} ORDER BY template_id, name", params
    ):
        names.setdefault(template_id, []).append(name)
    return names


def read_templates(conn: sqlite3.Connection, template_id: str | None = None) -> list[Template]:
    where, params = ("WHERE id = ?", (template_id,)) if template_id is not None else ("", ())
    rows = conn.execute(
        f"SELECT {TEMPLATE_COLUMNS} FROM templates {where}"
        f" ORDER BY created_at DESC, {NEWEST_FIRST}",
        params,
    ).fetchall()
    modules = _names(conn, "template_modules", template_id)
    libraries = _names(conn, "template_libraries", template_id)
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


def read_capabilities(conn: sqlite3.Connection, template_id: str) -> list[Capability]:
    rows = conn.execute(
        "SELECT id, template_id, kind, name, enabled, config FROM capabilities"
        " WHERE template_id = ? ORDER BY rowid",
        (template_id,),
    )
    return [
        Capability(
            id=id,
            vm_id=template_id,
            kind=kind,
            name=name,
            enabled=bool(enabled),
            config=decode_object(config),
        )
        for id, template_id, kind, name, enabled, config in rows
    ]


def read_startup_files(conn: sqlite3.Connection, template_id: str) -> list[StartupFile]:
    rows = conn.execute(
        "SELECT id, template_id, path, order_index, mode FROM startup_files"
        " WHERE template_id = ? ORDER BY order_index, path",
        (template_id,),
    )
    return [StartupFile(*row) for row in rows]


def touch(conn: sqlite3.Connection, template_id: str) -> None:
    conn.execute("UPDATE templates SET updated_at = ? WHERE id = ?", (utc_now(), template_id))


def read_settings(conn: sqlite3.Connection, template_id: str) -> Settings | None:
    row = conn.execute(
        "SELECT template_id, limits, resolver, runtime, lifecycle FROM settings"
        " WHERE template_id = ?",
        (template_id,),
    ).fetchone()
    return None if row is None else settings_of(row)


def write_settings(conn: sqlite3.Connection, s: Settings) -> None:
    with constraints(missing=RowNotFound("template", s.vm_id)):
        conn.execute(
            "INSERT INTO settings (template_id, limits, resolver, runtime, lifecycle)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (template_id) DO UPDATE SET"
            " limits = excluded.limits, resolver = excluded.resolver,"
            " runtime = excluded.runtime, lifecycle = excluded.lifecycle",
            (
                s.vm_id,
                to_json(s.limits),
                to_json(s.resolver),
                to_json(s.runtime),
                to_json(s.lifecycle),
            ),
        )


_EXECUTION_UPSERT = f"{EXECUTION_INSERT} ON CONFLICT (id) DO UPDATE SET " + ", ".join(
    f"{c} = excluded.{c}" for c in EXECUTION_COLUMNS.split(", ")[1:]
)


def insert_execution(conn: sqlite3.Connection, execution: Execution) -> None:
    """The execution's row as it starts."""
    with constraints(missing=RowNotFound("session", execution.session_id)):
        conn.execute(EXECUTION_INSERT, execution_row(execution))


def finish_execution(conn: sqlite3.Connection, execution: Execution) -> None:
    """The execution's final row: inserted, or replacing its running one."""
    with constraints(missing=RowNotFound("session", execution.session_id)):
        conn.execute(_EXECUTION_UPSERT, execution_row(execution))


def recover(conn: sqlite3.Connection, reason: str) -> tuple[int, int]:
    now = utc_now()
    sessions = conn.execute(
        "UPDATE sessions SET status = 'crashed', last_error = ?"
        " WHERE status IN ('starting', 'ready')",
        (reason,),
    ).rowcount
    running = conn.execute("SELECT id, metrics FROM executions WHERE status = 'running'").fetchall()
    error = to_json({"code": "CANCELLED", "message": reason})
    payload = to_json({"level": "error", "message": reason})
    for execution_id, metrics in running:
        (seq,) = conn.execute(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE execution_id = ?", (execution_id,)
        ).fetchone()
        conn.execute(EVENT_INSERT, (execution_id, seq, now, "system", payload))
        # seq has no gaps, so the last one is the number of events recorded, this one included.
        final_metrics = msgspec.structs.replace(decode_metrics(metrics), events=seq)
        conn.execute(
            "UPDATE executions SET status = 'cancelled', ended_at = ?, error = ?, metrics = ?"
            " WHERE id = ?",
            (now, error, to_json(final_metrics), execution_id),
        )
    return sessions, len(running)
