"""The worktree path rules shared by startup files and run-file.

A path from a client is relative to the session's worktree. It is cleaned
lexically first (``./a.js`` -> ``a.js``, ``x/../a.js`` -> ``a.js``), refused if
it is absolute or climbs out, and, once a worktree is known, resolved through
symlinks and refused again if the real file lies outside the real worktree.
"""

from __future__ import annotations

import os
import posixpath

from vmctl.supervisor.errors import ApiError


def _invalid(path: str, why: str) -> ApiError:
    return ApiError("INVALID_PATH", f"Invalid path {path!r}: {why}", {"path": path})


def clean_relative_path(path: str) -> str:
    """The lexically cleaned form of a worktree-relative path, or INVALID_PATH."""
    if not path.strip():
        raise _invalid(path, "the path is blank")
    if "\x00" in path:
        raise _invalid(path, "the path contains a NUL byte")
    if posixpath.isabs(path):
        raise _invalid(path, "absolute paths are not allowed")
    cleaned = posixpath.normpath(path)
    if cleaned == ".":
        raise _invalid(path, "the path names the worktree itself, not a file")
    if cleaned == ".." or cleaned.startswith("../"):
        raise _invalid(path, "the path leaves the worktree")
    return cleaned


def resolve_in_worktree(worktree: str, cleaned: str) -> str:
    """The real path of ``cleaned`` under ``worktree``; INVALID_PATH if a symlink leaves it.

    Touches the filesystem: call it off the event loop.
    """
    root = os.path.realpath(worktree)
    real = os.path.realpath(os.path.join(root, cleaned))
    if real != root and not real.startswith(root + os.sep):
        raise _invalid(cleaned, "a symlink leads outside the worktree")
    return real
