"""The options ``vmctl up`` hands to the daemon, checked with the daemon's own parsers.

``vmctl up`` checks every value with the function of ``vmctl/daemon_options.py`` the
daemon parses it with (a bad one is a usage error, exit 2, before anything starts),
then passes it through as the daemon's command line, where it is parsed again. The
access options (token, hosts, origins, worktree roots, the jail) come in one decorator,
:func:`access_options`, and go back out through :func:`access_argv`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from vmctl.daemon_options import (
    DEFAULT_SANDBOX,
    DEFAULT_WORKER_USER,
    SANDBOX_MODES,
    is_loopback,
    parse_host,
    parse_listen,
    parse_origin,
    parse_retain,
    parse_worker_user,
)

F = TypeVar("F", bound=Callable[..., None])


def check_listen(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        parse_listen(value)  # the daemon's own syntax: it parses the value again
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None
    return value


def checked_by(parse: Callable[[str], object]) -> Callable[..., tuple[str, ...]]:
    """An option callback: each value of a repeatable option is one ``parse`` accepts."""

    def check(
        ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
    ) -> tuple[str, ...]:
        for entry in value:
            try:
                parse(entry)
            except ValueError as exc:
                raise click.BadParameter(str(exc), ctx, param) from None
        return value

    return check


def checked_if_given(parse: Callable[[str], object]) -> Callable[..., str | None]:
    """An option callback: the value, if the option is given, is one ``parse`` accepts."""
    check_each = checked_by(parse)

    def check(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        return None if value is None else check_each(ctx, param, (value,))[0]

    return check


check_worker_user = checked_if_given(parse_worker_user)
# The daemon's own rule; the daemon parses the value again.
check_retain = checked_if_given(parse_retain)


_ACCESS_OPTIONS = [
    click.option(
        "--no-auth",
        is_flag=True,
        help="Serve without the API token. Refused unless --listen is a loopback address.",
    ),
    click.option(
        "--allow-host",
        "allow_hosts",
        multiple=True,
        callback=checked_by(parse_host),
        metavar="NAME",
        help="Also answer requests whose Host header is NAME (repeatable).",
    ),
    click.option(
        "--allow-origin",
        "allow_origins",
        multiple=True,
        callback=checked_by(parse_origin),
        metavar="ORIGIN",
        help="Also answer browser requests from ORIGIN, e.g. https://ui.example.org (repeatable).",
    ),
    click.option(
        "--worktree-root",
        "worktree_roots",
        multiple=True,
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        metavar="DIR",
        help="Sessions may work only under DIR (repeatable).  [default: your home and /tmp]",
    ),
    click.option(
        "--sandbox",
        type=click.Choice(SANDBOX_MODES),
        help=f"The workers' jail: strict, auto or off.  [default: {DEFAULT_SANDBOX}]",
    ),
    click.option(
        "--worker-user",
        callback=check_worker_user,
        metavar="USER",
        help="Name or uid workers run as when the daemon runs as root.  "
        f"[default: {DEFAULT_WORKER_USER}]",
    ),
]


def access_options(command: F) -> F:
    """Add the access options to ``command`` (in this order in its --help)."""
    for option in reversed(_ACCESS_OPTIONS):
        command = option(command)
    return command


def refuse_open_no_auth(listen: str, no_auth: bool) -> None:
    """A usage error for --no-auth on an address other machines can reach."""
    if no_auth and not is_loopback(parse_listen(listen)[0]):
        raise click.UsageError(
            f"--no-auth is refused with --listen {listen}: a daemon other machines can reach "
            "always needs the token (listen on 127.0.0.1, ::1 or localhost instead)"
        )


def access_argv(
    no_auth: bool,
    allow_hosts: tuple[str, ...],
    allow_origins: tuple[str, ...],
    worktree_roots: tuple[Path, ...],
    sandbox: str | None,
    worker_user: str | None,
) -> list[str]:
    """The access options as the daemon's command line (only those given)."""
    argv = ["--no-auth"] if no_auth else []
    argv += [arg for host in allow_hosts for arg in ("--allow-host", host)]
    argv += [arg for origin in allow_origins for arg in ("--allow-origin", origin)]
    argv += [arg for root in worktree_roots for arg in ("--worktree-root", str(root.resolve()))]
    argv += ["--sandbox", sandbox] if sandbox is not None else []
    argv += ["--worker-user", worker_user] if worker_user is not None else []
    return argv
