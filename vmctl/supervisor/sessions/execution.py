"""One execution's life: its request, its run on the session's worker, its record.

:func:`run_recorded` is the whole of it. The execution's log is opened as it
starts (:func:`start_recorded`): its ``running`` row is committed with the
log's next group, or first (:func:`start_committed`) when the client is
answered before it ends; the worker's handle runs it under the template's
limits and returns an ``Outcome``; the final record is committed with (or
after) its numbered events before anyone is told.
:func:`raise_failure` then says whether the client gets the record (201) or an
error about it (a limit, a crashed worker).
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import msgspec

from vmctl.api.models import Execution, ExecutionKind, Limits, Settings, Template
from vmctl.protocol import ExecRepl, RunFile, RuntimeOptions
from vmctl.supervisor.metrics import Metrics
from vmctl.supervisor.sessions.errors import ExecutionFailed, Unavailable
from vmctl.supervisor.sessions.live import LiveSession
from vmctl.supervisor.store import ExecutionLog, Store, StoreFull
from vmctl.supervisor.store.models import new_id, utc_now
from vmctl.supervisor.workers import Job, Outcome
from vmctl.supervisor.workers.outcome import ExecutionRecorder, cancelled, crashed


def new_execution(
    session_id: str,
    kind: ExecutionKind,
    *,
    code: str | None = None,
    path: str | None = None,
    args: dict[str, Any] | None = None,
    env: dict[str, Any] | None = None,
) -> Execution:
    return Execution(
        id=new_id(),
        session_id=session_id,
        kind=kind,
        status="running",
        started_at=utc_now(),
        input=code,
        path=path,
        args=args or {},
        env=env or {},
    )


def worker_limits(settings: Settings, mem_mb: int) -> Limits:
    """The template's limits, with the heap limit its worker was started with."""
    return msgspec.structs.replace(settings.limits, mem_mb=mem_mb)


def runtime_options(template: Template | None, settings: Settings) -> RuntimeOptions:
    return RuntimeOptions(
        esm=settings.runtime.esm,
        strict=settings.runtime.strict,
        extensions=tuple(settings.resolver.extensions),
        modules=tuple(template.exposed_modules) if template is not None else (),
    )


def start_recorded(store: Store, execution: Execution) -> ExecutionLog:
    """Open ``execution``'s log: its running row goes with the log's next group commit,
    or, if it ends first, its final row alone. Until that commit the daemon's memory is
    its record (``ExecutionLog.uncommitted_running``)."""
    return store.events.open(execution)


async def start_committed(store: Store, execution: Execution) -> ExecutionLog:
    """Open ``execution``'s log and commit its running row now: for a client told of it
    before it ends. If the store refuses the row, the execution is forgotten and the
    error raised."""
    log = store.events.open(execution)
    try:
        await log.commit_running()
    except BaseException:
        store.events.discard(log)
        raise
    return log


async def run_recorded(
    log: ExecutionLog,
    live: LiveSession,
    execution: Execution,
    runtime: RuntimeOptions,
    limits: Limits,
    metrics: Metrics,
) -> tuple[Execution, Outcome]:
    """Run ``execution`` (started) on ``live``'s worker; commit how it ended after its events.

    How it ended is counted in ``metrics`` once known, before the commit.
    """
    try:
        if live.retired or not live.handle.alive:
            # Closed, or dead, while the row was written: the worker never sees it.
            outcome = _never_started(live, limits, _echo(execution), log)
        else:
            job = job_of(execution, runtime)
            outcome = await live.handle.execute(job, limits, echo=_echo(execution), sink=log)
    except BaseException:
        # Cancelled from outside (daemon shutdown): never leave a running record.
        metrics.executions.labels("cancelled").inc()
        await asyncio.shield(log.finish(_stopped_by_shutdown(execution)))
        raise
    _count(metrics, outcome)
    finished = _finished(execution, outcome)
    live.recording()
    try:
        await log.finish(finished)  # shielded inside: a cancel does not stop the commit
    except StoreFull:
        # The store keeps the record in memory and writes it once there is room
        # (store/eventlog.py); its events that could not be committed are lost.
        raise Unavailable(
            "STORE_FULL",
            f"The execution ended ({finished.status}) but the store has no room left: its "
            "record is written once there is room, without the events that were not",
            {
                "execution_id": execution.id,
                "session_id": execution.session_id,
                "status": finished.status,
                "events_not_recorded": log.events_lost,
            },
        ) from None
    return finished, outcome


def raise_failure(execution: Execution, outcome: Outcome) -> None:
    """Raise what the client is told instead of the record, if anything: a limit ended
    the execution, or its worker died."""
    if outcome.limit is None and outcome.status != "crashed":
        return
    details: dict[str, Any] = {"execution_id": execution.id, "session_id": execution.session_id}
    if outcome.limit is not None:
        details["limit"] = outcome.limit
        details["limit_value"] = outcome.limit_value
    assert outcome.code is not None
    message = outcome.message or (
        "The session's worker process died" if outcome.status == "crashed" else outcome.code
    )
    raise ExecutionFailed(outcome.code, message, details)


def _count(metrics: Metrics, outcome: Outcome) -> None:
    """What /metrics counts of an ended execution (docs/metrics.md): a few increments."""
    metrics.executions.labels(outcome.status).inc()
    metrics.execution_wall.observe(outcome.metrics.wall_ms / 1000)
    metrics.events.inc(outcome.metrics.events)
    metrics.output_bytes.inc(outcome.metrics.output_bytes)
    if outcome.limit is not None:
        metrics.limit_stops.labels(outcome.limit).inc()


def _echo(execution: Execution) -> str | None:
    return execution.input if execution.kind == "repl" else None


def job_of(execution: Execution, runtime: RuntimeOptions) -> Job:
    """The worker's request for ``execution`` (a replay sends a recorded one again)."""
    if execution.kind == "repl":
        return functools.partial(ExecRepl, code=execution.input or "", runtime=runtime)
    return functools.partial(
        RunFile,
        path=execution.path or "",
        args=execution.args,
        env=execution.env,
        runtime=runtime,
    )


def _never_started(
    live: LiveSession, limits: Limits, echo: str | None, log: ExecutionLog
) -> Outcome:
    """The outcome of an execution whose worker was gone before it could be sent."""
    recorder = ExecutionRecorder(limits, log)
    if echo is not None:
        recorder.record_echo(echo)
    if live.retired_on_purpose:
        recorder.end(cancelled(f"{live.retired_because} before it started"))
    else:
        recorder.end(crashed(live.handle.exit_reason or "exited", live.handle.stderr_tail()))
    return recorder.outcome(0.0, 0.0)


def _finished(running: Execution, outcome: Outcome) -> Execution:
    """The final record of ``running``."""
    return msgspec.structs.replace(
        running,
        status=outcome.status,
        ended_at=utc_now(),
        result=outcome.value if outcome.status == "ok" else None,
        error=error_of(outcome),
        metrics=outcome.metrics,
    )


def error_of(outcome: Outcome) -> dict[str, Any] | None:
    """The record's ``error`` for an execution that ended as ``outcome`` (None if ok)."""
    if outcome.status == "ok":
        return None
    if outcome.exception is not None:
        # A JavaScript throw: the exception payload, with a code to match on.
        return {"code": outcome.code, **outcome.exception}
    code = outcome.code or "INTERNAL"
    error: dict[str, Any] = {"code": code, "message": outcome.message or code}
    if outcome.limit is not None:
        error["limit"] = outcome.limit
        error["limit_value"] = outcome.limit_value
    return error


def _stopped_by_shutdown(execution: Execution) -> Execution:
    return msgspec.structs.replace(
        execution,
        status="cancelled",
        ended_at=utc_now(),
        error={"code": "CANCELLED", "message": "The daemon stopped while it ran"},
    )
