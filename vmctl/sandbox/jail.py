"""Applying a :class:`~vmctl.protocol.jail.JailSpec` to the process that is to become a worker.

Called in the child between fork and the first line of worker or plugin code (the
fork server's child, and ``python -m vmctl.sandbox.run`` for a spawned worker). Every
requested layer is applied or :class:`JailError` is raised: the caller then exits
instead of running the worker with fewer walls than the supervisor reported.

The order matters: no_new_privs first (Landlock and seccomp need it); Landlock while
the process can still open what it grants; the uid, then the capability sets, while it
still has the capabilities to change them; seccomp last, since it also forbids what the
steps before it did.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from collections.abc import Callable
from typing import NamedTuple

from vmctl.protocol.jail import JailSpec, Layer
from vmctl.sandbox import identity, kernel, landlock, seccomp

# vmctl's own package: the worker reads its prelude there, and plugins import from it.
VMCTL_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class JailError(Exception):
    """A layer the supervisor asked for could not be applied."""

    def __init__(self, layer: Layer, reason: str) -> None:
        super().__init__(f"the {layer} layer of the jail failed: {reason}")
        self.layer = layer


class Preparation(NamedTuple):
    """What every worker's jail needs, made once where the worker's imports are done."""

    ruleset: landlock.Ruleset | None  # None: this kernel has no Landlock
    program: seccomp.Program | None  # None: libseccomp is not there


def prepare(*extra_reads: str) -> Preparation:
    """The fork server's (or the runner's) preparation, before its first worker.

    ``extra_reads``: more files or directories the worker reads (a plugin's script).
    """
    try:
        abi = kernel.landlock_abi()
    except OSError:
        ruleset = None
    else:
        ruleset = landlock.ruleset(abi, runtime_grants(*extra_reads))
    try:
        program: seccomp.Program | None = seccomp.compile_filter()
    except (OSError, RuntimeError):
        program = None
    kernel.prctl(kernel.PR_GET_NO_NEW_PRIVS)  # ctypes resolves a function on its first call
    return Preparation(ruleset, program)


def runtime_grants(*extra_reads: str) -> list[tuple[str, int]]:
    """What a worker of this interpreter reads and executes to run: (path, Landlock rights).

    The Python installation (the base prefix, the virtual environment's, vmctl's own
    package) and every file this process has mapped (the interpreter, its libraries
    and extension modules, libseccomp). Not ``sys.path`` as a whole: with ``-m`` it
    starts with the directory the daemon was started in.
    """
    paths = {sys.base_prefix, sys.prefix, VMCTL_PACKAGE, *sysconfig.get_paths().values()}
    paths.update(_mapped_files())
    paths.update(extra_reads)
    # Time zone data, so Date shows local time as it would outside the jail.
    paths.update(("/etc/localtime", "/usr/share/zoneinfo"))
    return [(path, landlock.READ_EXECUTE) for path in paths]


def apply(spec: JailSpec, ready: Preparation) -> None:
    """Apply ``spec``'s layers (but netns, entered earlier) to this process."""
    layers = set(spec.layers)
    if layers & {"no_new_privs", "landlock", "seccomp"}:
        _layer("no_new_privs", lambda: kernel.prctl(kernel.PR_SET_NO_NEW_PRIVS, 1))
    if "landlock" in layers:
        rules = ready.ruleset
        if rules is None:
            raise JailError("landlock", "this kernel has no Landlock")
        _layer("landlock", lambda: landlock.restrict(rules, spec.worktree, landlock.READ))
    if "uid" in layers:
        if spec.uid is None or spec.gid is None:
            raise JailError("uid", "no uid to become was given")
        uid, gid = spec.uid, spec.gid
        # From root to another uid: the kernel empties the capability sets as well.
        _layer("uid", lambda: identity.become(uid, gid))
    if "capabilities" in layers:
        # With no_new_privs and no exec, nothing can bring one back: the bounding set
        # need not be emptied too.
        _layer("capabilities", kernel.clear_capabilities)
    if "seccomp" in layers:
        program = ready.program
        if program is None:
            raise JailError("seccomp", "libseccomp is not installed")
        pid = os.getpid()
        _layer("seccomp", lambda: program.load(pid))


def enter_empty_network() -> None:
    """Move this process into a new network namespace: only a loopback, and that down.

    As root, a plain new namespace; otherwise inside a new user namespace mapping only
    our own ids (where the kernel allows unprivileged user namespaces).
    """
    if os.geteuid() == 0:
        kernel.unshare(kernel.CLONE_NEWNET)
        return
    uid, gid = os.geteuid(), os.getegid()
    kernel.unshare(kernel.CLONE_NEWUSER | kernel.CLONE_NEWNET)
    maps = (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1"))
    for name, text in maps:
        with open(f"/proc/self/{name}", "w", encoding="ascii") as file:
            file.write(text)


def _layer(layer: Layer, step: Callable[[], object]) -> None:
    try:
        step()
    except (OSError, ValueError, RuntimeError) as exc:
        raise JailError(layer, str(exc)) from exc


def _mapped_files() -> set[str]:
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            lines = maps.read().splitlines()
    except OSError:
        return set()
    files = set()
    for line in lines:
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5].startswith("/"):
            files.add(fields[5].removesuffix(" (deleted)"))
    return files
