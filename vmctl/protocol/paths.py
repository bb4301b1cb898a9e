"""What a worktree path in a request may be: the one lexical rule both sides apply.

A path from a client is relative to the session's worktree. The supervisor
cleans it before it stores a startup file or sends a run-file request, and the
worker cleans what it is sent again before it opens anything. Cleaning is
lexical (``./a.js`` -> ``a.js``, ``x/../a.js`` -> ``a.js``); whoever then opens
the file also resolves symlinks and refuses a real path outside the real
worktree, which takes the filesystem; :func:`within` is the one test of "inside"
both sides apply to the real paths they find.
"""

from __future__ import annotations

import os
import posixpath


class InvalidWorktreePath(ValueError):
    """The path can never name a file of the worktree; the message says why."""


def within(root: str, path: str) -> bool:
    """Whether absolute, normalised ``path`` is ``root`` or lies under it (no I/O: pass
    real paths to judge where a file really is)."""
    return os.path.commonpath([root, path]) == root


def clean_path(path: str) -> str:
    """The lexically cleaned form of a worktree-relative path, or :class:`InvalidWorktreePath`."""
    if not path.strip():
        raise InvalidWorktreePath("the path is blank")
    if "\x00" in path:
        raise InvalidWorktreePath("the path contains a NUL byte")
    if posixpath.isabs(path):
        raise InvalidWorktreePath("absolute paths are not allowed")
    cleaned = posixpath.normpath(path)
    if cleaned == ".":
        raise InvalidWorktreePath("the path names the worktree itself, not a file")
    if cleaned == ".." or cleaned.startswith("../"):
        raise InvalidWorktreePath("the path leaves the worktree")
    return cleaned
