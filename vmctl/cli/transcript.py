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
    message = str(error.get("message") or error.get("code") or "no reason given").rstrip()
    first, newline, details = message.partition("\n")  # e.g. a crashed worker's stderr tail
    code = error.get("code")
    suffix = f" ({code})" if code and code not in first else ""
    label = {"error": "error", "timeout": "timed out", "cancelled": "cancelled"}.get(status, status)
    return f"{label}: {first}{suffix}{newline}{details}"


def exception(payload: dict[str, Any]) -> str:
    """The message, then the stack frames (without repeating the message)."""
    message = str(payload.get("message", "exception"))
    stack = str(payload.get("stack") or "").rstrip()
    if stack.startswith(message):
        stack = stack[len(message) :].lstrip("\n")
    lines = [click.style(message, fg="red", bold=True)]
    lines.extend(click.style(line, fg="red") for line in stack.split("\n") if line.strip())
    return "\n".join(lines)


def ending(value: Execution, threw: bool) -> str | None:
    """The last line of a run that did not end ``ok``, unless its exception said it all."""
    error = value.error
    if value.status == "ok" or (
        value.status == "error" and threw and not (error or {}).get("limit")
    ):
        return None
    if error is None:
        return value.status
    return describe_error(value.status, error)


def render(value: Execution, items: Sequence[Event]) -> str:
    """What the execution printed and produced, in order, as a terminal shows it.

    Console lines of every level come in the order they were logged (warn and
    error are coloured, not moved to stderr, which would reorder them); then the
    value's preview, or the exception. A run that did not end ``ok`` for another
    reason ends with a line in words from its record's error, which replaces the
    daemon's terminal system note (the record's error says the same, or more).
    A file run whose value is ``undefined`` prints no value line.
    """
    threw = any(event.type == "exception" for event in items)
    last = ending(value, threw)
    lines: list[str] = []
    for index, event in enumerate(items):
        payload = event.payload
        match event.type:
            case "console":
                text = str(payload.get("text", ""))
                lines.append(click.style(text, fg=CONSOLE_COLOURS.get(str(payload.get("level")))))
            case "value":
                if value.kind == "repl" or payload.get("type") != "undefined":
                    lines.append(str(payload.get("preview", "")))
            case "exception":
                lines.append(exception(payload))
            case "system" if not (last and index == len(items) - 1):
                note = str(payload.get("message", ""))
                lines.append(click.style(f"[vmctl] {note}", fg="magenta"))
    if last:
        lines.append(click.style(last, fg="red", bold=True))
    return "\n".join(lines)
