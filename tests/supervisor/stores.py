"""What the store tests make and look at: rows of every kind, and the file from outside."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable
from typing import Any

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
    Store,
)
from vmctl.supervisor.store.models import new_id

T0 = "2026-01-01T00:00:00.000Z"  # every row made "in the same millisecond" unless a test says
T1 = "2026-01-01T00:00:00.001Z"


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
