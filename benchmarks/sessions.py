"""The API scenarios issue 14's targets are about, through the bare client (benchmarks/bare.py).

- ``1+1`` sequential on one session: the latency, and the daemon's CPU per exec; and
  the same with a pause before each, as a client that thinks between requests (an agent,
  a person) sends them: the daemon, its worker and its threads wait idle in between;
- ``1+1`` from 4 sessions at once, each driven by its own task and connection:
  requests/s over the scenario (:func:`drive`, which the ``scale`` group reuses);
- new session -> first result: ``POST /sessions`` then its first ``POST
  /executions/repl``, end to end; the close after it is not timed, and a short
  pause before each create lets whatever the daemon does in the background
  between sessions (reaping, a warm pool's refill) finish, as it would between
  users;
- idle sessions' memory: a few sessions, each after one ``1+1``, then the PSS
  and USS of their (forked) workers, read with psutil.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import AsyncIterator

import psutil

from benchmarks.bare import BareClient, open_bare
from benchmarks.cpu import CpuMeter
from benchmarks.daemon import Daemon
from benchmarks.errors import BenchmarkError
from benchmarks.plan import Plan
from benchmarks.stats import Summary, aggregate, per_second, summarize, summarize_values

GROUP = "api"
AT_ONCE = 4
EXEC_ROW = "POST /executions/repl 1+1, bare client"
EXEC_CPU_ROW = "daemon CPU per exec of the row above, µs"
IDLE_EXEC_ROW = "POST /executions/repl 1+1 after {gap} ms idle, bare client"
AT_ONCE_ROW = f"POST /executions/repl 1+1, {AT_ONCE} sessions at once, bare client"
FIRST_RESULT_ROW = "new session -> first result (create, first REPL)"
PSS_ROW = "idle session PSS, MiB"
USS_ROW = "idle session USS, MiB"
MIB = 1024 * 1024

Body = dict[str, str]


async def measure_sessions(daemon: Daemon, body: Body, plan: Plan) -> list[Summary]:
    """The target scenarios against a running daemon; ``body`` creates a session."""
    results = await _sequential(daemon, body, plan)
    async with open_sessions(daemon, body, AT_ONCE) as ids:
        results.append(await drive(daemon, ids, plan.at_once_execs, GROUP, AT_ONCE_ROW))
    results.append(await _first_results(daemon, body, plan))
    results += await _idle_memory(daemon, body, plan)
    return results


async def repl(client: BareClient, session_id: str) -> None:
    body = {"session_id": session_id, "input": "1+1"}
    execution = await client.call("POST", "/executions/repl", body, 201)
    if execution["status"] != "ok" or execution["result"]["json"] != 2:
        raise BenchmarkError(f"1+1 gave {execution}")


async def create_session(client: BareClient, body: Body) -> str:
    session = await client.call("POST", "/sessions", body, 201)
    if session["status"] != "ready":
        raise BenchmarkError(f"a new session is {session['status']}: {session.get('last_error')}")
    session_id: str = session["id"]
    return session_id


async def close_session(client: BareClient, session_id: str) -> None:
    session = await client.call("POST", f"/sessions/{session_id}/close", None, 200)
    if session["status"] != "closed":
        raise BenchmarkError(f"session {session_id} is {session['status']} after its close")


@contextlib.asynccontextmanager
async def open_sessions(daemon: Daemon, body: Body, count: int) -> AsyncIterator[list[str]]:
    """``count`` ready sessions, closed at the end (each phase on a connection of its own,
    since the daemon closes one left idle for 5 s)."""
    ids: list[str] = []
    try:
        async with open_bare(daemon) as client:
            for _ in range(count):
                ids.append(await create_session(client, body))
        yield ids
    finally:
        async with open_bare(daemon) as client:
            for session_id in ids:
                await close_session(client, session_id)


async def drive(daemon: Daemon, ids: list[str], execs: int, group: str, name: str) -> Summary:
    """Each session driven by one task on its own connection, ``execs`` ``1+1`` each:
    the latency of every request, and requests/s over the whole scenario."""
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(open_bare(daemon)) for _ in ids]
        for client, session_id in zip(clients, ids, strict=True):
            await repl(client, session_id)  # each session warm once
        meter = CpuMeter(daemon.proc.pid)
        started = time.perf_counter()
        async with asyncio.TaskGroup() as tasks:
            loops = [
                tasks.create_task(_repl_loop(client, session_id, execs))
                for client, session_id in zip(clients, ids, strict=True)
            ]
        elapsed = time.perf_counter() - started
    samples = [latency for task in loops for latency in task.result()]
    cpu = meter.per_op(len(samples))
    return summarize(group, name, samples, per_second(len(samples), elapsed, "req/s"), cpu)


async def _repl_loop(client: BareClient, session_id: str, count: int) -> list[float]:
    samples: list[float] = []
    for _ in range(count):
        started = time.perf_counter()
        await repl(client, session_id)
        samples.append(time.perf_counter() - started)
    return samples


async def _sequential(daemon: Daemon, body: Body, plan: Plan) -> list[Summary]:
    async with open_sessions(daemon, body, 1) as (session_id,), open_bare(daemon) as client:
        for _ in range(plan.warmup):
            await repl(client, session_id)
        meter = CpuMeter(daemon.proc.pid)
        latencies = await _repl_loop(client, session_id, plan.bare_repls)
        cpu = meter.per_op(len(latencies))
        after_idle = []
        for _ in range(plan.idle_repls):
            await asyncio.sleep(plan.idle_gap_s)
            after_idle += await _repl_loop(client, session_id, 1)
    daemon_us = (cpu.daemon_ms or 0.0) * 1000  # a daemon scenario: never None
    rate = per_second(1, statistics.median(latencies), "req/s")
    idle_row = IDLE_EXEC_ROW.format(gap=round(plan.idle_gap_s * 1000))
    return [
        summarize(GROUP, EXEC_ROW, latencies, rate, cpu),
        aggregate(GROUP, EXEC_CPU_ROW, daemon_us, len(latencies), "µs"),
        summarize(GROUP, idle_row, after_idle),
    ]


async def _first_results(daemon: Daemon, body: Body, plan: Plan) -> Summary:
    async with open_bare(daemon) as client:
        for _ in range(plan.warmup):
            await _first_result(client, body, plan.first_result_gap_s)
        meter = CpuMeter(daemon.proc.pid)
        samples = [
            await _first_result(client, body, plan.first_result_gap_s)
            for _ in range(plan.first_results)
        ]
    # The CPU of a whole session's life: create, first REPL, close.
    return summarize(GROUP, FIRST_RESULT_ROW, samples, cpu=meter.per_op(len(samples)))


async def _first_result(client: BareClient, body: Body, gap: float) -> float:
    await asyncio.sleep(gap)
    started = time.perf_counter()
    session_id = await create_session(client, body)
    try:
        await repl(client, session_id)
        return time.perf_counter() - started
    finally:
        await close_session(client, session_id)


async def _idle_memory(daemon: Daemon, body: Body, plan: Plan) -> list[Summary]:
    async with open_sessions(daemon, body, plan.idle_sessions) as ids:
        async with open_bare(daemon) as client:
            pids = []
            for session_id in ids:
                await repl(client, session_id)
                session = await client.call("GET", f"/sessions/{session_id}", None, 200)
                pids.append(int(session["runtime_meta"]["pid"]))
        await asyncio.sleep(plan.idle_settle_s)
        infos = [psutil.Process(pid).memory_full_info() for pid in pids]
    return [
        summarize_values(GROUP, PSS_ROW, [info.pss / MIB for info in infos], "MiB"),
        summarize_values(GROUP, USS_ROW, [info.uss / MIB for info in infos], "MiB"),
    ]
