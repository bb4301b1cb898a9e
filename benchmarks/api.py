"""Scenarios through HTTP against a real daemon (uvicorn, the session manager, the store).

- daemon start -> healthy, and SIGTERM -> exit at the end (one sample each);
- GET /health with httpx, and over a bare socket (what is left without the
  client library's own cost): the HTTP stack alone;
- session create -> ready (a worker spawned and its startup run), and close;
- POST /executions/repl ``1+1``, sequential on one keep-alive connection: the
  whole path of an execution, its store reads and writes included;
- the same from N sessions at once, one thread and one connection per
  session: requests/s across all of them and the latency each request saw;
- then the scenarios issue 14's targets are about, through a bare client
  (benchmarks/sessions.py), against the same daemon.

The client runs on the same cores as the daemon and its workers, so its own
CPU time is part of every number here; the CPU table says how much.
"""

from __future__ import annotations

import contextlib
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import httpx

from benchmarks import loop
from benchmarks.cpu import CpuMeter, CpuPerOp
from benchmarks.daemon import Daemon, running_daemon
from benchmarks.errors import BenchmarkError
from benchmarks.plan import Plan
from benchmarks.sessions import measure_sessions
from benchmarks.stats import Summary, Throughput, per_second, summarize

GROUP = "api"
CLIENT_TIMEOUT = 30.0  # any single request; the daemon's own limits end executions sooner


def measure_api(plan: Plan, home: Path) -> list[Summary]:
    """All the HTTP scenarios against one daemon whose home is ``home``."""
    started = time.perf_counter()
    with running_daemon(home) as daemon:
        results = [summarize(GROUP, "daemon start -> healthy", [time.perf_counter() - started])]
        with daemon.client(CLIENT_TIMEOUT) as client:
            body = _session_body(client, home / "worktree")
            results.append(_health(client, daemon, plan))
            results.append(_raw_health(daemon, plan))
            results += _session_lifecycle(client, daemon, body, plan)
            results.append(_sequential_repl(client, daemon, body, plan))
        results += loop.run(measure_sessions(daemon, body, plan))
        results.append(_concurrent_repl(daemon, body, plan))
        stopped = daemon.stop()
    results.append(summarize(GROUP, "daemon SIGTERM -> exit", [stopped]))
    return results


def _session_body(client: httpx.Client, worktree: Path) -> dict[str, str]:
    worktree.mkdir(parents=True, exist_ok=True)
    template = _expect(client.post("/templates", json={"name": "bench"}), 201)
    return {
        "template_id": template["id"],
        "workspace_id": "bench",
        "base_commit_oid": "0" * 40,
        "worktree_path": str(worktree),
    }


def _expect(response: httpx.Response, status: int) -> Any:
    """The response's JSON body; raise unless its status is ``status``."""
    if response.status_code != status:
        raise BenchmarkError(
            f"{response.request.method} {response.request.url.path} answered"
            f" {response.status_code} (expected {status}): {response.text[:500]}"
        )
    return response.json()


def _timed(
    plan: Plan, daemon: Daemon, count: int, call: Callable[[], object]
) -> tuple[list[float], CpuPerOp]:
    """``plan.warmup`` untimed calls, then ``count`` timed ones and their CPU per call."""
    for _ in range(plan.warmup):
        call()
    meter = CpuMeter(daemon.proc.pid)
    samples: list[float] = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples, meter.per_op(count)


def _sequential_rate(samples: list[float]) -> Throughput:
    """What one client waiting for each answer gets: one request per median latency."""
    return per_second(1, statistics.median(samples), "req/s")


# -- health


def _health(client: httpx.Client, daemon: Daemon, plan: Plan) -> Summary:
    samples, cpu = _timed(
        plan, daemon, plan.http_health, lambda: _expect(client.get("/health"), 200)
    )
    return summarize(GROUP, "GET /health", samples, _sequential_rate(samples), cpu)


def _raw_health(daemon: Daemon, plan: Plan) -> Summary:
    request = b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with socket.create_connection(("127.0.0.1", daemon.port), CLIENT_TIMEOUT) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with sock.makefile("rb") as stream:

            def call() -> None:
                sock.sendall(request)
                _read_response(stream, 200)

            samples, cpu = _timed(plan, daemon, plan.http_health, call)
    name = "GET /health, bare socket client"
    return summarize(GROUP, name, samples, _sequential_rate(samples), cpu)


def _read_response(stream: IO[bytes], status: int) -> bytes:
    """One HTTP/1.1 response with a Content-Length; its body. Raises unless it is ``status``."""
    status_line = stream.readline()
    if not status_line.startswith(f"HTTP/1.1 {status} ".encode()):
        raise BenchmarkError(f"expected {status}, got {status_line!r}")
    length = 0
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return stream.read(length)


# -- sessions


def _create_session(client: httpx.Client, body: dict[str, str]) -> str:
    session = _expect(client.post("/sessions", json=body), 201)
    if session["status"] != "ready":
        raise BenchmarkError(f"a new session is {session['status']}: {session.get('last_error')}")
    session_id: str = session["id"]
    return session_id


def _close_session(client: httpx.Client, session_id: str) -> None:
    session = _expect(client.post(f"/sessions/{session_id}/close"), 200)
    if session["status"] != "closed":
        raise BenchmarkError(f"session {session_id} is {session['status']} after its close")


@contextlib.contextmanager
def _session(client: httpx.Client, body: dict[str, str]) -> Iterator[str]:
    """A ready session, closed however the block ends (the daemon's stop would, too)."""
    session_id = _create_session(client, body)
    try:
        yield session_id
    finally:
        with contextlib.suppress(httpx.HTTPError, BenchmarkError):
            _close_session(client, session_id)


def _session_lifecycle(
    client: httpx.Client, daemon: Daemon, body: dict[str, str], plan: Plan
) -> list[Summary]:
    creates: list[float] = []
    closes: list[float] = []
    meter = CpuMeter(daemon.proc.pid)
    for _ in range(plan.http_sessions):
        started = time.perf_counter()
        with _session(client, body) as session_id:
            created = time.perf_counter()
            _close_session(client, session_id)
            closed = time.perf_counter()
        creates.append(created - started)
        closes.append(closed - created)
    return [
        # The CPU of a whole session's life: spawn, startup, close.
        summarize(
            GROUP, "POST /sessions (create -> ready)", creates, cpu=meter.per_op(len(creates))
        ),
        summarize(GROUP, "POST /sessions/{id}/close", closes),
    ]


# -- executions


def _repl(client: httpx.Client, session_id: str) -> None:
    body = {"session_id": session_id, "input": "1+1"}
    execution = _expect(client.post("/executions/repl", json=body), 201)
    if execution["status"] != "ok" or execution["result"]["json"] != 2:
        raise BenchmarkError(f"1+1 gave {execution}")


def _sequential_repl(
    client: httpx.Client, daemon: Daemon, body: dict[str, str], plan: Plan
) -> Summary:
    with _session(client, body) as session_id:
        samples, cpu = _timed(plan, daemon, plan.http_repls, lambda: _repl(client, session_id))
    name = "POST /executions/repl 1+1"
    return summarize(GROUP, name, samples, _sequential_rate(samples), cpu)


def _concurrent_repl(daemon: Daemon, body: dict[str, str], plan: Plan) -> Summary:
    sessions, count = plan.concurrent_sessions, plan.concurrent_requests
    stop = threading.Event()  # set on the way out, so the threads end early on failure
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(daemon.client(CLIENT_TIMEOUT)) for _ in range(sessions)]
        ids = [stack.enter_context(_session(client, body)) for client in clients]
        for client, session_id in zip(clients, ids, strict=True):
            _repl(client, session_id)  # warm each session up once
        pool = stack.enter_context(ThreadPoolExecutor(sessions, thread_name_prefix="bench"))
        stack.callback(stop.set)  # runs before the pool's exit waits for its threads
        meter = CpuMeter(daemon.proc.pid)
        started = time.perf_counter()
        futures = [
            pool.submit(_repl_loop, client, session_id, count, stop)
            for client, session_id in zip(clients, ids, strict=True)
        ]
        samples = [latency for future in futures for latency in future.result()]
        elapsed = time.perf_counter() - started
        cpu = meter.per_op(len(samples))
    name = f"POST /executions/repl 1+1, {sessions} sessions at once"
    return summarize(GROUP, name, samples, per_second(len(samples), elapsed, "req/s"), cpu)


def _repl_loop(
    client: httpx.Client, session_id: str, count: int, stop: threading.Event
) -> list[float]:
    samples: list[float] = []
    for _ in range(count):
        if stop.is_set():
            break
        started = time.perf_counter()
        _repl(client, session_id)
        samples.append(time.perf_counter() - started)
    return samples
