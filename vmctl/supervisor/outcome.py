"""What one execution produced, and how the worker's frames become API events.

An :class:`Outcome` is the one result of ``WorkerHandle.execute``: a status,
the events recorded within the limits (in order), and metrics. Event payloads
are exactly those of the REST contract (api-contract.md, "Events"), so the
session manager stores them unchanged.

An :class:`Ending` says why an execution ended; the functions below build one
for every way it can end, each with the final ``system`` event it is due.
Codes are the worker's (``JS_ERROR``, ``TIMEOUT``, ``STARTUP_FAILED``, ...)
plus three of the supervisor's own: ``EVENT_LIMIT``, ``OUTPUT_LIMIT`` and
``WORKER_CRASHED``.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from vmctl.protocol import Console, Error, Event, JsException, System, Value


class Limits(msgspec.Struct, frozen=True):
    """The limits of one execution (the template's settings when it starts)."""

    cpu_ms: int
    wall_ms: int
    mem_mb: int
    max_events: int
    max_output_kb: int


EventType = Literal["input_echo", "console", "value", "exception", "system"]
LimitName = Literal["max_events", "max_output_kb", "cpu_ms", "wall_ms", "mem_mb"]
OutcomeStatus = Literal[
    "ok", "error", "timeout", "output_limit", "event_limit", "memory_limit", "cancelled", "crashed"
]


class RecordedEvent(msgspec.Struct, frozen=True):
    type: EventType
    payload: dict[str, Any]  # exactly the API payload of that event type
    ts: float  # time.time() when it arrived


class Metrics(msgspec.Struct, frozen=True):
    wall_ms: float
    cpu_ms: float
    events: int  # every recorded event, the final system one included
    output_bytes: int  # payload bytes counted against max_output_kb (system notes excluded)


class Ending(msgspec.Struct, frozen=True):
    """Why an execution ended: an :class:`Outcome` without its events and metrics."""

    status: OutcomeStatus
    code: str | None = None
    message: str | None = None
    limit: LimitName | None = None
    limit_value: int | None = None
    # The payload of the final system event this ending appends, if any.
    note: dict[str, Any] | None = None


class Outcome(msgspec.Struct, frozen=True):
    """How one execution ended, what it recorded, and what it cost."""

    status: OutcomeStatus
    events: list[RecordedEvent]
    metrics: Metrics
    code: str | None = None
    message: str | None = None
    limit: LimitName | None = None
    limit_value: int | None = None
    # The exception payload, when the script threw (status "error", code JS_ERROR).
    exception: dict[str, Any] | None = None


def event_payload(frame: Event) -> tuple[EventType, dict[str, Any]]:
    """The API event type and payload of one worker event frame."""
    match frame:
        case Console():
            return "console", {"level": frame.level, "text": frame.text}
        case Value():
            value: dict[str, Any] = {"type": frame.value_type, "preview": frame.preview}
            if frame.json is not msgspec.UNSET:
                value["json"] = frame.json
            return "value", value
        case JsException():
            exception: dict[str, Any] = {"message": frame.message}
            if frame.name is not None:
                exception["name"] = frame.name
            if frame.stack is not None:
                exception["stack"] = frame.stack
            return "exception", exception
        case System():
            return "system", {"level": frame.level, "message": frame.message}


OK = Ending(status="ok")

_LIMIT_STATUS: dict[LimitName, tuple[OutcomeStatus, str]] = {
    "max_events": ("event_limit", "EVENT_LIMIT"),
    "max_output_kb": ("output_limit", "OUTPUT_LIMIT"),
    "cpu_ms": ("timeout", "TIMEOUT"),
    "wall_ms": ("timeout", "TIMEOUT"),
    "mem_mb": ("memory_limit", "MEMORY_LIMIT"),
}


def limit_reached(limit: LimitName, limits: Limits, detail: str = "") -> Ending:
    """The execution was stopped by one of its limits; ``detail`` is appended to the message."""
    status, code = _LIMIT_STATUS[limit]
    value: int = getattr(limits, limit)
    message = f"Execution stopped: {limit} limit of {value} reached{detail}"
    note = {"level": "error", "message": message, "limit": limit, "limit_value": value}
    return Ending(status, code, message, limit, value, note)


def cancelled(why: str) -> Ending:
    message = f"Execution cancelled: {why}"
    return Ending("cancelled", "CANCELLED", message, note={"level": "warn", "message": message})


def crashed(exit_reason: str, stderr_tail: str) -> Ending:
    """The worker died while the execution ran (the note leaves out the stderr tail)."""
    note = {"level": "error", "message": f"Worker crashed: {exit_reason}"}
    message = f"worker {exit_reason}" + (f"; stderr tail:\n{stderr_tail}" if stderr_tail else "")
    return Ending("crashed", "WORKER_CRASHED", message, note=note)


def from_error(frame: Error, limits: Limits) -> Ending:
    """The ending a worker's terminal ``Error`` frame reports."""
    match frame.code:
        case "JS_ERROR":  # the exception event already tells the story: no note
            return Ending("error", "JS_ERROR", frame.message)
        case "TIMEOUT":
            return limit_reached("cpu_ms" if frame.limit == "cpu_ms" else "wall_ms", limits)
        case "MEMORY_LIMIT":
            return limit_reached("mem_mb", limits)
        case "CANCELLED":
            return cancelled(frame.message)
        case code:
            note = {"level": "error", "message": frame.message, "code": code}
            return Ending("error", code, frame.message, note=note)
