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
    DEFAULT_PORT,
    default_home,
    parse_engine,
    parse_listen,
)

__all__ = [
    "DB_NAME",
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "DEFAULT_LISTEN",
    "DEFAULT_MAX_SESSIONS",
    "DaemonConfig",
    "default_home",
    "parse_engine",
    "parse_listen",
]

MAX_BODY_BYTES = 1024 * 1024

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
# How long daemon shutdown waits for every worker's kill ladder together.
SHUTDOWN_TIMEOUT = 10.0
# How long uvicorn waits for in-flight requests once the workers are stopped.
GRACEFUL_SHUTDOWN_SECONDS = 5

# Upper bounds of a template's limits: what one execution may cost the daemon.
LIMIT_MAXIMUMS = {
    "cpu_ms": 3_600_000,
    "wall_ms": 3_600_000,
    "mem_mb": 16_384,
    "max_events": 1_000_000,
    "max_output_kb": 65_536,
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
    max_body_bytes: int = MAX_BODY_BYTES
    auth_token: str | None = None
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT

    def worker_command(self, engine: str) -> tuple[str, ...] | None:
        return self.engines.get(ENGINE_ALIASES.get(engine, engine))

    def library_path(self, name: str) -> str:
        return os.path.join(self.home, "libraries", f"{name}.js")

    def worker_log_path(self, session_id: str) -> str:
        return os.path.join(self.home, "sessions", session_id, "worker.log")
