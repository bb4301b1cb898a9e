"""Scenarios against the store alone: one SQLite file, its writer and reader threads.

- the store's part of one REPL execution as the daemon does it: its log opened
  (store/eventlog.py), its two events appended (input echo and value), and its
  final record committed with them in one group commit (the template and settings
  come from the daemon's memory, sessions/catalog.py: no read);
- finish_execution with 1, 100 and N events: the execution's final row and its
  events in one transaction (what every execution costs at its end);
- list_events of N events: what GET /executions/{id}/events reads.

Rows are built before the clock starts; only the awaited store calls are timed.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import msgspec

from benchmarks.cpu import CpuMeter
from benchmarks.errors import BenchmarkError
from benchmarks.plan import Plan
from benchmarks.stats import Summary, per_second, summarize
from vmctl.api.models import Event, Execution, ExecutionStatus, Session, Settings, Template
from vmctl.supervisor.store import Store, open_store
from vmctl.supervisor.store.models import new_id, utc_now

GROUP = "store"


async def measure_store(plan: Plan, workdir: Path) -> list[Summary]:
    """All the store scenarios, on a new database in ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    async with await open_store(str(workdir / "bench.db")) as store:
        session = await _session(store, str(workdir))
        results = [await _repl_calls(store, session, plan.store_small)]
        for events, count in ((1, plan.store_small), (100, plan.store_small)):
            results.append(await _finish(store, session.id, events, count))
        results.append(await _finish(store, session.id, plan.store_events, plan.store_large))
        results.append(await _list(store, session.id, plan.store_events, plan.store_large))
    return results


async def _session(store: Store, worktree: str) -> Session:
    now = utc_now()
    template = Template(id=new_id(), name="bench", engine="quickjs", created_at=now, updated_at=now)
    await store.create_template(template, Settings(vm_id=template.id))
    session = Session(
        id=new_id(),
        vm_id=template.id,
        workspace_id="bench",
        base_commit_oid="0" * 40,
        worktree_path=worktree,
        status="ready",
        created_at=now,
    )
    await store.insert_session(session)
    return session


def _execution(session_id: str, status: ExecutionStatus = "ok") -> Execution:
    now = utc_now()
    return Execution(
        id=new_id(), session_id=session_id, kind="repl", status=status, started_at=now, ended_at=now
    )


def _events(execution_id: str, count: int) -> list[Event]:
    """``count`` console events, the usual kind of a long execution."""
    ts = utc_now()
    return [
        Event(execution_id, seq, ts, "console", {"level": "log", "text": f"line {seq}"})
        for seq in range(1, count + 1)
    ]


async def _repl_calls(store: Store, session: Session, count: int) -> Summary:
    """What the store does for each quick execution (sessions/execution.py): the log of a
    running execution, its echo and value appended, and its end committed with them."""
    samples: list[float] = []
    meter = CpuMeter(workers=False)
    for _ in range(count):
        running = _execution(session.id, status="running")
        finished = msgspec.structs.replace(running, status="ok", ended_at=utc_now())
        echo = msgspec.json.encode({"text": "1+1"}).decode()
        value = msgspec.json.encode({"type": "number", "preview": "2", "json": 2}).decode()
        started = time.perf_counter()
        log = store.events.open(running)
        log.append("input_echo", echo, running.started_at)
        log.append("value", value, running.started_at)
        await log.finish(finished)
        samples.append(time.perf_counter() - started)
    name = "one REPL's commit: its row and 2 events"
    return summarize(GROUP, name, samples, cpu=meter.per_op(count))


async def _finish(store: Store, session_id: str, events: int, count: int) -> Summary:
    executions = [_execution(session_id) for _ in range(count)]
    batches = [(execution, _events(execution.id, events)) for execution in executions]
    samples: list[float] = []
    meter = CpuMeter(workers=False)
    for execution, rows in batches:
        started = time.perf_counter()
        await store.finish_execution(execution, rows)
        samples.append(time.perf_counter() - started)
    rate = per_second(events, statistics.median(samples), "events/s")
    noun = "event" if events == 1 else "events"
    name = f"finish_execution, {events:,} {noun}"
    return summarize(GROUP, name, samples, rate, meter.per_op(count))


async def _list(store: Store, session_id: str, events: int, count: int) -> Summary:
    execution = _execution(session_id)
    await store.finish_execution(execution, _events(execution.id, events))
    samples: list[float] = []
    meter = CpuMeter(workers=False)
    for _ in range(count):
        started = time.perf_counter()
        listed = await store.list_events(execution.id)
        samples.append(time.perf_counter() - started)
        if len(listed) != events:
            raise BenchmarkError(f"list_events gave {len(listed)} events, not {events}")
    rate = per_second(events, statistics.median(samples), "events/s")
    return summarize(GROUP, f"list_events of {events:,}", samples, rate, meter.per_op(count))
