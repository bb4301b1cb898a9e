"""The daemon's command line as ``vmctl up`` and ``python -m vmctl.supervisor`` both read it.

The defaults a user sees (listen address, database name, max sessions,
warm pool size, handshake timeout, ``$VMCTL_HOME``, worktree roots, sandbox mode) and the
syntax of the options that take a structured value. The CLI checks what it is
given with the same functions the daemon parses it with, so the two cannot
disagree, and imports nothing of the daemon to do so. Standard library only;
every other default of the daemon is in ``vmctl/supervisor/config.py``.
"""

from __future__ import annotations

import ipaddress
import os
import pwd
import re
import shlex
import tempfile
from urllib.parse import urlsplit

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3210
DEFAULT_LISTEN = f"{DEFAULT_HOST}:{DEFAULT_PORT}"
DEFAULT_MAX_SESSIONS = 64
# Workers kept started, jailed and handshaken per template and worktree in use (0: none).
DEFAULT_POOL_SIZE = 2
MAX_POOL_SIZE = 16
DEFAULT_HANDSHAKE_TIMEOUT = 10.0  # seconds from a worker's start to its Hello
DB_NAME = "vmctl.db"  # in $VMCTL_HOME
SANDBOX_MODES = ("strict", "auto", "off")
DEFAULT_SANDBOX = "auto"
# The uid workers run as when the daemon runs as root (the jail's; unused otherwise).
DEFAULT_WORKER_USER = "nobody"

# POSIX user names as useradd takes them; a uid is digits.
_USER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?")


def default_home() -> str:
    """``$VMCTL_HOME``, else ``~/.vmctl``, made absolute (not created)."""
    return os.path.abspath(os.path.expanduser(os.environ.get("VMCTL_HOME") or "~/.vmctl"))


def make_home(path: str) -> None:
    """Create ``$VMCTL_HOME`` (and its parents) if missing, and make it its owner's only."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)


def default_worktree_roots() -> tuple[str, ...]:
    """Where sessions may work unless ``--worktree-root`` says otherwise: the home directory
    of the user running this (from the password database, not ``$HOME``) and the system's
    temporary directory, each with its symlinks resolved."""
    try:
        home = pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:  # a uid without a passwd entry (some containers)
        home = os.path.expanduser("~")
    return tuple(dict.fromkeys(os.path.realpath(p) for p in (home, tempfile.gettempdir())))


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` too) as (host, port); ValueError says what is wrong."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT with a port from 1 to 65535, got {value!r}")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a listen host or a Host header's name, without brackets) can
    only be this machine: ``localhost``, 127.0.0.0/8 or ::1."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_pool_size(value: str) -> int:
    """``--pool-size``: the ready workers kept per template and worktree in use, 0 to
    :data:`MAX_POOL_SIZE` (0 turns the warm pool off)."""
    if not value.isdigit() or int(value) > MAX_POOL_SIZE:
        raise ValueError(f"expected an integer from 0 to {MAX_POOL_SIZE}, got {value!r}")
    return int(value)


def parse_engine(value: str) -> tuple[str, tuple[str, ...]]:
    """``NAME=COMMAND`` as (name, argv); ValueError says what is wrong."""
    name, sep, command = value.partition("=")
    argv = tuple(shlex.split(command))
    if not sep or not name or not argv:
        raise ValueError(f"expected NAME=COMMAND, got {value!r}")
    return name, argv


def parse_host(value: str) -> str:
    """An ``--allow-host`` name: a DNS name or an IP address (IPv6 with or without
    brackets), no port; lowercased, without brackets."""
    name = value.strip().lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    if not _HOST_NAME.fullmatch(name) or len(name) > 253:
        raise ValueError(f"expected a host name or an IP address (no port), got {value!r}")
    return name


def parse_origin(value: str) -> str:
    """An origin, ``http(s)://HOST[:PORT]``, in the form a browser sends in ``Origin``
    (lowercase, no default port, no path); ValueError says what is wrong. The daemon
    compares a request's ``Origin`` with ``--allow-origin`` values in this form."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        raise ValueError(f"expected an origin like https://host[:port], got {value!r}") from None
    scheme = parts.scheme.lower()
    if (
        scheme not in _DEFAULT_PORTS
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        raise ValueError(f"expected an origin like https://host[:port], got {value!r}")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    suffix = f":{port}" if port is not None and port != _DEFAULT_PORTS[scheme] else ""
    return f"{scheme}://{host}{suffix}"


def parse_worktree_root(value: str) -> str:
    """A ``--worktree-root``: an existing directory, returned absolute with its symlinks
    resolved (the form session worktrees are compared with)."""
    path = os.path.realpath(os.path.expanduser(value))
    if not os.path.isdir(path):
        raise ValueError(f"not a directory: {value!r}")
    return path


DEFAULT_RETAIN = "30d"
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_retain(value: str) -> tuple[int | None, int | None]:
    """``--retain``: an age (``30d``, ``12h``, ``90m``, ``3600s``) as (seconds, None), a
    count of ended executions to keep (``10000``) as (None, count), or ``forever``."""
    if value == "forever":
        return None, None
    if value.isdigit() and int(value) > 0:
        return None, int(value)
    number, unit = value[:-1], value[-1:]
    if number.isdigit() and int(number) > 0 and unit in _AGE_UNITS:
        return int(number) * _AGE_UNITS[unit], None
    raise ValueError(
        f"expected an age such as 30d, 12h, 90m or 3600s, a count such as 10000, "
        f"or forever, got {value!r}"
    )


def parse_sandbox(value: str) -> str:
    if value not in SANDBOX_MODES:
        raise ValueError(f"expected one of {', '.join(SANDBOX_MODES)}, got {value!r}")
    return value


def parse_worker_user(value: str) -> str:
    """A ``--worker-user``: a user name or a numeric uid (checked for form only: the user
    need exist only where the daemon runs as root, and is looked up there)."""
    if value.isdigit() and int(value) < 2**32 - 1:
        return str(int(value))
    if not _USER_NAME.fullmatch(value):
        raise ValueError(f"expected a user name or a numeric uid, got {value!r}")
    return value
