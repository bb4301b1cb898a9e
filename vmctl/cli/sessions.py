"""``vmctl session ...``: live JavaScript runtimes, one worker process each."""

from __future__ import annotations

from pathlib import Path

import click

from vmctl.cli import format as fmt
from vmctl.cli.context import CliContext, pass_cli

DEFAULT_WORKSPACE = "default"
DEFAULT_BASE_COMMIT = "none"
STATUSES = ("starting", "ready", "crashed", "closed")

session_argument = click.argument("session_id")


@click.group("session")
def session() -> None:
    """Create, inspect, restart and close sessions."""


@session.command("create")
@click.option("--template-id", required=True, metavar="TEMPLATE", help="Template id or name.")
@click.option("--workspace-id", default=DEFAULT_WORKSPACE, show_default=True)
@click.option("--base-commit", default=DEFAULT_BASE_COMMIT, show_default=True)
@click.option(
    "--worktree-path",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=".",
    help="Directory the session's files are resolved in.  [default: current directory]",
)
@pass_cli
def create(
    cli: CliContext, template_id: str, workspace_id: str, base_commit: str, worktree_path: Path
) -> None:
    """Start a session: a worker runs the template's libraries and startup files."""
    created = cli.client.create_session(
        cli.client.template_id(template_id),
        worktree_path.resolve(),
        workspace_id=workspace_id,
        base_commit_oid=base_commit,
    )
    cli.show(created, f"Created session {created.id}\n{fmt.session(created)}")


@session.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="Only sessions in this status.")
@pass_cli
def list_(cli: CliContext, status: str | None) -> None:
    """List sessions, newest first."""
    items = cli.client.list_sessions(status)
    cli.show(items, fmt.sessions(items))


@session.command("get")
@session_argument
@pass_cli
def get(cli: CliContext, session_id: str) -> None:
    """Show a session, with its worker and last error."""
    found = cli.client.get_session(session_id)
    cli.show(found, fmt.session(found))


@session.command("close")
@session_argument
@pass_cli
def close(cli: CliContext, session_id: str) -> None:
    """Stop the session's worker; closing a closed session does nothing."""
    closed = cli.client.close_session(session_id)
    cli.show(closed, f"Closed session {closed.id}")


@session.command("restart")
@session_argument
@click.option(
    "--replay", is_flag=True, help="Run the executions since the state started again on it."
)
@pass_cli
def restart(cli: CliContext, session_id: str, replay: bool) -> None:
    """Give a crashed (or ready) session a fresh worker.

    Its JavaScript state is lost, unless --replay runs the executions that made it again
    (those that ended ok since the state last started fresh, in order).
    """
    restarted = cli.client.restart_session(session_id, replay=replay)
    cli.show(restarted, f"Restarted session {restarted.id}\n{fmt.session(restarted)}")
