"""Landlock: the worker reads what it needs to run and its worktree; it writes nowhere.

The ruleset handles every access right the kernel's ABI knows, so anything not granted
below is denied: reading and executing the Python installation and the libraries the
worker has mapped, reading its worktree, nothing else (no write, no create, no remove
anywhere). From ABI 4 it handles TCP bind and connect with no rule (both denied); from
ABI 6 it scopes signals and abstract unix sockets to the worker's own domain, so it can
signal no process outside it and reach no abstract socket of the host.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from typing import NamedTuple

from vmctl.sandbox import kernel

EXECUTE = 1 << 0
WRITE_FILE = 1 << 1
READ_FILE = 1 << 2
READ_DIR = 1 << 3
_FS_ABI1 = (1 << 13) - 1  # EXECUTE .. MAKE_SYM
_REFER = 1 << 13  # ABI 2
_TRUNCATE = 1 << 14  # ABI 3
_IOCTL_DEV = 1 << 15  # ABI 5
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6

# Rights that may be granted on a file (the rest only make sense beneath a directory).
_FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | _TRUNCATE | _IOCTL_DEV
READ = READ_FILE | READ_DIR
READ_EXECUTE = READ | EXECUTE


def handled_fs(abi: int) -> int:
    rights = _FS_ABI1
    if abi >= 2:
        rights |= _REFER
    if abi >= 3:
        rights |= _TRUNCATE
    if abi >= 5:
        rights |= _IOCTL_DEV
    return rights


def describe(abi: int) -> str:
    """What a ruleset on this ABI confines, for the doctor and the runtime summary."""
    parts = ["files"]
    if abi >= 4:
        parts.append("TCP")
    if abi >= 6:
        parts.append("signals and abstract sockets")
    return f"ABI {abi}: " + ", ".join(parts)


class Ruleset(NamedTuple):
    """A ruleset made ready in the parent, so the child only makes system calls."""

    attr: kernel.RulesetAttr
    size: int  # of ``attr`` as this ABI knows it
    handled: int
    grants: tuple[tuple[str, int], ...]  # rights already fitted to a file or a directory


def ruleset(abi: int, grants: Iterable[tuple[str, int]]) -> Ruleset:
    """The ruleset for ``grants``, (path, rights) pairs: a path that does not exist, or
    lies beneath a directory granted at least the same rights, is left out."""
    fs = handled_fs(abi)
    attr = kernel.RulesetAttr(handled_access_fs=fs)
    size = 8
    if abi >= 4:
        attr.handled_access_net = _NET_BIND_TCP | _NET_CONNECT_TCP
        size = 16
    if abi >= 6:
        attr.scoped = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL
        size = 24
    kept: list[tuple[str, int]] = []
    directories: list[tuple[str, int]] = []
    for path, rights in sorted((os.path.realpath(p), r) for p, r in grants):
        if any(_beneath(path, d) and rights & ~r == 0 for d, r in directories):
            continue
        try:
            is_dir = stat.S_ISDIR(os.stat(path).st_mode)
        except OSError:
            continue  # a library directory one Python build has and another lacks
        rights &= fs if is_dir else fs & _FILE_RIGHTS
        kept.append((path, rights))
        if is_dir:
            directories.append((path, rights))
    return Ruleset(attr, size, fs, tuple(kept))


def restrict(rules: Ruleset, directory: str, rights: int) -> None:
    """Confine this process (and its threads) to ``rules`` plus ``rights`` on ``directory``.

    Needs no_new_privs (or CAP_SYS_ADMIN) to be set first.
    """
    ruleset_fd = kernel.landlock_create_ruleset(rules.attr, rules.size)
    try:
        for path, granted in (*rules.grants, (directory, rights & rules.handled)):
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                kernel.landlock_add_path_rule(ruleset_fd, granted, fd)
            finally:
                os.close(fd)
        kernel.landlock_restrict_self(ruleset_fd)
    finally:
        os.close(ruleset_fd)


def _beneath(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")
