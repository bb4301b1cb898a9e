"""The worktree path rules of the supervisor: a session's worktree, startup files, run-file.

A session's worktree is an absolute path to a directory whose real path lies in one
of the daemon's worktree roots (``--worktree-root``), and is never ``/`` nor in
``/proc``, ``/sys`` or ``/dev``, whatever the roots. A path from a client
is relative to it. It is cleaned lexically by the protocol's one rule
(``vmctl.protocol.clean_path``: no blank, absolute or climbing path), and, once
a worktree is known, resolved through symlinks and refused again if the real
file lies outside the real worktree.
"""

from __future__ import annotations

import os

from vmctl.protocol import InvalidWorktreePath, clean_path, within
from vmctl.supervisor.sessions.errors import Invalid, NotFound, invalid_path, validation_error

# Trees no worktree may be in, whatever the roots: the kernel's views of processes
# (another process's environment, memory, open files) and devices.
FORBIDDEN_TREES = ("/proc", "/sys", "/dev")


def worktree_root(path: str) -> str:
    """A session's worktree: an absolute path to a directory, normalised (sync)."""
    if "\x00" in path or not os.path.isabs(path) or not os.path.isdir(path):
        raise validation_error(
            "worktree_path", f"worktree_path must be an absolute path to a directory: {path!r}"
        )
    return os.path.normpath(path)


def worktree_in_roots(path: str, roots: tuple[str, ...]) -> tuple[str, Invalid | None]:
    """:func:`worktree_root` of ``path`` (its VALIDATION_ERROR raised), and the
    INVALID_PATH of :func:`check_in_roots` if it is outside them, returned: that one is a
    domain rule, told only after a missing template (docs/api.md, "Validation order")."""
    worktree = worktree_root(path)
    try:
        check_in_roots(worktree, roots)
    except Invalid as outside:
        return worktree, outside
    return worktree, None


def check_in_roots(worktree: str, roots: tuple[str, ...]) -> None:
    """INVALID_PATH unless the real path of ``worktree`` lies in one of ``roots`` (real
    paths) and neither it nor ``worktree`` is ``/`` or in a forbidden tree (sync: it
    resolves symlinks). ``worktree`` itself counts too: ``/proc/self/cwd`` names another
    directory in each process that opens it."""
    real = os.path.realpath(worktree)
    named = os.path.normpath(worktree)
    if any(p == "/" or any(within(t, p) for t in FORBIDDEN_TREES) for p in (named, real)):
        why = "a session may not work on / nor in /proc, /sys or /dev"
    elif not any(within(root, real) for root in roots):
        why = "it is outside the daemon's worktree roots (vmctl up --worktree-root DIR)"
    else:
        return
    raise Invalid(
        "INVALID_PATH",
        f"Invalid worktree_path {worktree!r}: {why}",
        {"path": worktree, "real_path": real, "roots": list(roots)},
    )


def clean_relative_path(path: str) -> str:
    """The lexically cleaned form of a worktree-relative path, or INVALID_PATH."""
    try:
        return clean_path(path)
    except InvalidWorktreePath as exc:
        raise invalid_path(path, str(exc)) from None


def resolve_in_worktree(worktree: str, cleaned: str) -> str:
    """The real path of ``cleaned`` under ``worktree``; INVALID_PATH if a symlink leaves it.

    Touches the filesystem: call it off the event loop.
    """
    root = os.path.realpath(worktree)
    real = os.path.realpath(os.path.join(root, cleaned))
    if not within(root, real):
        raise invalid_path(cleaned, "a symlink leads outside the worktree")
    return real


def existing_file(worktree: str, cleaned: str, session_id: str) -> str:
    """The real path of the file ``cleaned`` names, or INVALID_PATH / FILE_NOT_FOUND (sync)."""
    real = resolve_in_worktree(worktree, cleaned)
    if not os.path.isfile(real):
        raise NotFound(
            "FILE_NOT_FOUND",
            f"File {cleaned!r} not found in the worktree",
            {"path": cleaned, "session_id": session_id},
        )
    return real
