"""What the daemon is started with, and the home of every default it has.

:class:`DaemonConfig` is the daemon's command line as one Struct; the constants
below are the graces and bounds the rooms use. A default is written here and
nowhere else, with one exception: the defaults a user sees on the command line
(listen address, database name, max sessions, handshake timeout, home) and the
syntax of its options are in ``vmctl/daemon_options.py``, because ``vmctl up``
shares them and the CLI imports nothing of the daemon; this module imports
them from there. It imports nothing else of vmctl's.
"""

from __future__ import annotations

import os
import sys

import msgspec

from vmctl.daemon_options import (
    DB_NAME,
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_HOST,
    DEFAULT_LISTEN,
    DEFAULT_MAX_SESSIONS,
    DEFAULT_POOL_SIZE,
    DEFAULT_PORT,
    DEFAULT_SANDBOX,
    DEFAULT_WORKER_USER,
    default_home,
    default_worktree_roots,
    is_loopback,
    parse_engine,
    parse_listen,
)

__all__ = [
    "DB_NAME",
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "DEFAULT_LISTEN",
    "DEFAULT_MAX_SESSIONS",
    "DEFAULT_POOL_SIZE",
    "DaemonConfig",
    "default_home",
    "is_loopback",
    "parse_engine",
    "parse_listen",
]

MAX_BODY_BYTES = 1024 * 1024

# -- bounds of a connection, before any request is authenticated (connections.py) ---------

# Open connections at once; one more is answered 503 and closed. Each holds at most a
# request head (below) and one read of 256 KiB: together ~70 MiB at worst, given back.
MAX_CONNECTIONS = 256
# A request's URL and headers: more is refused with 400 (as the bytes arrive, for a head
# that has not ended).
MAX_HEAD_BYTES = 16 * 1024
# Seconds a connection has to deliver a whole request head, from its opening or from
# the end of the previous response; a client that trickles or idles is then closed.
HEAD_TIMEOUT = 5.0
# Seconds a request has to deliver its whole body, from the end of its head; one that
# stops mid-way is then answered 400 and closed. (1 MiB at most: 100 KiB/s is enough.)
BODY_TIMEOUT = 10.0
# Seconds an idle connection stays open after a response (uvicorn's keep-alive).
KEEP_ALIVE_TIMEOUT = 5

# The engine name vm-system's own clients send; it runs our QuickJS worker.
ENGINE_ALIASES = {"goja": "quickjs"}

# -- graces and bounds --------------------------------------------------------------------

# The worker interrupts scripts itself at wall_ms and answers within milliseconds; this
# grace only covers a native operation that cannot be interrupted (or a stuck worker),
# and a loaded machine.
HARD_DEADLINE_GRACE = 1.0
# How long a worker told to stop (a limit was reached, a cancel) has to send its terminal
# frame before it is killed.
STOP_GRACE = 1.0
# The kill ladder of a worker's close: after the goodbye and stdin EOF, after SIGTERM to
# the group, and after SIGKILL (only a process stuck in the kernel takes longer to be reaped).
ASK_GRACE = 0.5
TERM_GRACE = 0.5
KILL_WAIT = 5.0
# After a worker's exit, for the pipes' last bytes (the stderr tail of a crash). Only a
# process that left the worker's group can hold them open that long.
DRAIN_GRACE = 0.25
# lifecycle.restart "on-crash": the first restart after a death waits RESTART_BACKOFF, each
# next one twice as long (at most RESTART_BACKOFF_MAX); a session whose worker died
# FLAP_LIMIT times within FLAP_WINDOW seconds is left crashed.
RESTART_BACKOFF = 0.5
RESTART_BACKOFF_MAX = 10.0
FLAP_LIMIT = 5
FLAP_WINDOW = 60.0
# lifecycle.idle_timeout_ms and max_lifetime_ms: at most a year; a longer one is surely a
# unit mistake, and null turns the timeout off.
LIFECYCLE_MAXIMUM_MS = 365 * 24 * 3600 * 1000
# An idle worker's answer to a heartbeat ping (its reader thread answers at once).
HEARTBEAT_TIMEOUT = 5.0
DEFAULT_HEARTBEAT_INTERVAL = 30.0
# The warm pool (sessions/pool.py): a template and worktree on which no session was
# created for this long has its waiting workers closed.
POOL_IDLE_SECONDS = 600.0
# How long after a create its key's pool starts being refilled: the forks then do not share
# a small machine's cores with the new session's first execution (measured on 2 cores: that
# execution took ~4 ms beside the forks, ~2.7 ms without).
POOL_REFILL_DELAY = 0.05
# Waiting workers of one key that died unclaimed in a row before the pool stops replacing
# them (until the next session on that key).
POOL_DEATHS_BEFORE_PAUSE = 3

# How long daemon shutdown waits for every worker's kill ladder together.
SHUTDOWN_TIMEOUT = 10.0
# How long uvicorn waits for in-flight requests once the workers are stopped.
GRACEFUL_SHUTDOWN_SECONDS = 5

# Upper bounds of a template's limits, chosen so that every session at its maxima at once
# fits the machine (docs/behaviour.md, "What the maxima cost", has the arithmetic: 64
# sessions on 24 GiB). The daemon holds an execution's events until it ends, about 0.5 KiB
# per event plus 1.4 bytes per payload byte (measured): 100,000 events and 8 MiB of
# output are at most ~60 MiB of the daemon per execution. A worker is its heap plus ~20
# MiB. Time costs no memory: a long run holds no more than a short one.
LIMIT_MAXIMUMS = {
    "cpu_ms": 3_600_000,
    "wall_ms": 3_600_000,
    "mem_mb": 256,
    "max_events": 100_000,
    "max_output_kb": 8_192,
}


def builtin_engines() -> dict[str, tuple[str, ...]]:
    return {"quickjs": (sys.executable, "-m", "vmctl.worker")}


class DaemonConfig(msgspec.Struct, frozen=True):
    home: str
    db_path: str
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    # Engine name -> worker command. Only the daemon's command line adds to it.
    engines: dict[str, tuple[str, ...]] = msgspec.field(default_factory=builtin_engines)
    max_sessions: int = DEFAULT_MAX_SESSIONS
    # Ready workers kept waiting per template and worktree in use (sessions/pool.py); 0: none.
    pool_size: int = DEFAULT_POOL_SIZE
    max_body_bytes: int = MAX_BODY_BYTES
    # None: no auth (only allowed when the daemon listens on loopback only).
    auth_token: str | None = None
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT
    # Host names and origins answered besides loopback and the listen address (http/hosts.py).
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    # Real paths a session's worktree must lie under (sessions/paths.py).
    worktree_roots: tuple[str, ...] = msgspec.field(default_factory=default_worktree_roots)
    # The workers' jail: "strict", "auto" or "off"; and whom they run as when we are root.
    # --retain: (seconds, None) for an age, (None, count) for a count, (None, None) forever.
    retain: tuple[int | None, int | None] = (30 * 86400, None)
    heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL  # 0: no heartbeat
    log_file: str | None = None  # None: log to stderr
    log_max_bytes: int = 10 * 1024 * 1024
    sandbox: str = DEFAULT_SANDBOX
    worker_user: str = DEFAULT_WORKER_USER

    def worker_command(self, engine: str) -> tuple[str, ...] | None:
        return self.engines.get(ENGINE_ALIASES.get(engine, engine))

    def library_path(self, name: str) -> str:
        return os.path.join(self.home, "libraries", f"{name}.js")

    def worker_log_path(self, session_id: str) -> str:
        return os.path.join(self.home, "sessions", session_id, "worker.log")

    def pool_dir(self) -> str:
        """Where waiting workers log their stderr until a session claims one (pool.py)."""
        return os.path.join(self.home, "pool")
