"""The daemon's command line as ``vmctl up`` and ``python -m vmctl.supervisor`` both read it.

The defaults a user sees (listen address, database name, max sessions,
handshake timeout, ``$VMCTL_HOME``) and the syntax of the options that take a
structured value. The CLI checks what it is given with the same functions the
daemon parses it with, so the two cannot disagree, and imports nothing of the
daemon to do so. Standard library only; every other default of the daemon is
in ``vmctl/supervisor/config.py``.
"""

from __future__ import annotations

import os
import shlex

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3210
DEFAULT_LISTEN = f"{DEFAULT_HOST}:{DEFAULT_PORT}"
DEFAULT_MAX_SESSIONS = 64
DEFAULT_HANDSHAKE_TIMEOUT = 10.0  # seconds from a worker's start to its Hello
DB_NAME = "vmctl.db"  # in $VMCTL_HOME


def default_home() -> str:
    """``$VMCTL_HOME``, else ``~/.vmctl``, made absolute (not created)."""
    return os.path.abspath(os.path.expanduser(os.environ.get("VMCTL_HOME") or "~/.vmctl"))


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` too) as (host, port); ValueError says what is wrong."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT with a port from 1 to 65535, got {value!r}")
    return host.strip("[]"), int(port)


def parse_engine(value: str) -> tuple[str, tuple[str, ...]]:
    """``NAME=COMMAND`` as (name, argv); ValueError says what is wrong."""
    name, sep, command = value.partition("=")
    argv = tuple(shlex.split(command))
    if not sep or not name or not argv:
        raise ValueError(f"expected NAME=COMMAND, got {value!r}")
    return name, argv
