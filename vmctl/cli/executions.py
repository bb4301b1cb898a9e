"""``vmctl exec ...``: run REPL snippets and files in a session, and read their records.

``exec repl`` and ``exec run-file`` start the execution without waiting for it
and print what the JavaScript prints as it happens, then its value
(:mod:`vmctl.cli.attach`); they exit 0 when the execution ended ``ok`` and 2
otherwise. ``--no-wait`` prints the execution's id instead; ``exec follow``
attaches to it later, from any event on.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from vmctl.api.models import Execution
from vmctl.cli import format as fmt
from vmctl.cli.attach import attach
from vmctl.cli.context import EXIT_NOT_OK, CliContext, json_object, pass_cli, to_json

NO_WAIT_HELP = "Print the execution's id (its record under --json) and return at once."


def run_or_start(cli: CliContext, start: Callable[[], Execution], no_wait: bool) -> None:
    """Attach to the execution ``start`` begins and exit with its status, or with
    ``no_wait`` say which it is and leave it running."""
    if no_wait:
        execution = start()
        cli.echo(to_json(execution) if cli.json else execution.id)
    else:
        exit_with_status(attach(cli, start))


def exit_with_status(execution: Execution) -> None:
    if execution.status != "ok":
        click.get_current_context().exit(EXIT_NOT_OK)


@click.group("exec")
def exec_() -> None:
    """Run code in sessions and inspect executions."""


@exec_.command("repl")
@click.argument("session_id")
@click.argument("code")
@click.option("--no-wait", is_flag=True, help=NO_WAIT_HELP)
@pass_cli
def repl(cli: CliContext, session_id: str, code: str, no_wait: bool) -> None:
    """Evaluate CODE in the session (`-` reads it from standard input).

    Globals persist between snippets of the same session. Output is printed as
    it happens; Ctrl-C cancels the execution (twice: leaves it running).
    """
    if code == "-":
        code = sys.stdin.read()
    run_or_start(cli, lambda: cli.client.repl(session_id, code, wait=False), no_wait)


@exec_.command("run-file")
@click.argument("session_id")
@click.argument("path")
@click.option(
    "--args", callback=json_object, metavar="JSON", help="JSON object the script sees as __ARGS__."
)
@click.option(
    "--env", callback=json_object, metavar="JSON", help="JSON object the script sees as __ENV__."
)
@click.option("--no-wait", is_flag=True, help=NO_WAIT_HELP)
@pass_cli
def run_file(
    cli: CliContext,
    session_id: str,
    path: str,
    args: dict[str, Any],
    env: dict[str, Any],
    no_wait: bool,
) -> None:
    """Run PATH (relative to the session's worktree) in the session.

    Output is printed as it happens; Ctrl-C cancels the execution (twice:
    leaves it running).
    """

    def start() -> Execution:
        return cli.client.run_file(session_id, path, args, env, wait=False)

    run_or_start(cli, start, no_wait)


@exec_.command("follow")
@click.argument("execution_id")
@click.option(
    "--after-seq",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Print only the events after this one.",
)
@pass_cli
def follow(cli: CliContext, execution_id: str, after_seq: int) -> None:
    """Print an execution's output, as it happens while it runs, and how it ended.

    Works on a running or an ended execution. Exits 0 when it ended ok, 2
    otherwise; Ctrl-C cancels it (twice: leaves it running).
    """
    exit_with_status(attach(cli, lambda: cli.client.get_execution(execution_id), after_seq))


@exec_.command("cancel")
@click.argument("execution_id")
@pass_cli
def cancel(cli: CliContext, execution_id: str) -> None:
    """Stop a running execution and show its record once it has ended.

    The session keeps its state, unless the worker had to be killed (the session
    is then crashed). An ended execution is shown as it is.
    """
    ended = cli.client.cancel_execution(execution_id)
    cli.show(ended, fmt.execution(ended))


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
