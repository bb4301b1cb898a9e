"""An execution as a terminal shows it: its console lines, value or exception, and its end.

Pure, like :mod:`vmctl.cli.format`: :class:`Transcript` turns events into
lines as they arrive, and says which go to standard error; printing them is
the caller's. Colour comes from ``click.style`` and is stripped by
``click.echo`` off a terminal.
"""

from __future__ import annotations

from typing import Any

import click
import msgspec

from vmctl.api.models import Event, Execution
from vmctl.client.runs import exception_lines

LIMIT_UNITS = {"cpu_ms": " ms", "wall_ms": " ms", "mem_mb": " MB", "max_output_kb": " KB"}
CONSOLE_COLOURS = {"warn": "yellow", "error": "red", "debug": "bright_black"}
# console.warn and console.error go to standard error, as Node prints them; every other
# line (log, info, debug, the value, the exception, the end in words) to standard output.
STDERR_LEVELS = frozenset({"warn", "error"})


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
    message, *frames = exception_lines(payload)
    lines = [click.style(message, fg="red", bold=True)]
    lines.extend(click.style(line, fg="red") for line in frames)
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


class Line(msgspec.Struct, frozen=True):
    text: str
    err: bool = False  # standard error rather than standard output


class Transcript:
    """One execution's lines, event by event as they arrive, then its end.

    Console lines come in the order they were logged; then the value's preview,
    or the exception. A run that did not end ``ok`` for another reason ends with
    a line in words from its record's error, which replaces the daemon's terminal
    system note (the record's error says the same, or more): so a system note is
    held back until the next event shows it was not the last. A file run whose
    value is ``undefined`` prints no value line.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind  # "repl" or "run_file"
        self._threw = False
        self._held: Event | None = None  # a system note that may turn out to be the last word

    def event(self, event: Event) -> list[Line]:
        lines = self._release()
        payload = event.payload
        match event.type:
            case "console":
                level = str(payload.get("level", "log"))
                text = str(payload.get("text", ""))
                colour = CONSOLE_COLOURS.get(level)
                styled = click.style(text, fg=colour) if colour else text
                lines.append(Line(styled, err=level in STDERR_LEVELS))
            case "value":
                if self.kind == "repl" or payload.get("type") != "undefined":
                    lines.append(Line(str(payload.get("preview", ""))))
            case "exception":
                self._threw = True
                lines.append(Line(exception(payload)))
            case "system":
                self._held = event
            case _:
                pass  # input_echo (the user typed it), and types newer than this client
        return lines

    def end(self, record: Execution) -> list[Line]:
        """The last lines, once the execution has ended with ``record``."""
        last = ending(record, self._threw)
        if last:
            self._held = None
            return [Line(click.style(last, fg="red", bold=True))]
        return self._release()

    def _release(self) -> list[Line]:
        held, self._held = self._held, None
        if held is None:
            return []
        note = str(held.payload.get("message", ""))
        return [Line(click.style(f"[vmctl] {note}", fg="magenta"))]
