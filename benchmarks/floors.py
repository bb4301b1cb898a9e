"""The floors issue 14 measures vmctl against, on this machine, with nothing of vmctl in them.

- a pipe round trip: 64 bytes written to a Python child that echoes them, and
  read back (what a request to a worker and its answer cost at least);
- the same through asyncio streams on uvloop, a line written and a line read
  back, as the supervisor's side of a worker's pipes does it;
- a trivial Starlette request: ``GET /`` answered ``ok`` by a Starlette app on
  uvicorn with uvloop and httptools (the daemon's stack), from a bare socket
  client; the CPU table's "daemon" column is that server's CPU per request, the
  floor of the daemon's CPU per exec.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from benchmarks import loop
from benchmarks.api import _read_response
from benchmarks.cpu import CpuMeter
from benchmarks.daemon import START_TIMEOUT, STOP_TIMEOUT, die_with_parent, free_port
from benchmarks.errors import BenchmarkError
from benchmarks.plan import Plan
from benchmarks.stats import Summary, per_second, summarize

GROUP = "floor"
MESSAGE = b"x" * 63 + b"\n"
ECHO = "import os\nwhile chunk := os.read(0, 65536):\n    os.write(1, chunk)\n"
STARLETTE = """
import sys
import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

async def hello(request):
    return PlainTextResponse("ok")

app = Starlette(routes=[Route("/", hello)])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http="httptools",
            log_level="warning", access_log=False)
"""
CONNECT_TIMEOUT = 1.0
CONNECT_RETRY = 0.01


def measure_floors(plan: Plan, home: Path) -> list[Summary]:
    return [_pipe(plan), loop.run(_pipe_uvloop(plan)), _starlette(plan)]


def _timed(count: int, call: Callable[[], object]) -> list[float]:
    samples: list[float] = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


@contextlib.contextmanager
def _child(argv: list[str]) -> Iterator[subprocess.Popen[bytes]]:
    """A child process with pipes to it, stopped (SIGTERM, then SIGKILL) and reaped at the end."""
    with subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, preexec_fn=die_with_parent
    ) as proc:
        try:
            yield proc
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()


def _pipe(plan: Plan) -> Summary:
    with _child([sys.executable, "-c", ECHO]) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        out, back = proc.stdin.fileno(), proc.stdout.fileno()

        def round_trip() -> None:
            os.write(out, MESSAGE)
            received = 0
            while received < len(MESSAGE):
                chunk = os.read(back, 65536)
                if not chunk:
                    raise BenchmarkError("the echo child closed its pipe")
                received += len(chunk)

        for _ in range(plan.warmup):
            round_trip()
        samples = _timed(plan.floor_round_trips, round_trip)
    rate = per_second(1, statistics.median(samples), "req/s")
    return summarize(GROUP, "pipe round trip, 64 bytes, Python both ends", samples, rate)


async def _pipe_uvloop(plan: Plan) -> Summary:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", ECHO, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout
    try:

        async def round_trip() -> None:
            stdin.write(MESSAGE)
            if await stdout.readline() != MESSAGE:
                raise BenchmarkError("the echo child did not echo")

        for _ in range(plan.warmup):
            await round_trip()
        samples: list[float] = []
        for _ in range(plan.floor_round_trips):
            started = time.perf_counter()
            await round_trip()
            samples.append(time.perf_counter() - started)
    finally:
        stdin.close()  # the child ends at EOF
        async with asyncio.timeout(STOP_TIMEOUT):
            await proc.wait()
    rate = per_second(1, statistics.median(samples), "req/s")
    return summarize(
        GROUP, "pipe round trip, a line through asyncio streams (uvloop)", samples, rate
    )


def _starlette(plan: Plan) -> Summary:
    port = free_port()
    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with (
        _child([sys.executable, "-c", STARLETTE, str(port)]) as proc,
        _connect(port, proc) as sock,
        sock.makefile("rb") as stream,
    ):

        def call() -> None:
            sock.sendall(request)
            _read_response(stream, 200)

        for _ in range(plan.warmup):
            call()
        meter = CpuMeter(proc.pid, workers=False)
        samples = _timed(plan.floor_requests, call)
        cpu = meter.per_op(len(samples))
    rate = per_second(1, statistics.median(samples), "req/s")
    name = "trivial Starlette request (uvicorn), bare socket client"
    return summarize(GROUP, name, samples, rate, cpu)


def _connect(port: int, proc: subprocess.Popen[bytes]) -> socket.socket:
    """A connection to the server once it listens; raise if it exits or takes too long."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", port), CONNECT_TIMEOUT)
        except OSError as exc:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise BenchmarkError(f"the Starlette server did not start: {exc}") from exc
            time.sleep(CONNECT_RETRY)
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
