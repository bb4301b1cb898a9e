"""``vmctl exec ...``: run REPL snippets and files in a session, and read their records.

``exec repl`` and ``exec run-file`` print what the JavaScript printed and its
value, then exit 0 when the execution ended ``ok`` and 2 otherwise.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from vmctl.cli import format as fmt
from vmctl.cli import transcript
from vmctl.cli.client import ApiError
from vmctl.cli.context import EXIT_NOT_OK, CliContext, json_object, pass_cli, to_json
from vmctl.cli.models import Execution


def show_execution(cli: CliContext, start: Callable[[], Execution]) -> Execution:
    """Start an execution and print how it went.

    A run stopped by a limit (or by its worker dying) is recorded although the
    API answers with an error; its ``details.execution_id`` leads to the record,
    which is shown like any other.
    """
    try:
        execution = start()
    except ApiError as exc:
        execution_id = exc.details.get("execution_id")
        if not isinstance(execution_id, str):
            raise
        execution = cli.client.get_execution(execution_id)
    if cli.json:
        cli.echo(to_json(execution))
    else:
        text = transcript.render(execution, cli.client.list_events(execution.id))
        if text:
            cli.echo(text)
    return execution


def exit_with_status(execution: Execution) -> None:
    if execution.status != "ok":
        click.get_current_context().exit(EXIT_NOT_OK)


@click.group("exec")
def exec_() -> None:
    """Run code in sessions and inspect executions."""


@exec_.command("repl")
@click.argument("session_id")
@click.argument("code")
@pass_cli
def repl(cli: CliContext, session_id: str, code: str) -> None:
    """Evaluate CODE in the session (`-` reads it from standard input).

    Globals persist between snippets of the same session.
    """
    if code == "-":
        code = sys.stdin.read()
    exit_with_status(show_execution(cli, lambda: cli.client.repl(session_id, code)))


@exec_.command("run-file")
@click.argument("session_id")
@click.argument("path")
@click.option(
    "--args", callback=json_object, metavar="JSON", help="JSON object the script sees as __ARGS__."
)
@click.option(
    "--env", callback=json_object, metavar="JSON", help="JSON object the script sees as __ENV__."
)
@pass_cli
def run_file(
    cli: CliContext, session_id: str, path: str, args: dict[str, Any], env: dict[str, Any]
) -> None:
    """Run PATH (relative to the session's worktree) in the session."""
    execution = show_execution(cli, lambda: cli.client.run_file(session_id, path, args, env))
    exit_with_status(execution)


@exec_.command("list")
@click.argument("session_id")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@pass_cli
def list_(cli: CliContext, session_id: str, limit: int) -> None:
    """List a session's executions, newest first."""
    items = cli.client.list_executions(session_id, limit)
    cli.show(items, fmt.executions(items))


@exec_.command("get")
@click.argument("execution_id")
@pass_cli
def get(cli: CliContext, execution_id: str) -> None:
    """Show an execution record: status, timing, metrics, result or error."""
    found = cli.client.get_execution(execution_id)
    cli.show(found, fmt.execution(found))


@exec_.command("events")
@click.argument("execution_id")
@click.option("--after-seq", type=click.IntRange(min=0), default=0, show_default=True)
@pass_cli
def events(cli: CliContext, execution_id: str, after_seq: int) -> None:
    """List an execution's events in order (only those after --after-seq)."""
    items = cli.client.list_events(execution_id, after_seq)
    cli.show(items, fmt.events(items))
