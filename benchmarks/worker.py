"""Scenarios through the supervisor's worker handle: pipes only, no daemon, no store.

- spawn -> handshake: ``open_worker`` until the worker's Hello arrived (a fresh
  ``python -m vmctl.worker``: interpreter start, imports, engine attach);
- first REPL: ``1+1`` on that fresh worker (what a new session pays once);
- close: ``aclose`` (goodbye, then the kill ladder if needed, then the reap);
- the same three with a fork server (what the daemon does for quickjs workers):
  the fork server's own start once, then each worker forked from it (fork, its
  setup, engine attach), its first REPL, its close (the reap is the fork
  server's report);
- the same starts in the jail, as the daemon does them under ``--sandbox auto``
  (docs/security.md): what the jail costs a forked and a spawned worker;
- REPL round trip: ``1+1`` on a warm worker, request out and both events back;
- console: one snippet that calls console.log a thousand times, and a flood of a
  hundred thousand: each line formatted in JavaScript, batched by the worker's writer,
  decoded and recorded one event per line by the handle; events/s.
"""

from __future__ import annotations

import contextlib
import functools
import statistics
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psutil

from benchmarks.cpu import CpuMeter
from benchmarks.errors import BenchmarkError
from benchmarks.plan import Plan
from benchmarks.stats import Summary, per_second, summarize
from vmctl.api.models import Limits
from vmctl.daemon_options import DEFAULT_WORKER_USER
from vmctl.protocol import ExecRepl
from vmctl.supervisor.workers import Launcher, Outcome, SpawnSpec, WorkerHandle, open_worker
from vmctl.supervisor.workers.forkserver import ForkServer, open_forkserver
from vmctl.supervisor.workers.sandboxing import open_sandbox

GROUP = "worker"
MEM_MB = 128
# Generous, so that no limit ends a measured run; the handle still bounds each
# one by wall_ms plus its grace.
LIMITS = Limits(
    cpu_ms=10_000, wall_ms=10_000, mem_mb=MEM_MB, max_events=1_000_000, max_output_kb=1_000_000
)


def spawn_spec(workdir: Path) -> SpawnSpec:
    return SpawnSpec(argv=(sys.executable, "-m", "vmctl.worker"), cwd=str(workdir), mem_mb=MEM_MB)


async def measure_worker(plan: Plan, workdir: Path) -> list[Summary]:
    """All the worker scenarios, in a fresh directory used as the worktree."""
    workdir.mkdir(parents=True, exist_ok=True)
    results = await _spawn_use_close(plan, workdir, Launcher())
    started = time.perf_counter()
    forkserver = await open_forkserver()
    try:
        ready = time.perf_counter() - started
        results.append(summarize(GROUP, "fork server start -> ready", [ready]))
        results += await _spawn_use_close(plan, workdir, Launcher(forkserver), forkserver)
    finally:
        await forkserver.aclose()
    sandbox = await open_sandbox("auto", DEFAULT_WORKER_USER)
    jailed = ForkServer(netns=sandbox.wants_netns)
    launcher = Launcher(jailed, sandbox)
    await launcher.start()
    try:
        if not await launcher.wait_ready():
            raise BenchmarkError(f"the jailed fork server did not start: {jailed.lost_reason}")
        results += await _spawn_use_close(plan, workdir, launcher, jailed, jail=True)
        results += await _spawn_use_close(plan, workdir, Launcher(None, sandbox), jail=True)
    finally:
        await launcher.aclose()
    async with _open(workdir) as handle:
        results.append(await _round_trips(handle, plan))
        results.append(await _console(handle, plan.console_lines, plan.console_runs, plan))
        results.append(await _console(handle, plan.flood_lines, plan.flood_runs, plan))
    return results


@contextlib.asynccontextmanager
async def _open(workdir: Path) -> AsyncIterator[WorkerHandle]:
    handle = await open_worker(spawn_spec(workdir))
    try:
        yield handle
    finally:
        await handle.aclose()


async def repl(handle: WorkerHandle, code: str, events: int) -> Outcome:
    """Run ``code``; raise unless it ended ok with exactly ``events`` events."""
    job = functools.partial(ExecRepl, code=code)  # the handle sets the id and limits
    outcome = await handle.execute(job, LIMITS, echo=code)
    if outcome.status != "ok" or outcome.metrics.events != events:
        raise BenchmarkError(
            f"{code[:40]!r} ended {outcome.status} with {outcome.metrics.events} events"
            f" (expected ok with {events}): {outcome.message}"
        )
    return outcome


async def _spawn_use_close(
    plan: Plan,
    workdir: Path,
    launcher: Launcher,
    forkserver: ForkServer | None = None,
    *,
    jail: bool = False,
) -> list[Summary]:
    spawns: list[float] = []
    firsts: list[float] = []
    closes: list[float] = []
    meter = CpuMeter()
    for _ in range(plan.spawns):
        started = time.perf_counter()
        handle = await open_worker(spawn_spec(workdir), launcher)
        ready = time.perf_counter()
        try:
            _check_parent(handle, forkserver)
            if jail and not handle.sandbox:
                raise BenchmarkError(f"worker {handle.pid} runs without its jail")
            await repl(handle, "1+1", events=2)
            answered = time.perf_counter()
        finally:
            closing = time.perf_counter()
            await handle.aclose()
            closed = time.perf_counter()
        spawns.append(ready - started)
        firsts.append(answered - ready)
        closes.append(closed - closing)
    cpu = meter.per_op(len(spawns))  # a worker's whole life: start, first REPL, close
    if jail:
        how = "fork -> handshake (fork server)" if forkserver else "spawn -> handshake"
        return [summarize(GROUP, f"{how}, jailed", spawns, cpu=cpu)]
    if forkserver is not None:
        return [
            summarize(GROUP, "fork -> handshake (fork server)", spawns, cpu=cpu),
            summarize(GROUP, "first REPL 1+1 on a forked worker", firsts),
            summarize(GROUP, "close a forked worker", closes),
        ]
    return [
        summarize(GROUP, "spawn -> handshake", spawns, cpu=cpu),
        summarize(GROUP, "first REPL 1+1 on a fresh worker", firsts),
        summarize(GROUP, "close (aclose until reaped)", closes),
    ]


def _check_parent(handle: WorkerHandle, forkserver: ForkServer | None) -> None:
    """Raise unless the worker came the way the scenario says (no silent fallback)."""
    expected = forkserver.pid if forkserver is not None else psutil.Process().pid
    parent = psutil.Process(handle.pid).ppid()
    if parent != expected:
        raise BenchmarkError(f"worker {handle.pid} is the child of {parent}, not of {expected}")


async def _round_trips(handle: WorkerHandle, plan: Plan) -> Summary:
    for _ in range(plan.warmup):
        await repl(handle, "1+1", events=2)
    meter = CpuMeter()
    samples: list[float] = []
    for _ in range(plan.repl_round_trips):
        started = time.perf_counter()
        await repl(handle, "1+1", events=2)
        samples.append(time.perf_counter() - started)
    rate = per_second(1, statistics.median(samples), "req/s")
    return summarize(GROUP, "REPL 1+1 round trip", samples, rate, meter.per_op(len(samples)))


async def _console(handle: WorkerHandle, lines: int, runs: int, plan: Plan) -> Summary:
    """One snippet logging ``lines`` lines, ``runs`` times; throughput in console events/s."""
    code = f"for (let i = 0; i < {lines}; i++) console.log('line', i);"
    events = lines + 2  # input_echo and the value besides the console lines
    for _ in range(min(plan.warmup, 2)):
        await repl(handle, code, events)
    meter = CpuMeter()
    samples: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        await repl(handle, code, events)
        samples.append(time.perf_counter() - started)
    rate = per_second(lines, statistics.median(samples), "events/s")
    cpu = meter.per_op(len(samples))
    return summarize(GROUP, f"REPL with {lines} console.log lines", samples, rate, cpu)
