"""``vmctl console``: the address of the daemon's web console, signed in."""

from __future__ import annotations

from urllib.parse import urlencode

import click

from vmctl.cli.context import CliContext, pass_cli


@click.command("console")
@click.option("--open", "open_browser", is_flag=True, help="Open it in the default browser.")
@pass_cli
def console(cli: CliContext, open_browser: bool) -> None:
    """Print the web console's address.

    It carries the daemon's token once: the page trades it for a cookie and drops it
    from the address bar. Anyone who has the address can use the daemon.
    """
    cli.client.health()  # a daemon that does not answer is a clear error, not a dead link
    url = f"{cli.url}/"
    if cli.token:
        url += "?" + urlencode({"token": cli.token})
    cli.show({"url": url}, url)
    if open_browser:
        click.launch(url)
