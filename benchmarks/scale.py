"""How the numbers scale, against a daemon of its own (``--only scale`` runs it alone).

- with sessions: 1, 4, 16 and 64 sessions, each driven by one task on its own
  connection for a fixed number of ``1+1`` each (:func:`benchmarks.sessions.drive`):
  requests/s over the scenario and the latency of every request. The daemon gets
  ``--max-sessions`` above the largest count;
- with output: a REPL printing 1, 100, 10,000 and 99,998 lines (with its echo and
  value, the ``max_events`` maximum) until its ``201``: every event persisted.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from benchmarks import loop
from benchmarks.api import CLIENT_TIMEOUT, _expect, _session_body
from benchmarks.bare import open_bare
from benchmarks.daemon import Daemon, running_daemon
from benchmarks.errors import BenchmarkError
from benchmarks.live import FLOOD_LIMITS
from benchmarks.plan import Plan
from benchmarks.sessions import Body, drive, open_sessions
from benchmarks.stats import Summary, per_second, summarize

GROUP = "scale"
MAX_SESSIONS_HEADROOM = 16  # --max-sessions is the largest count plus this


def measure_scale(plan: Plan, home: Path) -> list[Summary]:
    cap = max(plan.scale_sessions) + MAX_SESSIONS_HEADROOM
    with running_daemon(home, ("--max-sessions", str(cap))) as daemon:
        with daemon.client(CLIENT_TIMEOUT) as client:
            body = _session_body(client, home / "worktree")
            settings = {"limits": FLOOD_LIMITS}
            _expect(client.put(f"/templates/{body['template_id']}/settings", json=settings), 200)
        return loop.run(_scale(daemon, body, plan))


async def _scale(daemon: Daemon, body: Body, plan: Plan) -> list[Summary]:
    results = []
    for count in plan.scale_sessions:
        async with open_sessions(daemon, body, count) as ids:
            name = f"1+1, {count} session{'s' if count > 1 else ''} driven at once"
            results.append(await drive(daemon, ids, plan.scale_execs, GROUP, name))
    async with open_sessions(daemon, body, 1) as (session_id,):
        for lines, runs in plan.scale_outputs:
            results.append(await _output(daemon, session_id, lines, runs, plan.warmup))
    return results


async def _output(daemon: Daemon, session_id: str, lines: int, runs: int, warmup: int) -> Summary:
    """A REPL printing ``lines`` lines, ``runs`` times, until its 201; lines/s of the median."""
    code = f"for (let i = 0; i < {lines}; i++) console.log(i); 'printed'"
    body = {"session_id": session_id, "input": code}
    samples: list[float] = []
    async with open_bare(daemon) as client:
        for run in range(min(warmup, 2) + runs):
            started = time.perf_counter()
            record = await client.call("POST", "/executions/repl", body, 201)
            took = time.perf_counter() - started
            if record["status"] != "ok" or record["metrics"]["events"] != lines + 2:
                raise BenchmarkError(f"{lines} lines ended {record['status']}: {record['metrics']}")
            if run >= min(warmup, 2):
                samples.append(took)
    rate = per_second(lines, statistics.median(samples), "lines/s")
    noun = "line" if lines == 1 else "lines"
    return summarize(GROUP, f"REPL printing {lines:,} {noun}, persisted (201)", samples, rate)
