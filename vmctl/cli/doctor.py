"""``vmctl doctor``: which layers of the workers' jail this host provides, and why not.

It probes this host itself (as the user running it: a daemon started by root gets the
uid layer, one started by another user does not), then shows what the running daemon,
if one answers, reported at its start. Exit status 1 when a required layer is missing.
"""

from __future__ import annotations

import click

from vmctl.api.models import SandboxLayer
from vmctl.cli.context import CliContext, pass_cli
from vmctl.client import ClientError
from vmctl.daemon_options import DEFAULT_WORKER_USER


@click.command("doctor")
@click.option(
    "--worker-user",
    default=DEFAULT_WORKER_USER,
    show_default=True,
    help="The user a root daemon drops its workers to (as `vmctl up --worker-user`).",
)
@pass_cli
def doctor(ctx: CliContext, worker_user: str) -> None:
    """Check, layer by layer, the jail this host gives workers."""
    # Imported here, not at the top: only this command needs ctypes and the kernel calls.
    from vmctl.sandbox.probe import probe

    host = probe(worker_user)
    layers = [SandboxLayer(r.name, r.available, r.required, r.detail) for r in host.layers]
    lines = [f"This host, probed now (uid {'0, root' if host.root else 'not root'}):"]
    lines += _layer_lines(layers)
    missing = [layer.name for layer in layers if layer.required and not layer.available]
    report: dict[str, object] = {"host": layers, "daemon": None}
    try:
        summary = ctx.client.runtime_summary()
    except ClientError as exc:
        lines.append(f"No daemon report: {exc}")
    else:
        report["daemon"] = summary.sandbox
        if summary.sandbox is not None:
            lines.append(f"The daemon at {ctx.url} (--sandbox {summary.sandbox.mode}):")
            lines += _layer_lines(summary.sandbox.layers)
            missing = summary.sandbox.missing
    if missing:
        lines.append(
            f"Missing: {', '.join(missing)}. Under --sandbox auto workers start without "
            "them; under --sandbox strict no worker starts."
        )
    else:
        lines.append("Every layer of the jail is available.")
    report["missing"] = missing
    ctx.show(report, "\n".join(lines))
    if missing:
        click.get_current_context().exit(1)


def _layer_lines(layers: list[SandboxLayer]) -> list[str]:
    width = max(len(layer.name) for layer in layers)
    lines = []
    for layer in layers:
        mark = "ok" if layer.available else ("--" if not layer.required else "NO")
        lines.append(f"  {mark:2}  {layer.name:<{width}}  {layer.detail}")
    return lines
