"""What every command receives: the client, the output mode, and thin printing."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import click
import msgspec

from vmctl.client import Client

EXIT_OK = 0
EXIT_ERROR = 1  # the command failed (API error, daemon unreachable); click.ClickException's code
EXIT_NOT_OK = 2  # the JavaScript ran but its execution ended other than "ok" (also click usage)
JSON_HELP = "Print the API's JSON instead of text."


def to_json(value: Any) -> str:
    """The API's JSON for ``value`` (Structs, lists of them, or plain data), indented."""
    return msgspec.json.format(msgspec.json.encode(value), indent=2).decode()


@dataclass
class CliContext:
    """Built once by the root group and handed to commands through click's context."""

    client: Client
    url: str
    url_is_default: bool  # neither --server-url, VMCTL_URL nor a running recorded daemon gave it
    json: bool
    color: bool | None  # None: let click decide (colour only on a terminal)
    token: str | None = None  # what the client sends: --token, $VMCTL_AUTH_TOKEN or the file
    token_given: str | None = None  # --token itself, which `vmctl up` hands to its daemon

    def echo(self, text: str, *, err: bool = False) -> None:
        click.echo(text, err=err, color=self.color)

    def show(self, value: Any, human: str) -> None:
        """Print ``value`` as JSON under ``--json``, else the human text made from it."""
        self.echo(to_json(value) if self.json else human)


def color_choice() -> bool | None:
    # https://no-color.org: any non-empty NO_COLOR turns colour off even on a terminal.
    return False if os.environ.get("NO_COLOR") else None


pass_cli = click.make_pass_decorator(CliContext)


def json_option() -> click.Option:
    """``--json`` for a command's own options: ``vmctl session list --json`` as ``gh`` and
    ``kubectl`` users type it, the same switch as the root group's ``--json``."""
    return click.Option(
        ["--json"], is_flag=True, expose_value=False, callback=_turn_on_json, help=JSON_HELP
    )


def _turn_on_json(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    # The root group has made the CliContext before a command's options are parsed.
    found = ctx.find_object(CliContext)
    if value and found is not None:
        found.json = True


def json_object(ctx: click.Context, param: click.Parameter, value: str | None) -> dict[str, Any]:
    """Option callback: the value is a JSON object, e.g. ``--args '{"n": 3}'``."""
    if value is None:
        return {}
    try:
        decoded = msgspec.json.decode(value)
    except msgspec.DecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", ctx, param) from None
    if not isinstance(decoded, dict):
        raise click.BadParameter("must be a JSON object, like '{\"key\": 1}'", ctx, param)
    return decoded
