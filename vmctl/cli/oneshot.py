"""``vmctl run FILE``: run one file in a fresh session and leave nothing behind."""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import msgspec

from vmctl.api.models import Execution
from vmctl.api_token import TOKEN_BYTES, TOKEN_ENV
from vmctl.cli.attach import attach
from vmctl.cli.context import CliContext, json_object, pass_cli
from vmctl.cli.daemon import (
    DaemonStartError,
    daemon_argv,
    free_port,
    start_detached,
    stop,
    url_of,
)
from vmctl.cli.executions import exit_with_status
from vmctl.client import Client, ClientError
from vmctl.daemon_options import DB_NAME

TEMPLATE_PREFIX = "vmctl-run-"
WORKSPACE = "vmctl-run"
BASE_COMMIT = "none"


@click.command("run")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--timeout-ms",
    type=click.IntRange(min=1),
    help="Wall-clock and CPU time limit.  [default: the template's, 5000 and 2000]",
)
@click.option(
    "--args", callback=json_object, metavar="JSON", help="JSON object the file sees as __ARGS__."
)
@click.option(
    "--env", callback=json_object, metavar="JSON", help="JSON object the file sees as __ENV__."
)
@pass_cli
def run(
    cli: CliContext,
    file: Path,
    timeout_ms: int | None,
    args: dict[str, Any],
    env: dict[str, Any],
) -> None:
    """Run FILE once and print its console output and value.

    The session works in FILE's directory, with the fs module exposed; a .mjs
    file runs as an ES module. It uses
    the daemon at --server-url / VMCTL_URL, or the one `vmctl up` recorded in
    $VMCTL_HOME; with neither, it starts a temporary daemon (its own temporary
    VMCTL_HOME, a free port) and stops it after.
    The template and session made for the run are deleted and closed at the end.
    Output is printed as it happens; Ctrl-C cancels the run (exit 130).

    Exits 0 when the run ended ok, 2 when it did not, 1 when vmctl failed.
    """
    path = file.resolve()
    with contextlib.ExitStack() as stack:
        cli = daemon_for_run(cli, stack, path.parent)
        execution = run_once(cli, stack, path, timeout_ms, args, env)
    exit_with_status(execution)


def daemon_for_run(cli: CliContext, stack: contextlib.ExitStack, worktree: Path) -> CliContext:
    """The given daemon if there is one, else a temporary one stopped when ``stack`` closes:
    its token is made here and given to it, and ``worktree`` is its one worktree root."""
    if not cli.url_is_default:
        return cli
    home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vmctl-run-")))
    listen = f"127.0.0.1:{free_port()}"
    token = secrets.token_urlsafe(TOKEN_BYTES)
    argv = daemon_argv(listen, home / DB_NAME, options=["--worktree-root", str(worktree)])
    try:
        pid, _ = start_detached(home, url_of(listen), argv, {TOKEN_ENV: token})
    except DaemonStartError as exc:
        if exc.log_tail:
            cli.echo(exc.log_tail, err=True)
        raise click.ClickException(f"cannot start a temporary daemon: {exc}") from exc
    stack.callback(stop, pid)
    client = stack.enter_context(Client(url_of(listen), token))
    return dataclasses.replace(cli, client=client, url=client.base_url, token=token)


def run_once(
    cli: CliContext,
    stack: contextlib.ExitStack,
    path: Path,
    timeout_ms: int | None,
    args: dict[str, Any],
    env: dict[str, Any],
) -> Execution:
    """Template, session, run, in that order; ``stack`` closes and deletes them after."""
    client = cli.client
    template = client.create_template(TEMPLATE_PREFIX + uuid.uuid4().hex[:8])
    stack.callback(quietly, client.delete_template, template.id)
    client.add_module(template.id, "fs")
    settings = client.get_template(template.id).settings
    if timeout_ms is not None:
        limits = msgspec.structs.replace(settings.limits, wall_ms=timeout_ms, cpu_ms=timeout_ms)
        client.update_settings(template.id, limits=limits)
    if path.suffix == ".mjs":
        client.update_settings(
            template.id, runtime=msgspec.structs.replace(settings.runtime, esm=True)
        )
    session = client.create_session(
        template.id, path.parent, workspace_id=WORKSPACE, base_commit_oid=BASE_COMMIT
    )
    stack.callback(quietly, client.close_session, session.id)
    return attach(cli, lambda: client.run_file(session.id, path.name, args, env, wait=False))


def quietly(action: Callable[[str], object], resource_id: str) -> None:
    """Clean up after a run; a failure here must not hide how the run went."""
    with contextlib.suppress(ClientError):
        action(resource_id)
