"""The accounting of one execution: its events, counted against its limits as they arrive.

The first ending wins. Once a limit, a cancel, the hard deadline or a crash has
ended the execution, later events are dropped and later endings ignored, so
what is kept is bounded by ``max_events`` and ``max_output_kb`` whatever the
worker keeps sending.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from vmctl.supervisor.outcome import (
    Ending,
    EventType,
    Limits,
    Metrics,
    Outcome,
    RecordedEvent,
    limit_reached,
)

_TRUNCATED = "…[truncated]"
_encode = msgspec.json.Encoder().encode


def payload_size(payload: dict[str, Any]) -> int:
    """What an event costs against ``max_output_kb``: its payload as compact UTF-8 JSON."""
    return len(_encode(payload))


class ExecutionRecorder:
    """Records one execution's events within its limits and builds its :class:`Outcome`."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.events: list[RecordedEvent] = []
        self.output_bytes = 0
        self.ending: Ending | None = None
        self._budget = limits.max_output_kb * 1024

    def record(self, kind: EventType, payload: dict[str, Any]) -> bool:
        """Record one event; False when it was dropped: ended before, or it crossed a limit now."""
        if self.ending is not None:
            return False
        if len(self.events) >= self.limits.max_events:
            self.end(limit_reached("max_events", self.limits))
            return False
        size = payload_size(payload)
        if self.output_bytes + size > self._budget:
            self.end(limit_reached("max_output_kb", self.limits))
            return False
        self._append(kind, payload, size)
        return True

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
        self._append("input_echo", truncated, payload_size(truncated))
        detail = f" by the input alone ({size} bytes)"
        self.end(limit_reached("max_output_kb", self.limits, detail))
        return False

    def end(self, ending: Ending) -> bool:
        """Set how the execution ended, unless it already has; True when this call set it."""
        if self.ending is not None:
            return False
        self.ending = ending
        if ending.note is not None:
            self.events.append(RecordedEvent("system", ending.note, time.time()))
        return True

    def outcome(self, wall_ms: float, cpu_ms: float) -> Outcome:
        ending = self.ending
        if ending is None:
            raise RuntimeError("ExecutionRecorder.outcome() called before the execution ended")
        metrics = Metrics(wall_ms, cpu_ms, len(self.events), self.output_bytes)
        return Outcome(
            ending.status,
            self.events,
            metrics,
            ending.code,
            ending.message,
            ending.limit,
            ending.limit_value,
            self._exception() if ending.code == "JS_ERROR" else None,
        )

    def _append(self, kind: EventType, payload: dict[str, Any], size: int) -> None:
        self.output_bytes += size
        self.events.append(RecordedEvent(kind, payload, time.time()))

    def _exception(self) -> dict[str, Any]:
        for event in reversed(self.events):
            if event.type == "exception":
                return event.payload
        assert self.ending is not None
        return {"message": self.ending.message or ""}


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
