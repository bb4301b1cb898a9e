"""How one execution ends: its events counted against its limits as they arrive, and its outcome.

An :class:`ExecutionRecorder` keeps the events of one execution within its
:class:`~vmctl.api.models.Limits` and ends it at the first limit
crossed. The first ending wins: once a limit, a cancel, the hard deadline or a
crash has ended the execution, later events are dropped and later endings
ignored, so what is kept is bounded by ``max_events`` and ``max_output_kb``
whatever the worker keeps sending. Its :class:`Outcome` is what
``WorkerHandle.execute`` returns.

An :class:`Ending` says why an execution ended, in the words of the execution
record: its status and the contract's error code (:data:`_ENDINGS` is the one
table of them), with the final ``system`` event it is due. A worker's answer that
came after ``cpu_ms`` or ``wall_ms`` had passed ends it as a timeout all the same
(:func:`within_time`). Event payloads are exactly those of the REST contract
(api-contract.md, "Events").
"""

from __future__ import annotations

import bisect
import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

import msgspec

from vmctl.api.models import EventType, ExecutionMetrics, ExecutionStatus, LimitName, Limits
from vmctl.protocol import Console, Error, EventFrame, JsException, System, Value
from vmctl.supervisor.store.models import timestamp

_TRUNCATED = "…[truncated]"
_encode = msgspec.json.Encoder().encode


class _ConsolePayload(msgspec.Struct):
    """A console event's payload, encoded as the dict ``{"level", "text"}`` is, key for key."""

    level: str
    text: str


_encode_console_lines = msgspec.json.Encoder().encode_lines

How = Literal["ok", "threw", "cancelled", "crashed"] | LimitName

# Every way an execution can end -> (the record's status, the contract's error code). A
# worker's other error codes (STARTUP_FAILED, FILE_NOT_FOUND, ...) end it as "error" with
# that code.
_ENDINGS: dict[How, tuple[ExecutionStatus, str | None]] = {
    "ok": ("ok", None),
    "threw": ("error", "JS_EXCEPTION"),
    "cancelled": ("cancelled", "CANCELLED"),
    "crashed": ("crashed", "WORKER_CRASHED"),
    "cpu_ms": ("timeout", "EXECUTION_TIMEOUT"),
    "wall_ms": ("timeout", "EXECUTION_TIMEOUT"),
    "mem_mb": ("error", "MEMORY_LIMIT_EXCEEDED"),
    "max_events": ("error", "OUTPUT_LIMIT_EXCEEDED"),
    "max_output_kb": ("error", "OUTPUT_LIMIT_EXCEEDED"),
}


class RecordedEvent(msgspec.Struct, frozen=True):
    """An event as it arrived, before the execution's record numbers it."""

    type: EventType
    payload: dict[str, Any]  # exactly the API payload of that event type
    ts: float  # time.time() when it arrived


class Ending(msgspec.Struct, frozen=True):
    """Why an execution ended: an :class:`Outcome` without its events and metrics."""

    status: ExecutionStatus
    code: str | None = None  # the contract's error code; None when it ended ok
    message: str | None = None
    limit: LimitName | None = None  # set when a limit ended it
    limit_value: int | None = None
    # The payload of the final system event this ending appends, if any.
    note: dict[str, Any] | None = None


class Outcome(msgspec.Struct, frozen=True):
    """How one execution ended, what it recorded, and what it cost."""

    status: ExecutionStatus
    events: list[RecordedEvent]  # kept only by a recorder without a sink
    metrics: ExecutionMetrics
    code: str | None = None
    message: str | None = None
    limit: LimitName | None = None
    limit_value: int | None = None
    # The exception payload, when the script threw (code JS_EXCEPTION).
    exception: dict[str, Any] | None = None
    value: dict[str, Any] | None = None  # the payload of its value event, if it had one


class EventSink(Protocol):
    """Where a recorder hands each event as it is recorded: a running execution's log in
    the store (``store/eventlog.py``), which numbers and commits them."""

    def append(self, type: str, payload: str, ts: str) -> int: ...

    def extend(self, type: str, count: int, payloads: str, ts: str) -> None:
        """``count`` events of one type and time; ``payloads`` is the JSON array of them."""

    @property
    def full(self) -> bool: ...

    def when_drained(self, callback: Callable[[], None]) -> None: ...

    def track(self, metrics: Callable[[], ExecutionMetrics]) -> None: ...


# -- endings ----------------------------------------------------------------------------


def _ending(how: How, **fields: Any) -> Ending:
    status, code = _ENDINGS[how]
    return Ending(status, code, **fields)


OK = _ending("ok")


def limit_reached(limit: LimitName, limits: Limits, detail: str = "") -> Ending:
    """The execution was stopped by one of its limits; ``detail`` is appended to the message."""
    value: int = getattr(limits, limit)
    return _limit_ending(
        limit, value, f"Execution stopped: {limit} limit of {value} reached{detail}"
    )


def _limit_ending(limit: LimitName, value: int, message: str) -> Ending:
    note = {"level": "error", "message": message, "limit": limit, "limit_value": value}
    return _ending(limit, message=message, limit=limit, limit_value=value, note=note)


def cancelled(why: str) -> Ending:
    message = f"Execution cancelled: {why}"
    return _ending("cancelled", message=message, note={"level": "warn", "message": message})


def crashed(exit_reason: str, stderr_tail: str) -> Ending:
    """The worker died while the execution ran (the note leaves out the stderr tail)."""
    note = {"level": "error", "message": f"Worker crashed: {exit_reason}"}
    message = f"worker {exit_reason}" + (f"; stderr tail:\n{stderr_tail}" if stderr_tail else "")
    return _ending("crashed", message=message, note=note)


def from_error(frame: Error, limits: Limits) -> Ending:
    """The ending a worker's terminal ``Error`` frame reports."""
    match frame.code:
        case "JS_ERROR":  # the exception event already tells the story: no note
            return _ending("threw", message=frame.message)
        case "TIMEOUT":
            return limit_reached("cpu_ms" if frame.limit == "cpu_ms" else "wall_ms", limits)
        case "MEMORY_LIMIT":
            return limit_reached("mem_mb", limits)
        case "CANCELLED":
            return cancelled(frame.message)
        case code:
            note = {"level": "error", "message": frame.message, "code": code}
            return Ending("error", code, frame.message, note=note)


def within_time(ending: Ending, limits: Limits, cpu_ms: float, wall_ms: float) -> Ending:
    """``ending``, or a timeout when the execution used more than its ``cpu_ms`` or
    ``wall_ms`` without a limit having ended it.

    The soft interrupt cannot stop one native operation (a BigInt ``toString``, a huge
    sort); one that finishes inside the hard deadline's grace answers late, and its
    answer does not count. When both passed, the smaller limit is named: the one that
    was reached first.
    """
    if ending.limit is not None:
        return ending
    used = {"cpu_ms": cpu_ms, "wall_ms": wall_ms}
    passed: list[LimitName] = [
        name for name in ("cpu_ms", "wall_ms") if used[name] > getattr(limits, name)
    ]
    if not passed:
        return ending
    limit = min(passed, key=lambda name: int(getattr(limits, name)))
    value: int = getattr(limits, limit)
    spent = f"{used[limit]:.0f} ms of {'CPU' if limit == 'cpu_ms' else 'wall'} time"
    return _limit_ending(
        limit,
        value,
        f"Execution timed out: {limit} limit of {value} passed; it answered only after"
        f" {spent}, and its answer was discarded",
    )


def event_payload(frame: EventFrame) -> tuple[EventType, dict[str, Any]]:
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


# -- the recorder -----------------------------------------------------------------------


def payload_size(payload: dict[str, Any]) -> int:
    """What an event costs against ``max_output_kb``: its payload as compact UTF-8 JSON."""
    return len(_encode(payload))


class ExecutionRecorder:
    """Records one execution's events within its limits and builds its :class:`Outcome`.

    With a ``sink``, each event goes there as it is recorded and the recorder keeps only
    counts and the value and exception payloads; ``on_full`` is called when the sink
    has too much not yet committed, and the caller stops reading the worker until the
    sink says it drained. Without one (a startup request, tests), it keeps the events.
    """

    def __init__(
        self,
        limits: Limits,
        sink: EventSink | None = None,
        on_full: Callable[[EventSink], None] | None = None,
    ) -> None:
        self.limits = limits
        self.events: list[RecordedEvent] = []
        self.count = 0
        self.output_bytes = 0
        self.ending: Ending | None = None
        self._budget = limits.max_output_kb * 1024
        self._sink = sink
        self._on_full = on_full
        self._started = time.monotonic()
        self._value: dict[str, Any] | None = None
        self._exception_payload: dict[str, Any] | None = None
        self._stamp = _Stamps()
        if sink is not None:
            sink.track(self._metrics_so_far)

    def record(self, kind: EventType, payload: dict[str, Any]) -> bool:
        """Record one event; False when it was dropped: ended before, or it crossed a limit now."""
        if self.ending is not None:
            return False
        if self.count >= self.limits.max_events:
            self.end(limit_reached("max_events", self.limits))
            return False
        encoded = _encode(payload)
        if self.output_bytes + len(encoded) > self._budget:
            self.end(limit_reached("max_output_kb", self.limits))
            return False
        self.output_bytes += len(encoded)
        self._emit(kind, payload, encoded)
        return True

    def record_console(self, lines: Sequence[tuple[str, str]]) -> bool:
        """Record a batch of console lines, each counted as if it had come alone (the same
        payload as :func:`event_payload` gives a Console frame); False when one of them
        crossed a limit (it and the rest are dropped).

        The one event kind that comes by the hundred thousand gets a path with no Python
        code per line: the batch is encoded in one call, one payload per line, handed on
        as one JSON array; only a batch that crosses ``max_output_kb`` is cut, where the
        running sum of its payloads' sizes crosses it.
        """
        if self.ending is not None:
            return False
        room = self.limits.max_events - self.count
        taken = lines[:room]
        # JSON escapes a line break inside a string, so each payload is one line.
        blob = _encode_console_lines(itertools.starmap(_ConsolePayload, taken))
        budget = self._budget - self.output_bytes
        kept = len(taken)
        if len(blob) - kept > budget:  # not all of them fit: the last that does
            ends = list(itertools.accumulate(map(len, blob.split(b"\n")[:-1])))
            kept = bisect.bisect_right(ends, budget)
            blob = blob[: ends[kept - 1] + kept] if kept else b""
        self.output_bytes += len(blob) - kept
        if self._sink is None:
            for level, text in taken[:kept]:
                self._emit("console", {"level": level, "text": text}, b"")
        elif kept:
            self.count += kept
            payloads = b"[" + blob[:-1].replace(b"\n", b",") + b"]"
            self._sink.extend("console", kept, payloads.decode(), self._stamp())
            if self._on_full is not None and self._sink.full:
                self._on_full(self._sink)
        if kept == len(lines):
            return True
        limit: LimitName = "max_events" if kept == room else "max_output_kb"
        self.end(limit_reached(limit, self.limits))
        return False

    def record_echo(self, text: str) -> bool:
        """Record the REPL input first; False when it alone exceeds ``max_output_kb``.

        Then it is kept truncated to fit, the execution has ended, and the input
        must not be sent to the worker.
        """
        payload = {"text": text}
        size = payload_size(payload)
        if size <= self._budget:
            return self.record("input_echo", payload)
        truncated = {"text": _truncate_to_fit(text, self._budget)}
        encoded = _encode(truncated)
        self.output_bytes += len(encoded)
        self._emit("input_echo", truncated, encoded)
        detail = f" by the input alone ({size} bytes)"
        self.end(limit_reached("max_output_kb", self.limits, detail))
        return False

    def end(self, ending: Ending) -> bool:
        """Set how the execution ended, unless it already has; True when this call set it."""
        if self.ending is not None:
            return False
        self.ending = ending
        if ending.note is not None:
            self._emit("system", ending.note, _encode(ending.note))  # not counted as output
        return True

    def outcome(self, wall_ms: float, cpu_ms: float) -> Outcome:
        ending = self.ending
        if ending is None:
            raise RuntimeError("ExecutionRecorder.outcome() called before the execution ended")
        metrics = ExecutionMetrics(
            wall_ms=round(wall_ms, 3),
            cpu_ms=round(cpu_ms, 3),
            events=self.count,  # the final system event included
            output_bytes=self.output_bytes,  # system notes excluded
        )
        return Outcome(
            ending.status,
            self.events,
            metrics,
            ending.code,
            ending.message,
            ending.limit,
            ending.limit_value,
            self._exception() if ending.code == "JS_EXCEPTION" else None,
            self._value,
        )

    def _emit(self, kind: EventType, payload: dict[str, Any], encoded: bytes) -> None:
        self.count += 1
        if kind == "value":
            self._value = payload
        elif kind == "exception":
            self._exception_payload = payload
        sink = self._sink
        if sink is None:
            self.events.append(RecordedEvent(kind, payload, time.time()))
            return
        sink.append(kind, encoded.decode(), self._stamp())
        if self._on_full is not None and sink.full:
            self._on_full(sink)

    def _metrics_so_far(self) -> ExecutionMetrics:
        wall_ms = round((time.monotonic() - self._started) * 1000, 3)
        return ExecutionMetrics(wall_ms=wall_ms, events=self.count, output_bytes=self.output_bytes)

    def _exception(self) -> dict[str, Any]:
        if self._exception_payload is not None:
            return self._exception_payload
        assert self.ending is not None
        return {"message": self.ending.message or ""}


class _Stamps:
    """Event timestamps as the store writes them; made once per millisecond, not per event
    (a flood records a hundred thousand events in well under a second)."""

    def __init__(self) -> None:
        self._millisecond = -1
        self._text = ""

    def __call__(self) -> str:
        now = time.time()
        millisecond = int(now * 1000)
        if millisecond != self._millisecond:
            self._millisecond, self._text = millisecond, timestamp(now)
        return self._text


def _truncate_to_fit(text: str, budget: int) -> str:
    """The longest prefix of ``text`` that, marked truncated, fits ``{"text": ...}`` in budget."""

    def fits(length: int) -> bool:
        return payload_size({"text": text[:length] + _TRUNCATED}) <= budget

    # Binary search over the prefix length: characters cost 1 to 6 bytes of JSON.
    low, high = 0, min(len(text), budget)
    if not fits(low):
        return ""
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return text[:low] + _TRUNCATED
