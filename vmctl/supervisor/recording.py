"""How a worker's outcome becomes the execution record, its events and the HTTP answer.

Pure functions: the session manager calls them between running an execution
and writing it to the store.
"""

from __future__ import annotations

from typing import Any

import msgspec

from vmctl.supervisor.errors import ApiError
from vmctl.supervisor.models import (
    Event,
    Execution,
    ExecutionMetrics,
    ExecutionStatus,
    timestamp,
    utc_now,
)
from vmctl.supervisor.outcome import Outcome, OutcomeStatus

_EXECUTION_STATUS: dict[OutcomeStatus, ExecutionStatus] = {
    "ok": "ok",
    "error": "error",
    "timeout": "timeout",
    "output_limit": "error",
    "event_limit": "error",
    "memory_limit": "error",
    "cancelled": "cancelled",
    "crashed": "crashed",
}

# The contract's code for each way an execution can end other than ok or a JS throw.
_ERROR_CODE: dict[OutcomeStatus, str] = {
    "timeout": "EXECUTION_TIMEOUT",
    "output_limit": "OUTPUT_LIMIT_EXCEEDED",
    "event_limit": "OUTPUT_LIMIT_EXCEEDED",
    "memory_limit": "MEMORY_LIMIT_EXCEEDED",
    "cancelled": "CANCELLED",
    "crashed": "WORKER_CRASHED",
}

# Outcomes answered with an error status although the execution was recorded.
_LIMIT_STATUSES = frozenset({"timeout", "output_limit", "event_limit", "memory_limit"})


def _error_of(outcome: Outcome) -> dict[str, Any] | None:
    if outcome.status == "ok":
        return None
    if outcome.status == "error" and outcome.exception is not None:
        # A JavaScript throw: the exception payload, with a code to match on.
        return {"code": "JS_EXCEPTION", **outcome.exception}
    code = _ERROR_CODE.get(outcome.status) or outcome.code or "INTERNAL"
    error: dict[str, Any] = {"code": code, "message": outcome.message or code}
    if outcome.limit is not None:
        error["limit"] = outcome.limit
        error["limit_value"] = outcome.limit_value
    return error


def _result_of(outcome: Outcome) -> dict[str, Any] | None:
    if outcome.status != "ok":
        return None
    for event in reversed(outcome.events):
        if event.type == "value":
            return event.payload
    return None


def finished_execution(running: Execution, outcome: Outcome) -> tuple[Execution, list[Event]]:
    """The final record of ``running`` and its numbered events."""
    events = [
        Event(
            execution_id=running.id,
            seq=seq,
            ts=timestamp(recorded.ts),
            type=recorded.type,
            payload=recorded.payload,
        )
        for seq, recorded in enumerate(outcome.events, start=1)
    ]
    metrics = ExecutionMetrics(
        wall_ms=round(outcome.metrics.wall_ms, 3),
        cpu_ms=round(outcome.metrics.cpu_ms, 3),
        events=outcome.metrics.events,
        output_bytes=outcome.metrics.output_bytes,
    )
    finished = msgspec.structs.replace(
        running,
        status=_EXECUTION_STATUS[outcome.status],
        ended_at=utc_now(),
        result=_result_of(outcome),
        error=_error_of(outcome),
        metrics=metrics,
    )
    return finished, events


def failure_of(execution: Execution, outcome: Outcome) -> ApiError | None:
    """The HTTP error a recorded execution is answered with, or None for 201."""
    details: dict[str, Any] = {"execution_id": execution.id, "session_id": execution.session_id}
    if outcome.status in _LIMIT_STATUSES:
        details["limit"] = outcome.limit
        details["limit_value"] = outcome.limit_value
        code = _ERROR_CODE[outcome.status]
        return ApiError(code, outcome.message or code, details)
    if outcome.status == "crashed":
        message = outcome.message or "The session's worker process died"
        return ApiError("WORKER_CRASHED", message, details)
    return None
