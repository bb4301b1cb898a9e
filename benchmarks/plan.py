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
    store_small: int  # finish_execution with 1 and with 100 events
    store_large: int  # finish_execution with store_events events, then list_events of them
    store_events: int
    live_floods: int  # 99,998 console lines through HTTP, persisted and read back
    live_ticks: int  # lines 20 ms apart whose visibility is timed
    live_cancels: int  # cancel -> ended of an endless loop


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
)
