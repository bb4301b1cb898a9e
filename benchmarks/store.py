"""Scenarios against the store alone: one SQLite file, its writer and reader threads.

- the store's part of one REPL execution as the daemon does it: its log opened
  (store/eventlog.py), its two events appended (input echo and value), and its
  final record committed with them in one group commit (the template and settings
  come from the daemon's memory, sessions/catalog.py: no read);
- an execution of 1, 100 and N events committed: its log opened, its events
  appended, and its final row committed with them in one transaction (what every
  execution costs the store at its end);
- events_page of N events: what GET /executions/{id}/events reads, one page of
  them as the JSON the API answers.

Records and payloads are built before the clock starts; the clock times the store's
part only (for a commit, the appends to the log with it, as the daemon makes them).
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
from vmctl.api.models import Execution, Session, Settings, Template
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


def _execution(session_id: str) -> tuple[Execution, Execution]:
    """A running record and its final one."""
    running = Execution(
        id=new_id(), session_id=session_id, kind="repl", status="running", started_at=utc_now()
    )
    return running, msgspec.structs.replace(running, status="ok", ended_at=utc_now())


def _payloads(count: int) -> list[str]:
    """``count`` console payloads, the usual kind of event of a long execution, as a
    recorder hands them to the log: JSON text."""
    return [
        msgspec.json.encode({"level": "log", "text": f"line {seq}"}).decode()
        for seq in range(1, count + 1)
    ]


async def _commit(store: Store, running: Execution, final: Execution, payloads: list[str]) -> None:
    """An execution's events and final row, committed as the daemon does (sessions/execution.py)."""
    log = store.events.open(running)
    for payload in payloads:
        log.append("console", payload, running.started_at)
    await log.finish(final)


async def _repl_calls(store: Store, session: Session, count: int) -> Summary:
    """What the store does for each quick execution (sessions/execution.py): the log of a
    running execution, its echo and value appended, and its end committed with them."""
    samples: list[float] = []
    meter = CpuMeter(workers=False)
    for _ in range(count):
        running, finished = _execution(session.id)
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
    payloads = _payloads(events)
    samples: list[float] = []
    meter = CpuMeter(workers=False)
    for running, final in executions:
        started = time.perf_counter()
        await _commit(store, running, final, payloads)
        samples.append(time.perf_counter() - started)
    rate = per_second(events, statistics.median(samples), "events/s")
    noun = "event" if events == 1 else "events"
    name = f"an execution of {events:,} {noun}, committed"
    return summarize(GROUP, name, samples, rate, meter.per_op(count))


async def _list(store: Store, session_id: str, events: int, count: int) -> Summary:
    running, final = _execution(session_id)
    await _commit(store, running, final, _payloads(events))
    samples: list[float] = []
    meter = CpuMeter(workers=False)
    for _ in range(count):
        started = time.perf_counter()
        page = await store.events_page(running.id, 0, events)
        samples.append(time.perf_counter() - started)
        if page.last_seq != events or page.more:
            raise BenchmarkError(f"events_page ended at seq {page.last_seq}, not {events}")
    rate = per_second(events, statistics.median(samples), "events/s")
    return summarize(GROUP, f"events_page of {events:,}", samples, rate, meter.per_op(count))
