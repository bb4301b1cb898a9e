"""``python -m vmctl.sandbox.run JAIL -- COMMAND...``: a spawned worker, jailed before it starts.

The supervisor spawns every worker the fork server does not fork through this
program (the built-in worker when the fork server is gone, and engine plugins).
``JAIL`` is the :class:`~vmctl.protocol.jail.JailSpec` as JSON. The runner enters
the network namespace, applies the other layers, and then:

- when ``COMMAND`` is this Python running a script or a module (``python SCRIPT
  ARGS...`` or ``python -m MODULE ARGS...``), runs it in this process, as the
  interpreter would have, so that no exec is needed after the seccomp filter that
  forbids exec;
- otherwise (a layer list without Landlock and seccomp: the supervisor asks for
  those only for a Python program) execs it.

A layer that cannot be applied ends the runner with status 126 and the reason on
stderr, before the worker's first line.
"""

from __future__ import annotations

import os
import runpy
import sys
from typing import Literal

from vmctl.protocol.jail import decode_jail
from vmctl.sandbox import jail

CANNOT_JAIL = 126
Program = tuple[Literal["script", "module"], str, list[str]]


def python_program(argv: tuple[str, ...] | list[str]) -> Program | None:
    """(kind, target, arguments) when ``argv`` runs this interpreter on a script or module."""
    if len(argv) < 2 or not _same_interpreter(argv[0]):
        return None
    if argv[1] == "-m" and len(argv) >= 3:
        return "module", argv[2], list(argv[3:])
    if not argv[1].startswith("-"):
        return "script", os.path.abspath(argv[1]), list(argv[2:])
    return None


def _same_interpreter(path: str) -> bool:
    try:
        return os.path.samefile(path, sys.executable)
    except OSError:
        return False


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m vmctl.sandbox.run JAIL -- COMMAND...", file=sys.stderr)
        return 2
    spec = decode_jail(argv[0])
    command = argv[2:]
    program = python_program(command)
    try:
        if "netns" in spec.layers:
            try:
                jail.enter_empty_network()
            except OSError as exc:
                raise jail.JailError("netns", str(exc)) from exc
        extra = (program[1],) if program is not None and program[0] == "script" else ()
        jail.apply(spec, jail.prepare(*extra))
    except jail.JailError as exc:
        print(f"vmctl worker: cannot start: {exc}", file=sys.stderr)
        return CANNOT_JAIL
    if program is None:
        os.execv(command[0], command)
    kind, target, arguments = program
    if kind == "module":
        sys.argv = [target, *arguments]  # runpy puts the module's path in argv[0]
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    else:
        sys.argv = [target, *arguments]
        runpy.run_path(target, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
