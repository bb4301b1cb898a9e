"""What a tool answers: a short text for the model, the full record as structured content.

Pure, like the CLI's ``format.py``: nothing here does I/O. A model reads the text, so
it is bounded: console output keeps its first :data:`CONSOLE_HEAD_CHARS` and last
:data:`CONSOLE_TAIL_CHARS` characters and says how much was cut between them and how to
read it (``read_events`` from a seq); a value preview or an exception is cut at
:data:`DETAIL_CHARS`. The structured content is the API's own objects
(``vmctl/api/models.py``), described by output schemas made from the same Structs.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import msgspec

from vmctl.api.models import Event, Execution, Session
from vmctl.client.runs import exception_lines

CONSOLE_HEAD_CHARS = 6_000
CONSOLE_TAIL_CHARS = 2_000
DETAIL_CHARS = 4_000  # a value's preview, an exception's stack, one event's line
EVENTS_TEXT_CHARS = 8_000  # the text of one read_events page
LIMIT_UNITS = {"cpu_ms": " ms", "wall_ms": " ms", "mem_mb": " MB", "max_output_kb": " KB"}
# How an execution may end without being a tool error: the code ran, and its value or
# its exception is the answer. Every other ending (a limit, a cancel, a crash) is one.
NOT_TOOL_ERRORS = frozenset({"ok", "running", "JS_EXCEPTION"})


class Reply(msgspec.Struct, frozen=True):
    """One tool result: ``text`` for the model, ``data`` for programs."""

    text: str
    data: dict[str, Any] | None = None
    is_error: bool = False


class SessionList(msgspec.Struct):
    """``list_sessions``' structured content."""

    sessions: list[Session]
    total: int  # sessions that matched, of which ``sessions`` holds the newest


class EventsPage(msgspec.Struct):
    """``read_events``' structured content."""

    execution: Execution
    events: list[Event]
    next_after_seq: int | None  # more events follow: the after_seq to ask with next


def cut(text: str, limit: int = DETAIL_CHARS) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…[{len(text) - limit} more characters cut]"


def exception_text(payload: dict[str, Any]) -> str:
    """``Uncaught TypeError: ...`` and the stack frames (without repeating the message)."""
    message, *frames = exception_lines(payload)
    return cut("\n".join(["Uncaught " + message, *frames]))


def console_text(payload: dict[str, Any]) -> str:
    level = payload.get("level", "log")
    text = str(payload.get("text", ""))
    return text if level in ("log", "info") else f"[{level}] {text}"


def event_text(event: Event) -> str:
    """One event as the model reads it in ``read_events``."""
    payload = event.payload
    match event.type:
        case "input_echo":
            detail = "> " + str(payload.get("text", ""))
        case "console":
            detail = console_text(payload)
        case "value":
            detail = "=> " + str(payload.get("preview", ""))
        case "exception":
            detail = exception_text(payload)
        case _:
            detail = "[system] " + str(payload.get("message", ""))
    return f"#{event.seq} {cut(detail)}"


def ending_text(execution: Execution) -> str:
    """Why an execution ended other than ``ok``, led by its error code."""
    error = execution.error or {}
    code = str(error.get("code") or execution.status.upper())
    limit = error.get("limit")
    if limit:
        unit = LIMIT_UNITS.get(str(limit), "")
        return f"{code}: stopped by the {limit} limit of {error.get('limit_value')}{unit}"
    return f"{code}: {cut(str(error.get('message') or execution.status))}"


def error_code(execution: Execution) -> str:
    if execution.status in ("ok", "running"):
        return execution.status
    return str((execution.error or {}).get("code") or execution.status.upper())


class Transcript:
    """An execution's console lines as they arrive, kept within a budget of characters.

    The first lines fill the head; once one does not fit, lines go to the tail, which
    keeps only the most recent; what falls out between the two is counted, with the seq
    just before it, so the model can read it whole with ``read_events``.
    """

    def __init__(self, head: int = CONSOLE_HEAD_CHARS, tail: int = CONSOLE_TAIL_CHARS) -> None:
        self._head: list[str] = []
        self._head_room = head
        self._tail: deque[tuple[int, str]] = deque()
        self._tail_room = tail
        self._tail_budget = tail
        self.cut_lines = 0
        self.cut_chars = 0
        self.cut_after_seq: int | None = None  # the seq just before the first line cut
        self.last_seq = 0
        self.value: dict[str, Any] | None = None
        self.exception: dict[str, Any] | None = None

    def add(self, events: list[Event]) -> None:
        for event in events:
            self.last_seq = max(self.last_seq, event.seq)
            if event.type == "console":
                self._line(event.seq, console_text(event.payload) + "\n")
            elif event.type == "value":
                self.value = event.payload
            elif event.type == "exception":
                self.exception = event.payload

    def _line(self, seq: int, line: str) -> None:
        if not self._tail and len(line) <= self._head_room:
            self._head.append(line)
            self._head_room -= len(line)
            return
        if len(line) > self._tail_budget:
            line = line[: self._tail_budget - 40] + f"…[{len(line)} characters in all]\n"
        self._tail.append((seq, line))
        self._tail_room -= len(line)
        while self._tail_room < 0:
            dropped_seq, dropped = self._tail.popleft()
            self._tail_room += len(dropped)
            self.cut_lines += 1
            self.cut_chars += len(dropped)
            if self.cut_after_seq is None:
                self.cut_after_seq = dropped_seq - 1

    def console(self, execution_id: str) -> str:
        text = "".join(self._head)
        if self.cut_lines:
            text += (
                f"[… {self.cut_lines} console lines ({self.cut_chars} characters) cut here; "
                f"read_events with execution_id {execution_id} and after_seq "
                f"{self.cut_after_seq} shows every event]\n"
            )
        return text + "".join(line for _, line in self._tail)


def run_reply(execution: Execution, transcript: Transcript, created: bool, waited: float) -> Reply:
    """A run's answer: console lines, the value or exception, and one line on its end."""
    code = error_code(execution)
    is_error = code not in NOT_TOOL_ERRORS
    parts = [ending_text(execution) + "\n"] if is_error else []
    parts.append(transcript.console(execution.id))
    if execution.status == "ok" and transcript.value is not None:
        parts.append("=> " + cut(str(transcript.value.get("preview", ""))) + "\n")
    if transcript.exception is not None:
        parts.append(exception_text(transcript.exception) + "\n")
    parts.append(
        f"[{execution.status}, {execution.metrics.wall_ms:g} ms; execution {execution.id}, "
        f"session {execution.session_id}]"
    )
    if execution.status == "running":
        parts.append(
            f"\nStill running after {waited:g} s. read_events (execution_id {execution.id}, "
            f"after_seq {transcript.last_seq}, wait_seconds up to 30) follows it; "
            "cancel_execution stops it."
        )
    if created:
        parts.append(
            f"\nA new session was created for this run: pass session_id {execution.session_id}"
            " to run more code in it with its state (close_session when done)."
        )
    return Reply("".join(parts), _builtins(execution), is_error)


def session_line(session: Session) -> str:
    line = f"{session.id}  {session.status}  {session.worktree_path}  created {session.created_at}"
    if session.last_error:
        line += "  last error: " + cut(session.last_error.split("\n")[0], 200)
    return line


def session_reply(session: Session, what: str) -> Reply:
    return Reply(f"{what}: {session_line(session)}", _builtins(session))


def restarted_reply(session: Session) -> Reply:
    """The session, and what its replay ran again (if it replayed)."""
    reply = session_reply(session, "Restarted")
    report = (session.runtime_meta or {}).get("replay")
    if not isinstance(report, dict):
        return reply
    text = f"{reply.text}\nReplayed {report['replayed']} execution(s)"
    if report["diverged"]:
        changed = ", ".join(d["execution_id"] for d in report["diverged"])
        text += f"; these gave another value than recorded: {changed}"
    failed = report["failed"]
    if failed:
        error = failed["error"]
        where = failed["execution_id"] or "the start"
        text += f"; stopped at {where}: {error.get('code')}: {cut(str(error.get('message')), 500)}"
    return Reply(text + ".", reply.data)


def sessions_reply(sessions: list[Session], total: int, status: str) -> Reply:
    if not sessions:
        return Reply(f"No sessions ({status}).", _builtins(SessionList([], 0)))
    lines = [session_line(s) for s in sessions]
    if total > len(sessions):
        lines.append(f"[… {total - len(sessions)} older sessions not shown; raise limit]")
    return Reply("\n".join(lines), _builtins(SessionList(sessions, total)))


def events_reply(execution: Execution, events: list[Event], more: bool) -> Reply:
    """A page of events as text within :data:`EVENTS_TEXT_CHARS`; the page ends where the
    text does, so the structured content holds exactly the events shown."""
    lines: list[str] = []
    room = EVENTS_TEXT_CHARS
    shown: list[Event] = []
    for event in events:
        line = event_text(event)
        if shown and len(line) + 1 > room:
            more = True
            break
        lines.append(line)
        shown.append(event)
        room -= len(line) + 1
    next_after_seq = shown[-1].seq if more and shown else None
    if not shown:
        lines.append("No events after that seq yet." if execution.status == "running" else "None.")
    end = f"[execution {execution.id}: {execution.status}"
    if execution.status not in ("ok", "running"):
        end += "; " + ending_text(execution)
    end += "]"
    if next_after_seq is not None:
        end += f"\nMore events follow: read_events with after_seq {next_after_seq}."
    page = EventsPage(execution, shown, next_after_seq)
    return Reply("\n".join([*lines, end]), _builtins(page))


def execution_reply(execution: Execution) -> Reply:
    """``cancel_execution``'s answer: the record once the execution has ended."""
    text = f"Execution {execution.id} is {execution.status}"
    if execution.status not in ("ok", "running"):
        text += f" ({ending_text(execution)})"
    return Reply(text + f"; session {execution.session_id}.", _builtins(execution))


def failure_reply(code: str, message: str, details: dict[str, Any] | None) -> Reply:
    """An API error, or the daemon out of reach, as a tool error led by its code."""
    text = f"{code}: {cut(message)}"
    if details:
        text += "\ndetails: " + cut(msgspec.json.encode(details).decode(), 1000)
    return Reply(text, {"error": {"code": code, "message": message, "details": details}}, True)


def _builtins(value: msgspec.Struct) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.to_builtins(value)
    return data


def output_schema(struct: type[msgspec.Struct]) -> dict[str, Any]:
    """The JSON Schema of ``struct`` with its root inlined: MCP wants ``"type": "object"``
    at the top of a tool's output schema, where msgspec puts a ``$ref``."""
    schema = msgspec.json.schema(struct)
    defs: dict[str, Any] = schema.pop("$defs", {})
    root: dict[str, Any] = defs.pop(struct.__name__)
    if defs:
        root["$defs"] = defs
    return root
