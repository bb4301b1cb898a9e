"""``vmctl template ...``: runtime profiles, their settings, startup files, modules, libraries.

Every TEMPLATE argument takes a template id or a template name.
"""

from __future__ import annotations

from typing import Any

import click
import msgspec

from vmctl.cli import format as fmt
from vmctl.cli.context import CliContext, json_object, pass_cli

template_argument = click.argument("template_ref", metavar="TEMPLATE")


@click.group("template")
def template() -> None:
    """Manage templates: the runtime profiles sessions start from."""


@template.command("create")
@click.option("--name", required=True, help="Unique template name.")
@click.option(
    "--engine", help="Worker engine: quickjs (default) or one given to `vmctl up --engine`."
)
@pass_cli
def create(cli: CliContext, name: str, engine: str | None) -> None:
    """Create a template with the default settings."""
    created = cli.client.create_template(name, engine)
    cli.show(created, f"Created template {created.name} ({created.id})")


@template.command("list")
@pass_cli
def list_(cli: CliContext) -> None:
    """List templates, newest first."""
    items = cli.client.list_templates()
    cli.show(items, fmt.templates(items))


@template.command("get")
@template_argument
@pass_cli
def get(cli: CliContext, template_ref: str) -> None:
    """Show a template with its settings, startup files and capabilities."""
    detail = cli.client.get_template(cli.client.template_id(template_ref))
    cli.show(detail, fmt.template_detail(detail))


@template.command("delete")
@template_argument
@pass_cli
def delete(cli: CliContext, template_ref: str) -> None:
    """Delete a template no open session uses."""
    answer = cli.client.delete_template(cli.client.template_id(template_ref))
    cli.show(answer, f"Deleted template {answer.template_id}")


@template.command("set-limits")
@template_argument
@click.option("--cpu-ms", type=click.IntRange(min=1), help="JavaScript CPU time per execution.")
@click.option("--wall-ms", type=click.IntRange(min=1), help="Wall-clock time per execution.")
@click.option("--mem-mb", type=click.IntRange(min=1), help="Heap limit (applies to new workers).")
@click.option("--max-events", type=click.IntRange(min=1), help="Events per execution.")
@click.option("--max-output-kb", type=click.IntRange(min=1), help="Event payload KB per execution.")
@pass_cli
def set_limits(cli: CliContext, /, template_ref: str, **given: int | None) -> None:
    """Change some limits and keep the others.

    The API replaces the whole limits object, so the current one is read first
    and the options given are merged into it.
    """
    _change_settings(cli, template_ref, "limits", given, "limit, e.g. --wall-ms 1000")


@template.command("set-runtime")
@template_argument
@click.option("--esm/--no-esm", default=None, help="Run files as ES modules.")
@click.option("--strict/--no-strict", default=None, help="Evaluate in strict mode.")
@click.option("--console/--no-console", default=None, help="Provide console.*.")
@pass_cli
def set_runtime(cli: CliContext, /, template_ref: str, **given: bool | None) -> None:
    """Change some runtime flags and keep the others."""
    _change_settings(cli, template_ref, "runtime", given, "flag, e.g. --esm")


def _change_settings(
    cli: CliContext,
    template_ref: str,
    part: str,
    given: dict[str, Any],
    example: str,
    off: object = None,
) -> None:
    """Merge the options given (those not None; ``off`` stands for None) into one part of
    the template's settings, and PUT it: the API replaces a whole part, so it is read first."""
    changes = {
        name: None if value == off else value for name, value in given.items() if value is not None
    }
    if not changes:
        raise click.UsageError(f"give at least one {example}")
    template_id = cli.client.template_id(template_ref)
    current = getattr(cli.client.get_template(template_id).settings, part)
    update = {part: msgspec.structs.replace(current, **changes)}
    settings = cli.client.update_settings(template_id, **update)
    cli.show(settings, fmt.settings(settings))


_OFF = "off"


class _Timeout(click.ParamType[int | str, str]):
    """A positive number of milliseconds, or ``off``."""

    name = "MS|off"

    def convert(
        self, value: str, param: click.Parameter | None, ctx: click.Context | None
    ) -> int | str:
        if value == _OFF:
            return _OFF
        try:
            number = int(value)
        except ValueError:
            number = 0
        if number < 1:
            self.fail(f"{value!r} is neither a positive number of milliseconds nor 'off'")
        return number


@template.command("set-lifecycle")
@template_argument
@click.option(
    "--idle-timeout-ms", type=_Timeout(), help="Close a session this long without an execution."
)
@click.option(
    "--max-lifetime-ms", type=_Timeout(), help="Close a session this long after its creation."
)
@click.option(
    "--restart",
    type=click.Choice(["never", "on-crash"]),
    help="Restart a session whose worker died.",
)
@pass_cli
def set_lifecycle(cli: CliContext, /, template_ref: str, **given: Any) -> None:
    """Change what the daemon does with the template's sessions on its own; keep the rest.

    A timeout given as 'off' is turned off.
    """
    example = "option, e.g. --idle-timeout-ms 600000"
    _change_settings(cli, template_ref, "lifecycle", given, example, off=_OFF)


@template.command("add-startup")
@template_argument
@click.option("--path", required=True, help="File relative to the session's worktree.")
@click.option("--order", default=0, show_default=True, help="Files run in ascending order.")
@click.option("--mode", default="eval", show_default=True, help="Only eval is supported.")
@pass_cli
def add_startup(cli: CliContext, template_ref: str, path: str, order: int, mode: str) -> None:
    """Add a file that runs in every new session of the template."""
    template_id = cli.client.template_id(template_ref)
    added = cli.client.add_startup_file(template_id, path, order, mode)
    cli.show(added, f"Added startup file {added.path} (order {added.order_index})")


@template.command("list-startup")
@template_argument
@pass_cli
def list_startup(cli: CliContext, template_ref: str) -> None:
    """List startup files in the order they run."""
    items = cli.client.list_startup_files(cli.client.template_id(template_ref))
    cli.show(items, fmt.startup_files(items))


@template.command("add-capability")
@template_argument
@click.option("--kind", default="module", show_default=True, help="Capability kind.")
@click.option("--name", required=True, help="Capability name.")
@click.option("--enabled/--disabled", default=True, show_default=True)
@click.option(
    "--config", callback=json_object, metavar="JSON", help="Configuration as a JSON object."
)
@pass_cli
def add_capability(
    cli: CliContext, template_ref: str, kind: str, name: str, enabled: bool, config: dict[str, Any]
) -> None:
    """Record a capability (descriptive metadata) on the template."""
    template_id = cli.client.template_id(template_ref)
    added = cli.client.add_capability(template_id, kind, name, enabled, config)
    cli.show(added, f"Added capability {added.kind}:{added.name}")


@template.command("list-capabilities")
@template_argument
@pass_cli
def list_capabilities(cli: CliContext, template_ref: str) -> None:
    """List the template's capabilities."""
    items = cli.client.list_capabilities(cli.client.template_id(template_ref))
    cli.show(items, fmt.capabilities(items))


name_option = click.option("--name", required=True, help="Module or library name.")


@template.command("add-module")
@template_argument
@name_option
@pass_cli
def add_module(cli: CliContext, template_ref: str, name: str) -> None:
    """Expose a host module (from the daemon's catalog, e.g. fs) to require()."""
    added = cli.client.add_module(cli.client.template_id(template_ref), name)
    cli.show(added, f"Added module {added.name}")


@template.command("remove-module")
@template_argument
@name_option
@pass_cli
def remove_module(cli: CliContext, template_ref: str, name: str) -> None:
    """Stop exposing a module."""
    answer = cli.client.remove_module(cli.client.template_id(template_ref), name)
    cli.show(answer, f"Removed module {name}")


@template.command("list-modules")
@template_argument
@pass_cli
def list_modules(cli: CliContext, template_ref: str) -> None:
    """List the modules the template exposes."""
    items = cli.client.list_modules(cli.client.template_id(template_ref))
    cli.show(items, fmt.names(items, "modules"))


@template.command("add-library")
@template_argument
@name_option
@pass_cli
def add_library(cli: CliContext, template_ref: str, name: str) -> None:
    """Load $VMCTL_HOME/libraries/NAME.js into every new session, before startup files."""
    added = cli.client.add_library(cli.client.template_id(template_ref), name)
    cli.show(added, f"Added library {added.name}")


@template.command("remove-library")
@template_argument
@name_option
@pass_cli
def remove_library(cli: CliContext, template_ref: str, name: str) -> None:
    """Stop loading a library."""
    answer = cli.client.remove_library(cli.client.template_id(template_ref), name)
    cli.show(answer, f"Removed library {name}")


@template.command("list-libraries")
@template_argument
@pass_cli
def list_libraries(cli: CliContext, template_ref: str) -> None:
    """List the libraries the template loads."""
    items = cli.client.list_libraries(cli.client.template_id(template_ref))
    cli.show(items, fmt.names(items, "libraries"))
