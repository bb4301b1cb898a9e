"""Who a worker runs as: no capabilities, and an unprivileged uid when the daemon is root.

:func:`resolve_user` and :func:`unreadable` run in the supervisor, to decide before a
worker starts whether it can drop to the worker user (that uid must be able to read
what the worker reads, or the worker would fail later on a file it cannot open);
:func:`become` runs in the child.
"""

from __future__ import annotations

import os
import pwd
import stat


def resolve_user(user: str) -> tuple[int, int]:
    """``user`` (a name or a number) as (uid, gid); KeyError when there is no such user."""
    if user.isdigit():
        uid = int(user)
        try:
            return uid, pwd.getpwuid(uid).pw_gid
        except KeyError:
            return uid, uid  # a bare number need not be in the password database
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def unreadable(path: str, uid: int, gid: int) -> str | None:
    """Why ``uid``/``gid`` (no supplementary groups) cannot read ``path``, or None.

    Read from the permission bits along the path (search on each directory above it,
    read and, for a directory, search on it), as the kernel would check them; ACLs
    are not consulted, so this can only err on the side of refusing.
    """
    real = os.path.realpath(path)
    parts = real.split(os.sep)
    for depth in range(1, len(parts) + 1):
        here = os.sep.join(parts[:depth]) or os.sep
        try:
            info = os.stat(here)
        except OSError as exc:
            return f"{here}: {exc.strerror}"
        last = depth == len(parts)
        needed = 0o4 if last else 0o1
        if last and stat.S_ISDIR(info.st_mode):
            needed |= 0o1
        if info.st_uid == uid:
            granted = (info.st_mode >> 6) & 0o7
        elif info.st_gid == gid:
            granted = (info.st_mode >> 3) & 0o7
        else:
            granted = info.st_mode & 0o7
        if granted & needed != needed:
            what = "read" if last else "search"
            return f"{here} (mode {stat.S_IMODE(info.st_mode):04o}) denies uid {uid} {what}"
    return None


def become(uid: int, gid: int) -> None:
    """Drop to ``uid``/``gid`` for good: real, effective and saved ids, no other groups."""
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
