"""API objects built by hand for the pure formatting tests."""

from __future__ import annotations

from typing import Any

import click

from vmctl.api.models import Event, EventType, Execution, ExecutionKind, ExecutionStatus

TS = "2026-11-21T09:00:00.123Z"


def execution(
    status: ExecutionStatus = "ok", kind: ExecutionKind = "repl", **fields: Any
) -> Execution:
    return Execution(id="e1", session_id="s1", kind=kind, status=status, started_at=TS, **fields)


def event(seq: int, type_: EventType, **payload: Any) -> Event:
    return Event(execution_id="e1", seq=seq, ts=TS, type=type_, payload=payload)


def plain(text: str) -> str:
    return click.unstyle(text)
