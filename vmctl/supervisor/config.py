"""What the daemon is started with: its command line, as one Struct."""

from __future__ import annotations

import os
import sys

import msgspec

DEFAULT_LISTEN = "127.0.0.1:3210"

# The engine name vm-system's own clients send; it runs our QuickJS worker.
ENGINE_ALIASES = {"goja": "quickjs"}


def default_home() -> str:
    return os.environ.get("VMCTL_HOME") or os.path.join(os.path.expanduser("~"), ".vmctl")


def builtin_engines() -> dict[str, tuple[str, ...]]:
    return {"quickjs": (sys.executable, "-m", "vmctl.worker")}


class DaemonConfig(msgspec.Struct, frozen=True):
    home: str
    db_path: str
    host: str = "127.0.0.1"
    port: int = 3210
    # Engine name -> worker command. Only the daemon's command line adds to it.
    engines: dict[str, tuple[str, ...]] = msgspec.field(default_factory=builtin_engines)
    max_sessions: int = 64
    max_body_bytes: int = 1024 * 1024
    auth_token: str | None = None
    handshake_timeout: float = 10.0

    def worker_command(self, engine: str) -> tuple[str, ...] | None:
        return self.engines.get(ENGINE_ALIASES.get(engine, engine))

    def library_path(self, name: str) -> str:
        return os.path.join(self.home, "libraries", f"{name}.js")

    def worker_log_path(self, session_id: str) -> str:
        return os.path.join(self.home, "sessions", session_id, "worker.log")
