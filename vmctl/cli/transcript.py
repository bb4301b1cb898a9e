"""An execution as a terminal shows it: its console lines, value or exception, and its end.

Pure functions, like those of :mod:`vmctl.cli.format`; colour comes from
``click.style`` and is stripped by ``click.echo`` off a terminal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from vmctl.cli.models import Event, Execution

LIMIT_UNITS = {"cpu_ms": " ms", "wall_ms": " ms", "mem_mb": " MB", "max_output_kb": " KB"}
CONSOLE_COLOURS = {"warn": "yellow", "error": "red", "debug": "bright_black"}


def describe_error(status: str, error: dict[str, Any]) -> str:
    """An execution's end in words: ``stopped: max_events limit of 100 reached``."""
    limit = error.get("limit")
    if limit:
        value = error.get("limit_value", "?")
        return f"stopped: {limit} limit of {value}{LIMIT_UNITS.get(limit, '')} reached"
    message = str(error.get("message") or error.get("code") or "no reason given")
    code = error.get("code")
    suffix = f" ({code})" if code and code not in message else ""
    label = {"error": "error", "timeout": "timed out", "cancelled": "cancelled"}.get(status, status)
    return f"{label}: {message}{suffix}"


def exception(payload: dict[str, Any]) -> str:
    """The message, then the stack frames (without repeating the message)."""
    message = str(payload.get("message", "exception"))
    stack = str(payload.get("stack") or "").rstrip()
    if stack.startswith(message):
        stack = stack[len(message) :].lstrip("\n")
    lines = [click.style(message, fg="red", bold=True)]
    lines.extend(click.style(line, fg="red") for line in stack.split("\n") if line.strip())
    return "\n".join(lines)


def restates(note: dict[str, Any], error: dict[str, Any] | None) -> bool:
    """Whether a system event says what the execution's error (the last line) says."""
    if error is None:
        return False
    same_limit = note.get("limit") is not None and note.get("limit") == error.get("limit")
    return same_limit or note.get("message") == error.get("message")


def render(value: Execution, items: Sequence[Event]) -> str:
    """What the execution printed and produced, in order, as a terminal shows it.

    Console lines of every level come in the order they were logged (warn and
    error are coloured, not moved to stderr, which would reorder them); then the
    value's preview, or the exception, and a last line in words when the
    execution did not end ``ok`` for a reason the events do not already show
    (a system event that only restates that reason is left out).
    A file run whose value is ``undefined`` prints no value line.
    """
    lines: list[str] = []
    threw = False
    for event in items:
        payload = event.payload
        match event.type:
            case "console":
                text = str(payload.get("text", ""))
                lines.append(click.style(text, fg=CONSOLE_COLOURS.get(str(payload.get("level")))))
            case "value":
                if value.kind == "repl" or payload.get("type") != "undefined":
                    lines.append(str(payload.get("preview", "")))
            case "exception":
                threw = True
                lines.append(exception(payload))
            case "system" if not restates(payload, value.error):
                note = str(payload.get("message", ""))
                lines.append(click.style(f"[vmctl] {note}", fg="magenta"))
    if (
        value.status != "ok"
        and value.error is not None
        and not (threw and not value.error.get("limit"))
    ):
        lines.append(click.style(describe_error(value.status, value.error), fg="red", bold=True))
    elif value.status not in {"ok", "error"} and value.error is None:
        lines.append(click.style(value.status, fg="red", bold=True))
    return "\n".join(lines)
