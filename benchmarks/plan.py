"""How many times each scenario runs: the default plan and the ``--quick`` one.

Counts are fixed, so a run's length is bounded by its plan (and every wait in
it by a timeout), never by how long it takes the numbers to settle.
"""

from __future__ import annotations

import msgspec


class Plan(msgspec.Struct, frozen=True):
    """Iteration counts per scenario; ``warmup`` untimed rounds precede the timed loops."""

    warmup: int
    spawns: int  # worker spawn -> handshake, first REPL, close
    repl_round_trips: int  # `1+1` through the handle
    console_runs: int  # the console-heavy snippet through the handle
    console_lines: int  # console.log calls in that snippet
    flood_runs: int  # the console flood through the handle
    flood_lines: int  # console.log calls in that one
    http_repls: int  # sequential POST /executions/repl
    http_health: int  # sequential GET /health
    http_sessions: int  # session create -> ready, then close
    concurrent_sessions: int  # sessions driven at once
    concurrent_requests: int  # REPL requests per concurrent session
    store_small: int  # executions of 1 and of 100 events, committed
    store_large: int  # executions of store_events events, then events_page of them
    store_events: int
    live_floods: int  # 99,998 console lines through HTTP, persisted and read back
    live_ticks: int  # lines 20 ms apart whose visibility is timed
    live_cancels: int  # cancel -> ended of an endless loop
    rss_settle_s: float  # the pause before the daemon's RSS is read after floods
    bare_repls: int  # sequential POST /executions/repl through the bare client
    idle_repls: int  # the same, each after idle_gap_s of nothing
    idle_gap_s: float
    at_once_execs: int  # REPL requests per session, 4 sessions at once, bare client
    first_results: int  # session create, first REPL (then close)
    first_result_gap_s: float  # the pause before each of those creates
    idle_sessions: int  # sessions whose workers' PSS and USS are read
    idle_settle_s: float  # the pause before reading them
    floor_round_trips: int  # pipe round trips to an echoing child
    floor_requests: int  # GET / of a trivial Starlette app
    scale_sessions: tuple[int, ...]  # session counts driven at once (group scale)
    scale_execs: int  # REPL requests per session at each count
    scale_outputs: tuple[tuple[int, int], ...]  # (lines printed, runs) (group scale)


DEFAULT = Plan(
    warmup=5,
    spawns=20,
    repl_round_trips=2000,
    console_runs=30,
    console_lines=1000,
    flood_runs=10,
    flood_lines=100_000,
    http_repls=1000,
    http_health=1000,
    http_sessions=20,
    concurrent_sessions=8,
    concurrent_requests=100,
    store_small=200,
    store_large=10,
    store_events=10_000,
    live_floods=5,
    live_ticks=100,
    live_cancels=20,
    rss_settle_s=1.0,
    bare_repls=2000,
    idle_repls=30,
    idle_gap_s=0.1,
    at_once_execs=500,
    first_results=50,
    first_result_gap_s=0.02,
    idle_sessions=8,
    idle_settle_s=0.5,
    floor_round_trips=2000,
    floor_requests=2000,
    scale_sessions=(1, 4, 16, 64),
    scale_execs=200,
    scale_outputs=((1, 200), (100, 100), (10_000, 20), (99_998, 5)),
)

QUICK = Plan(
    warmup=2,
    spawns=3,
    repl_round_trips=100,
    console_runs=3,
    console_lines=1000,
    flood_runs=2,
    flood_lines=100_000,
    http_repls=50,
    http_health=50,
    http_sessions=3,
    concurrent_sessions=4,
    concurrent_requests=10,
    store_small=20,
    store_large=2,
    store_events=10_000,
    live_floods=1,
    live_ticks=20,
    live_cancels=3,
    rss_settle_s=0.1,
    bare_repls=50,
    idle_repls=3,
    idle_gap_s=0.1,
    at_once_execs=10,
    first_results=3,
    first_result_gap_s=0.02,
    idle_sessions=2,
    idle_settle_s=0.1,
    floor_round_trips=50,
    floor_requests=50,
    scale_sessions=(1, 4),
    scale_execs=10,
    scale_outputs=((1, 3), (10_000, 2)),
)
