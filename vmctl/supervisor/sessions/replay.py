"""A restart that replays: the executions that ended ``ok`` since the session's state last
started fresh, run again on its new worker, in order, under the current limits.

A session's ``runtime_meta.state_since`` is when its state last started fresh (its
create, a restart without replay, or a worker that died in a replay); a replay keeps it,
so a later one runs the same executions again, and those since. Nothing of a replay is
recorded but its report (``runtime_meta.replay``): its executions already have their
records, and their output would only repeat them.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from vmctl.api.models import Limits
from vmctl.protocol import RuntimeOptions
from vmctl.supervisor.metrics import ReplayOutcome
from vmctl.supervisor.sessions.execution import error_of, job_of
from vmctl.supervisor.store import ReplayPage, Store
from vmctl.supervisor.store.models import utc_now
from vmctl.supervisor.workers import WorkerHandle

logger = logging.getLogger("vmctl.sessions")

# Executions read from the store at once: a replay holds at most this many records, each
# up to a request body (its input) and max_output_kb (its value), so few.
PAGE = 8
# The report lists at most this many executions whose value differs from their record,
# each value as its type and the start of its preview: the report lives in the session's
# row, and a value may be megabytes. ``replayed`` counts them all.
MAX_DIVERGED = 50
PREVIEW_CHARS = 200
ERROR_CHARS = 2000  # of each text of the failed execution's error (message, stack)

INCOMPLETE = (
    "Not replayed: executions of this session since its state last started fresh"
    " were pruned (the store's retention), so its state cannot be made again"
)
UNKNOWN = (
    "Not replayed: when this session's state last started fresh is not known"
    " (it was started by an earlier vmctl)"
)


def _brief(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """A value event's payload as a diverged entry shows it: its type and preview, cut."""
    if value is None:
        return None
    return {"type": value.get("type"), "preview": _text(value.get("preview", ""), PREVIEW_CHARS)}


def _cut(error: dict[str, Any] | None) -> dict[str, Any] | None:
    """The failed execution's error with each of its texts cut (a thrown message may be
    megabytes)."""
    if error is None:
        return None
    return {k: _text(v, ERROR_CHARS) if isinstance(v, str) else v for k, v in error.items()}


def _text(value: object, limit: int) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "…"


def replay_outcome(report: dict[str, Any]) -> ReplayOutcome:
    """How the replay of ``report`` ended, as /metrics counts it."""
    failed = report["failed"]
    if failed is None:
        return "whole"
    return "incomplete" if failed["execution_id"] is None else "stopped"


def _report(failed: dict[str, Any] | None = None) -> dict[str, Any]:
    """A replay's report (``runtime_meta.replay``) before anything ran."""
    return {"replayed": 0, "diverged": [], "failed": failed}


def _not_replayable(message: str) -> dict[str, Any]:
    """The ``failed`` of a replay whose history is not whole (no execution to name)."""
    return {"execution_id": None, "error": {"code": "REPLAY_INCOMPLETE", "message": message}}


async def replayed(
    store: Store,
    handle: WorkerHandle,
    session_id: str,
    since: str,
    runtime: RuntimeOptions,
    limits: Limits,
    fresh: Callable[[], Awaitable[WorkerHandle]],
) -> tuple[WorkerHandle, dict[str, Any], str]:
    """Replay the session's executions since ``since`` ("": not known) on ``handle``: the
    worker then, the report, and when that worker's state started. A replay that killed
    its worker leaves a ``fresh`` one in its place, whose state starts then."""
    if not since:
        return handle, _report(_not_replayable(UNKNOWN)), utc_now()
    pages = functools.partial(store.replay_page, session_id, since, limit=PAGE)
    try:
        report = await _rerun(pages, handle, runtime, limits)
    except BaseException:
        await handle.aclose()
        raise
    if handle.alive:
        return handle, report, since
    await handle.aclose()
    logger.warning("session %s: its worker died in a replay; a fresh one replaces it", session_id)
    fresh_since = utc_now()
    return await fresh(), report, fresh_since


async def _rerun(
    pages: Callable[[tuple[str, int] | None], Awaitable[ReplayPage]],
    handle: WorkerHandle,
    runtime: RuntimeOptions,
    limits: Limits,
) -> dict[str, Any]:
    """Run the executions ``pages`` gives (from its first page on) on ``handle``; the report.
    Stops at the first that does not end ``ok`` (the worker may be dead then)."""
    report = _report()
    after: tuple[str, int] | None = None
    while True:
        page = await pages(after)
        if not page.complete:  # pruned before the replay, or while it ran
            report["failed"] = _not_replayable(INCOMPLETE)
            return report
        for execution in page.executions:
            outcome = await handle.execute(job_of(execution, runtime), limits)
            if outcome.status != "ok":
                report["failed"] = {"execution_id": execution.id, "error": _cut(error_of(outcome))}
                return report
            report["replayed"] += 1
            # As it would be recorded: the value's JSON arrives raw, the record's is read.
            now = msgspec.json.decode(msgspec.json.encode(outcome.value))
            if now != execution.result and len(report["diverged"]) < MAX_DIVERGED:
                report["diverged"].append(
                    {
                        "execution_id": execution.id,
                        "recorded": _brief(execution.result),
                        "now": _brief(now),
                    }
                )
        if page.after is None:
            return report
        after = page.after
