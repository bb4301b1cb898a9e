"""What the store tests make and look at: rows of every kind, and the file from outside.

Executions and events are written as the daemon writes them, through the store's event
log (sessions/execution.py), and read back as its API reads them.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable
from typing import Any

import msgspec

from vmctl.api.models import (
    Event,
    Execution,
    ExecutionStatus,
    Session,
    SessionStatus,
    Settings,
    Template,
)
from vmctl.supervisor.store import (
    ExecutionLog,
    Store,
)
from vmctl.supervisor.store.models import new_id

T0 = "2026-01-01T00:00:00.000Z"  # every row made "in the same millisecond" unless a test says
T1 = "2026-01-01T00:00:00.001Z"
WAIT = 10.0  # seconds a test waits for a commit (a few milliseconds away) before it fails


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


def ended(running: Execution, status: ExecutionStatus = "ok") -> Execution:
    """The final record of ``running``."""
    return msgspec.structs.replace(running, status=status, ended_at=T1)


def console(seq: int) -> dict[str, Any]:
    return {"level": "log", "text": f"line {seq}"}


def events(execution_id: str, seqs: Iterable[int]) -> list[Event]:
    """The console events :func:`append_console` appends, as the API reads them back."""
    return [
        Event(execution_id=execution_id, seq=seq, ts=T0, type="console", payload=console(seq))
        for seq in seqs
    ]


def append_console(log: ExecutionLog, count: int) -> None:
    """Append the log's next ``count`` console events, one at a time, as a recorder does."""
    for seq in range(log.appended_seq + 1, log.appended_seq + count + 1):
        log.append("console", msgspec.json.encode(console(seq)).decode(), T0)


async def committed_running(store: Store, running: Execution) -> ExecutionLog:
    """Open the log of ``running`` and commit its row now, as for a client that does not
    wait for the execution (``start_committed``)."""
    log = store.events.open(running)
    await log.commit_running()
    return log


async def recorded(store: Store, running: Execution, final: Execution, count: int = 0) -> None:
    """An execution that ends before its first commit: its log opened, ``count`` console
    events appended, its final row committed with them (``start_recorded``)."""
    log = store.events.open(running)
    append_console(log, count)
    await log.finish(final)


async def stored_events(store: Store, execution_id: str, after_seq: int = 0) -> list[Event]:
    """The execution's events after ``after_seq``, read as one page of
    ``GET /executions/{id}/events``."""
    page = await store.events_page(execution_id, after_seq, 100_000)
    assert not page.more
    return msgspec.json.decode(page.body, type=list[Event])


async def read_template(store: Store, template_id: str) -> Template | None:
    detail = await store.get_template_detail(template_id)
    return None if detail is None else detail.template


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
