"""Running the ``vmctl`` command in-process with click's CliRunner."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from click.testing import CliRunner, Result

from vmctl.cli.main import cli


class Vmctl(Protocol):
    """Run ``vmctl ARGS`` against the test daemon and return click's Result."""

    def __call__(self, *args: str, input: str | None = None) -> Result: ...


def invoke(args: list[str], env: Mapping[str, str | None], input: str | None = None) -> Result:
    """``vmctl ARGS`` with plain output and no VMCTL_URL from the outer environment.

    catch_exceptions=False lets a bug's traceback reach pytest instead of hiding
    in ``result.exception``.
    """
    full_env = {"NO_COLOR": "1", "VMCTL_URL": None, "VMCTL_AUTH_TOKEN": None, **env}
    return CliRunner().invoke(cli, args, input=input, env=full_env, catch_exceptions=False)
