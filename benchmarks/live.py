"""Live executions through HTTP against a real daemon: floods, visibility, cancel.

- 99,998 console lines persisted: ``POST /executions/repl`` of a loop of
  ``console.log`` until its 201 (every event committed; with the echo and the value,
  100,000 events: the ``max_events`` maximum);
- the same, answered: then every event read back with one page of ``GET .../events``;
- the daemon's RSS: before any flood, after one flood (the ``201``, no read-back)
  and a short settle, and after all of them and the read-backs and a settle: the
  memory a flood leaves behind;
- event -> visible: a snippet logs ``Date.now()`` every 20 ms; a client long-polls
  the events and, as each line arrives, notes how long after its ``Date.now()`` it
  became visible (millisecond resolution, one clock);
- cancel -> ended: an endless loop started with ``"wait": false``, then ``POST
  .../cancel`` until its answer (the record, ``cancelled``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from benchmarks.api import CLIENT_TIMEOUT, _expect, _session, _session_body
from benchmarks.cpu import CpuMeter
from benchmarks.daemon import running_daemon
from benchmarks.errors import BenchmarkError
from benchmarks.plan import Plan
from benchmarks.stats import Summary, aggregate, per_second, summarize

GROUP = "live"
FLOOD_LINES = 99_998
FLOOD_ROW = f"{FLOOD_LINES:,} console lines persisted (201)"
RSS_ROW = "daemon RSS growth after one flood, MiB"
# What a flood of FLOOD_LINES needs: with its echo and value, max_events exactly.
FLOOD_LIMITS = {"max_events": 100_000, "max_output_kb": 8192, "wall_ms": 60_000, "cpu_ms": 60_000}
MIB = 1024 * 1024
FLOOD = f"for (let i = 0; i < {FLOOD_LINES}; i++) console.log(i); 'flooded'"
TICKS = "let t = Date.now(); for (let i = 0; i < {n}; i++) {{ while (Date.now() - t < 20) {{}} t = Date.now(); console.log(String(t)) }} 'ticked'"  # noqa: E501
SPIN = "for (;;) {}"


def measure_live(plan: Plan, home: Path) -> list[Summary]:
    with running_daemon(home) as daemon, daemon.client(CLIENT_TIMEOUT) as client:
        body = _session_body(client, home / "worktree")
        template = body["template_id"]
        settings = {"limits": FLOOD_LIMITS}
        _expect(client.put(f"/templates/{template}/settings", json=settings), 200)
        with _session(client, body) as session_id:
            rss = _RssMeter(daemon.proc.pid, plan.rss_settle_s)
            _flood(client, session_id, "1+1", 2)  # every path once before "before"
            rss.start()
            _flood(client, session_id, FLOOD, FLOOD_LINES + 2)
            results = [rss.growth(RSS_ROW)]
            results += _floods(client, session_id, plan, daemon.proc.pid)
            results.append(rss.growth("daemon RSS growth after every flood and read-back, MiB"))
            results.insert(0, rss.before())
            results.append(_visibility(client, session_id, plan))
            results.append(_cancels(client, session_id, plan))
    return results


class _RssMeter:
    """The daemon's resident memory now and after each phase, each read after a settle."""

    def __init__(self, pid: int, settle: float) -> None:
        self._process = psutil.Process(pid)
        self._settle = settle
        self._before = 0.0

    def _mib(self) -> float:
        return float(self._process.memory_info().rss) / MIB

    def start(self) -> None:
        self._before = self._mib()

    def before(self) -> Summary:
        return aggregate(GROUP, "daemon RSS before the floods, MiB", self._before, 1, "MiB")

    def growth(self, name: str) -> Summary:
        time.sleep(self._settle)  # what the daemon gives back soon after is not growth
        return aggregate(GROUP, name, self._mib() - self._before, 1, "MiB")


def _flood(client: httpx.Client, session_id: str, code: str, events: int) -> None:
    body = {"session_id": session_id, "input": code}
    record = _expect(client.post("/executions/repl", json=body), 201)
    if record["status"] != "ok" or record["metrics"]["events"] != events:
        raise BenchmarkError(f"{code[:30]!r} ended {record['status']}: {record['metrics']}")


def _floods(client: httpx.Client, session_id: str, plan: Plan, pid: int) -> list[Summary]:
    persisted: list[float] = []
    answered: list[float] = []
    meter = CpuMeter(pid)
    for _ in range(plan.live_floods):
        started = time.perf_counter()
        record = _expect(
            client.post("/executions/repl", json={"session_id": session_id, "input": FLOOD}),
            201,
        )
        done = time.perf_counter()
        page = client.get(f"/executions/{record['id']}/events", params={"limit": 100_000})
        events = _expect(page, 200)
        finished = time.perf_counter()
        if len(events) != FLOOD_LINES + 2 or record["metrics"]["events"] != FLOOD_LINES + 2:
            raise BenchmarkError(f"the flood recorded {len(events)} events: {record['status']}")
        persisted.append(done - started)
        answered.append(finished - started)
    cpu = meter.per_op(len(answered))
    rate = per_second(FLOOD_LINES, min(answered), "lines/s")
    return [
        summarize(GROUP, FLOOD_ROW, persisted),
        summarize(
            GROUP, f"{FLOOD_LINES:,} console lines persisted and read back", answered, rate, cpu
        ),
    ]


def _visibility(client: httpx.Client, session_id: str, plan: Plan) -> Summary:
    code = TICKS.format(n=plan.live_ticks)
    record = _expect(
        client.post(
            "/executions/repl", json={"session_id": session_id, "input": code, "wait": False}
        ),
        202,
    )
    delays: list[float] = []
    after = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        events: list[dict[str, Any]] = _expect(
            client.get(
                f"/executions/{record['id']}/events",
                params={"after_seq": after, "wait_ms": 5000},
            ),
            200,
        )
        seen = time.time() * 1000
        for event in events:
            if event["type"] == "console":
                delays.append(max(0.0, seen - int(event["payload"]["text"])) / 1000)
            if event["type"] == "value":
                return summarize(GROUP, "event -> visible (long-poll)", delays)
        if events:
            after = events[-1]["seq"]
    raise BenchmarkError("the ticking snippet did not end within 60 s")


def _cancels(client: httpx.Client, session_id: str, plan: Plan) -> Summary:
    samples: list[float] = []
    for _ in range(plan.live_cancels):
        record = _expect(
            client.post(
                "/executions/repl",
                json={"session_id": session_id, "input": SPIN, "wait": False},
            ),
            202,
        )
        # It runs once its echo is committed; then the cancel is timed to its answer.
        _expect(client.get(f"/executions/{record['id']}/events", params={"wait_ms": 5000}), 200)
        started = time.perf_counter()
        ended = _expect(client.post(f"/executions/{record['id']}/cancel"), 200)
        samples.append(time.perf_counter() - started)
        if ended["status"] != "cancelled":
            raise BenchmarkError(f"a cancelled loop ended {ended['status']}")
    return summarize(GROUP, "cancel -> ended (soft interrupt)", samples)
