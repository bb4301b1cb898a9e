"""The daemon's metrics: what ``GET /metrics`` reports (docs/metrics.md).

One :class:`Metrics` per app: ``http/app.py:build_app`` makes it and hands it to the
rooms that count, as the session manager is handed its config. Each number is counted
in the one place that knows it: an ended execution in ``sessions/execution.py``
(``run_recorded``), a worker's crash in ``sessions/manager.py`` (``_mark_crashed``), a
session closed by its lifecycle (``_expire``) or replayed (``_replay_on``) there too, a
worker's start in ``workers/launcher.py`` (``launch``), a claim from the warm pool in
``sessions/pool.py`` (``claim``), a group commit of the event log
in ``store/eventlog.py`` (``_flush``), an HTTP request in ``http/metrics.py``. What the
daemon *is* now (sessions by status, live workers) is not counted as it changes: the
scrape reads it (:class:`DaemonState`) and sets it just before the exposition.

Each :class:`Metrics` has a registry of its own, never prometheus_client's process-wide
default, so two apps in one process (tests) count apart. Every label takes values from
a fixed set (the tuples below), so no client can grow the number of series.

This module imports prometheus_client and the standard library only: every room may
import it, and nothing else imports prometheus_client but ``http/metrics.py``.
"""

from __future__ import annotations

import dataclasses
from typing import Literal, get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# The label values, each a copy of the contract's vocabulary in vmctl/api/models.py
# (this module may not import it; tests/api/test_api_metrics.py checks they agree).
EXECUTION_STATUSES = ("ok", "error", "timeout", "cancelled", "crashed")  # ended ones
SESSION_STATUSES = ("starting", "ready", "crashed", "closed")
LIMITS = ("cpu_ms", "wall_ms", "mem_mb", "max_events", "max_output_kb")

# How a worker process was started (workers/launcher.py).
WorkerStart = Literal["fork", "spawn"]
WORKER_STARTS: tuple[WorkerStart, ...] = get_args(WorkerStart)

# Why a ready worker died without being asked to (workers/process.py: death_cause).
CrashCause = Literal[
    "exit",  # it exited on its own, whatever its code
    "signal",  # a signal the daemon did not send killed it (SIGSEGV, the OOM killer)
    "hard_deadline",  # killed at wall_ms + HARD_DEADLINE_GRACE: a native call ignored the interrupt
    "stop_timeout",  # killed STOP_GRACE after a cancel or a limit told it to stop
    "heartbeat",  # killed: an idle worker did not answer a ping
    "protocol_violation",  # killed: a frame the protocol does not allow, or an over-long line
    "stdout_closed",  # killed: it closed its stdout and lived on
]
CRASH_CAUSES: tuple[CrashCause, ...] = get_args(CrashCause)

# Which lifecycle timeout closed a session (sessions/expiry.py).
LifecycleTimeout = Literal["idle_timeout", "max_lifetime"]
LIFECYCLE_TIMEOUTS: tuple[LifecycleTimeout, ...] = get_args(LifecycleTimeout)
# How a restart's replay ended (sessions/replay.py): every execution ran again, one did not
# end ok, or the history was not whole (nothing ran).
ReplayOutcome = Literal["whole", "stopped", "incomplete"]
REPLAY_OUTCOMES: tuple[ReplayOutcome, ...] = get_args(ReplayOutcome)

# An execution's wall time, 1 ms to a minute (longer ones land in +Inf).
WALL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# A group commit of the event log, 0.25 ms to 2.5 s.
COMMIT_BUCKETS = (0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5)


@dataclasses.dataclass(frozen=True)
class DaemonState:
    """What a scrape reads of the daemon's state (``SessionManager.daemon_state``)."""

    sessions: dict[str, int]  # status -> sessions the store holds with it
    live_workers: int  # workers up and taking requests
    busy_workers: int  # of those, the ones running an execution
    forkserver_up: bool
    pooled_workers: int = 0  # started ahead of need, waiting in the warm pool


class Metrics:
    """The daemon's counters and histograms on a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.executions = Counter(
            "vmctl_executions",
            "Executions ended, by final status",
            ["status"],
            registry=registry,
        )
        self.execution_wall = Histogram(
            "vmctl_execution_wall_seconds",
            "Wall time of ended executions, from the request sent to the answer",
            buckets=WALL_BUCKETS,
            registry=registry,
        )
        self.events = Counter(
            "vmctl_events_ingested",
            "Events recorded by ended executions (their records' metrics.events)",
            registry=registry,
        )
        self.output_bytes = Counter(
            "vmctl_output_bytes_ingested",
            "Output bytes recorded by ended executions (their records' metrics.output_bytes)",
            registry=registry,
        )
        self.limit_stops = Counter(
            "vmctl_limit_stops",
            "Executions a limit ended, by limit",
            ["limit"],
            registry=registry,
        )
        self.worker_starts = Counter(
            "vmctl_worker_starts",
            "Worker processes started, by how: forked by the fork server or spawned",
            ["how"],
            registry=registry,
        )
        self.worker_crashes = Counter(
            "vmctl_worker_crashes",
            "Ready workers that died without being asked to, by cause",
            ["cause"],
            registry=registry,
        )
        self.store_commit = Histogram(
            "vmctl_store_commit_seconds",
            "Group commits of running executions' events, from handed to the writer to committed",
            buckets=COMMIT_BUCKETS,
            registry=registry,
        )
        self.pool_claims = Counter(
            "vmctl_worker_pool_claims",
            "Sessions whose worker was claimed from the warm pool",
            registry=registry,
        )
        self.sessions_expired = Counter(
            "vmctl_sessions_expired",
            "Sessions the daemon closed as their lifecycle timeout ran out, by which",
            ["timeout"],
            registry=registry,
        )
        self.replays = Counter(
            "vmctl_session_replays",
            "Restarts that replayed a session's executions, by how the replay ended",
            ["outcome"],
            registry=registry,
        )
        self.http_requests = Counter(
            "vmctl_http_requests",
            "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=registry,
        )
        self._state_gauges()
        # Every known series from the start, so the first of each is a rise from 0.
        for counter, values in (
            (self.executions, EXECUTION_STATUSES),
            (self.limit_stops, LIMITS),
            (self.worker_starts, WORKER_STARTS),
            (self.worker_crashes, CRASH_CAUSES),
            (self.sessions_expired, LIFECYCLE_TIMEOUTS),
            (self.replays, REPLAY_OUTCOMES),
        ):
            for value in values:
                counter.labels(value)

    def _state_gauges(self) -> None:
        registry = self.registry
        self.sessions = Gauge(
            "vmctl_sessions", "Sessions the store holds, by status", ["status"], registry=registry
        )
        self.live_workers = Gauge(
            "vmctl_workers_live", "Workers up and taking requests", registry=registry
        )
        self.busy_workers = Gauge(
            "vmctl_workers_busy", "Live workers running an execution", registry=registry
        )
        self.pool_size = Gauge(
            "vmctl_worker_pool_size",
            "Workers started ahead of need, waiting in the warm pool to be claimed",
            registry=registry,
        )
        self.forkserver_up = Gauge(
            "vmctl_forkserver_up",
            "1 while the fork server forks workers, 0 while they are spawned",
            registry=registry,
        )

    def exposition(self, state: DaemonState) -> bytes:
        """Everything, in the Prometheus text format (0.0.4), with ``state`` as it is now."""
        for status in SESSION_STATUSES:
            self.sessions.labels(status).set(state.sessions.get(status, 0))
        self.live_workers.set(state.live_workers)
        self.busy_workers.set(state.busy_workers)
        self.pool_size.set(state.pooled_workers)
        self.forkserver_up.set(1 if state.forkserver_up else 0)
        return generate_latest(self.registry)
