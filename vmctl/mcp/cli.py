"""The ``vmctl mcp`` command (registered by the CLI's root group, or run alone as
``python -m vmctl.mcp``). Importing it imports nothing of the MCP SDK."""

from __future__ import annotations

import os
from pathlib import Path

import click

URL_ENV = "VMCTL_URL"


@click.command("mcp")
@click.option(
    "--worktree",
    type=click.Path(exists=True, file_okay=False, resolve_path=True, path_type=Path),
    help="Where sessions the tools create work (run_file paths are relative to it).  "
    "[default: the current directory]",
)
@click.option(
    "--listen",
    metavar="HOST:PORT",
    help="Where to start the daemon when none runs (`vmctl up --listen`).  [default: up's]",
)
@click.pass_context
def mcp_command(ctx: click.Context, worktree: Path | None, listen: str | None) -> None:
    """Serve vmctl's tools to an LLM agent over MCP on stdin and stdout.

    Agent hosts launch it: {"command": "vmctl", "args": ["mcp"]}. It uses the daemon
    named by --server-url or $VMCTL_URL, else the one of $VMCTL_HOME, which it starts
    (as `vmctl up --detach` does) when none runs. See docs/mcp.md.
    """
    from vmctl.mcp.stdio import DaemonStartError, serve_stdio

    # The root group's --server-url and --token, when it is vmctl's.
    given = ctx.find_root().params
    url = given.get("server_url") or os.environ.get(URL_ENV)
    try:
        serve_stdio(url, given.get("token"), str(worktree) if worktree else None, listen)
    except DaemonStartError as exc:
        raise click.ClickException(str(exc)) from exc
