"""A finished execution as a program wants it: the record, its events, and the parts an
agent reads most (the value, the console lines, the exception) one attribute away."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vmctl.api.models import Event, Execution, ExecutionStatus


@dataclass(frozen=True)
class Run:
    """An ended execution and its events, in order.

    A JavaScript exception, a limit, a cancel or a crash is data here (``status`` says
    which, ``exception`` and ``error`` say more), never an exception raised.
    """

    execution: Execution
    events: list[Event]

    @property
    def id(self) -> str:
        return self.execution.id

    @property
    def status(self) -> ExecutionStatus:
        return self.execution.status

    @property
    def ok(self) -> bool:
        return self.execution.status == "ok"

    @property
    def value(self) -> Any:
        """The value as JSON data (``None`` for ``undefined``, ``null``, an ended-not-ok
        run, or a value JSON cannot hold: read :attr:`preview` then)."""
        return (self.execution.result or {}).get("json")

    @property
    def preview(self) -> str | None:
        """The value as Node's ``util.inspect`` shows it (``{ a: 1 }``); None unless ok."""
        preview = (self.execution.result or {}).get("preview")
        return preview if isinstance(preview, str) else None

    @property
    def console(self) -> list[str]:
        """The console lines, every level, in order."""
        return [str(e.payload.get("text", "")) for e in self.events if e.type == "console"]

    @property
    def output(self) -> str:
        """The console lines as one text, a line each."""
        return "".join(line + "\n" for line in self.console)

    @property
    def exception(self) -> dict[str, Any] | None:
        """The thrown exception's payload (``message``, ``name``, ``stack``), if it threw."""
        thrown = [e.payload for e in self.events if e.type == "exception"]
        return thrown[-1] if thrown else None

    @property
    def error(self) -> dict[str, Any] | None:
        """The record's ``error``: ``{"code", "message", ...}`` unless it ended ok."""
        return self.execution.error


def exception_lines(payload: dict[str, Any]) -> list[str]:
    """An exception event's message, then its stack frames without the message again (a
    stack starts with it), as the CLI and the MCP tools show it."""
    message = str(payload.get("message", "exception"))
    stack = str(payload.get("stack") or "").rstrip()
    if stack.startswith(message):
        stack = stack[len(message) :].lstrip("\n")
    return [message, *(line for line in stack.split("\n") if line.strip())]
