"""``vmctl mcp``: the tools over stdio, against the local daemon (started when none runs).

An agent host launches ``vmctl mcp`` and speaks MCP on its stdin and stdout, so nothing
else may reach stdout: the daemon is found or started by ``vmctl --json up --detach`` in
a subprocess whose output is captured. That command is the CLI's own, documented
behaviour (docs/cli.md): it starts the daemon of ``$VMCTL_HOME`` in the background unless
it already runs, and prints its record, whose ``url`` is all this needs. The daemon
outlives the MCP server, as one started by ``vmctl up --detach`` does; ``vmctl down``
stops it.
"""

from __future__ import annotations

import os
import subprocess
import sys

import anyio
import msgspec

from vmctl.mcp.adapter import Defaults
from vmctl.mcp.tools import build_server

# `vmctl up --detach` waits up to 20 s for a daemon to answer its health check.
UP_TIMEOUT = 60.0
UP_TRIES = 2  # a second `vmctl mcp` starting at the same moment loses the race once


class DaemonStartError(Exception):
    """``vmctl up --detach`` failed; the message has what it said."""


class _Record(msgspec.Struct):
    url: str


def local_daemon_url(listen: str | None = None) -> str:
    """The URL of the daemon of ``$VMCTL_HOME``, started first (on ``listen``, else
    ``vmctl up``'s default address) if it is not running."""
    argv = [sys.executable, "-m", "vmctl.cli.main", "--json", "up", "--detach"]
    argv += ["--listen", listen] if listen else []
    said = ""
    for _ in range(UP_TRIES):
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=UP_TIMEOUT,
            check=False,
        )
        if done.returncode == 0:
            return msgspec.json.decode(done.stdout, type=_Record).url
        said = (done.stderr or done.stdout).strip()
    raise DaemonStartError(f"cannot start the vmctl daemon (`vmctl up --detach`): {said}")


def default_worktree() -> str:
    """The current directory, where hosts start a project's MCP servers; not ``/`` (some
    hosts start them there), which no daemon accepts: the home directory instead."""
    here = os.getcwd()
    return os.path.expanduser("~") if here == os.path.sep else here


def serve_stdio(
    url: str | None, token: str | None, worktree: str | None, listen: str | None = None
) -> None:
    """Serve the tools on stdin and stdout until the host closes them.

    ``url`` None: the local daemon (:func:`local_daemon_url`, started on ``listen`` if it
    must be); ``token`` None: the one the CLI would find; ``worktree`` None:
    :func:`default_worktree`.
    """
    url = url or local_daemon_url(listen)
    server = build_server(url, token, Defaults(worktree or default_worktree()))
    anyio.run(server.run_stdio_async)
