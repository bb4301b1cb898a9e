"""The ``vmctl`` command: one click group, its global options, and the error policy.

Exit codes: 0 success; 1 the command failed (the API refused it, the daemon is
not running); 2 an execution ended other than ``ok``, and also click's own
usage errors (a bad option), as click does everywhere; 130 Ctrl-C stopped an
execution the command was attached to (:mod:`vmctl.cli.attach`).
"""

from __future__ import annotations

from typing import Any

import click

from vmctl.api_token import TOKEN_ENV, TokenError, client_token, token_path
from vmctl.cli import format as fmt
from vmctl.cli.console import console
from vmctl.cli.context import JSON_HELP, CliContext, color_choice, json_option, pass_cli
from vmctl.cli.daemon_record import running_record, vmctl_home
from vmctl.cli.doctor import doctor
from vmctl.cli.executions import exec_
from vmctl.cli.lifetime import down, logs, status, up
from vmctl.cli.oneshot import run
from vmctl.cli.sessions import session
from vmctl.cli.templates import template
from vmctl.client import ApiError, Client, ClientError, StreamLost
from vmctl.mcp.cli import mcp_command

DEFAULT_URL = "http://127.0.0.1:3210"


class VmctlGroup(click.Group):
    """The root group: client errors from any command become ``Error: ...`` and exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ClientError as exc:
            message = str(exc)
            if isinstance(exc, StreamLost):
                message = (
                    f"{exc.reason}; `vmctl exec follow {exc.execution_id} --after-seq"
                    f" {exc.after_seq}` picks up the execution's output from there"
                )
            if isinstance(exc, ApiError) and exc.code == "UNAUTHORIZED":
                message += (
                    f" — the daemon's token is in {token_path(str(vmctl_home()))} for the"
                    f" user who started it; pass it with --token or ${TOKEN_ENV}"
                )
            raise click.ClickException(message) from exc


def resolve_server_url(given: str | None) -> tuple[str, bool]:
    """The daemon's URL, and whether it is only the default (nothing named a daemon)."""
    if given:
        return given.rstrip("/"), False
    record = running_record(vmctl_home())
    return (record.url, False) if record is not None else (DEFAULT_URL, True)


@click.group(cls=VmctlGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--server-url",
    "--url",
    "server_url",
    envvar="VMCTL_URL",
    metavar="URL",
    help=f"The daemon's URL.  [default: $VMCTL_URL, else the running daemon's, else {DEFAULT_URL}]",
)
@click.option(
    "--token",
    metavar="TOKEN",
    help=f"The daemon's API token.  [default: ${TOKEN_ENV}, else the file $VMCTL_HOME/token]",
)
@click.option("--json", "json_output", is_flag=True, help=JSON_HELP)
@click.version_option(package_name="vmctl", prog_name="vmctl")
@click.pass_context
def cli(ctx: click.Context, server_url: str | None, token: str | None, json_output: bool) -> None:
    """Run JavaScript in isolated, stateful sessions served by a local daemon.

    Start the daemon with `vmctl up --detach`, then create a template, a
    session on a directory, and run code in it with `vmctl exec repl`.
    """
    url, is_default = resolve_server_url(server_url)
    try:
        found = client_token(str(vmctl_home()), token)
    except TokenError as exc:
        raise click.UsageError(str(exc)) from None
    client = ctx.with_resource(Client(url, found))
    ctx.obj = CliContext(
        client=client,
        url=url,
        url_is_default=is_default,
        json=json_output,
        color=color_choice(),
        token=found,
        token_given=token,
    )
    ctx.color = ctx.obj.color


@click.group("ops")
def ops() -> None:
    """Ask the daemon how it is."""


@ops.command("health")
@pass_cli
def health(ctx: CliContext) -> None:
    """Check that the daemon answers."""
    answer = ctx.client.health()
    ctx.show(answer, answer.status)


@ops.command("runtime-summary")
@pass_cli
def runtime_summary(ctx: CliContext) -> None:
    """Count the sessions whose worker is alive now."""
    summary = ctx.client.runtime_summary()
    ctx.show(summary, fmt.runtime_summary(summary))


def accept_json_after(group: click.Group) -> None:
    """Give every command and group under ``group`` its own ``--json`` (``vmctl session list
    --json``), so the flag works after any of them as well as before."""
    for command in group.commands.values():
        command.params.append(json_option())
        if isinstance(command, click.Group):
            accept_json_after(command)


for command in (
    up,
    down,
    status,
    logs,
    run,
    template,
    session,
    exec_,
    ops,
    doctor,
    mcp_command,
    console,
):
    cli.add_command(command)
accept_json_after(cli)


def main() -> None:
    """The ``vmctl`` console script."""
    cli(prog_name="vmctl")


if __name__ == "__main__":
    main()
