"""The worktree: the one place that decides which files a session may run, import or read.

Every path is checked twice: lexically, then after :func:`os.path.realpath` (no symlink
out of the root). The lexical rule for a run-file or startup path is the protocol's
:func:`~vmctl.protocol.clean_path`, which the supervisor applied before sending it; an
import or an ``fs`` path may also be absolute, but no ``..`` may take it out of the root.
Files are named by their real path relative to the root, with ``/`` separators; that name
is what stack frames show and what the module cache is keyed on, so one file is one module
however it is reached.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path
from typing import Literal

from vmctl.protocol import InvalidWorktreePath, clean_path, within
from vmctl.worker.engine import ImportRefused

PathCode = Literal["INVALID_PATH", "FILE_NOT_FOUND"]


class PathRefused(Exception):
    """A path that leaves the worktree (``INVALID_PATH``) or names no file (``FILE_NOT_FOUND``)."""

    def __init__(self, code: PathCode, message: str) -> None:
        super().__init__(message)
        self.code: PathCode = code
        self.message = message


class Worktree:
    """The session's root directory (the worker's working directory) and its resolver rules."""

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)

    # -- run-file and startup files --

    def locate(self, path: str) -> str:
        """The name of the existing file at worktree-relative ``path``."""
        try:
            cleaned = clean_path(path)
        except InvalidWorktreePath as exc:
            raise PathRefused("INVALID_PATH", f"Invalid path {path!r}: {exc}") from exc
        joined = os.path.join(self.root, cleaned)
        if not os.path.lexists(joined):
            raise PathRefused("FILE_NOT_FOUND", f"'{path}' does not exist in the worktree")
        real = os.path.realpath(joined)
        if not within(self.root, real):
            raise PathRefused("INVALID_PATH", f"'{path}' leaves the worktree through a symlink")
        if not os.path.isfile(real):
            raise PathRefused("FILE_NOT_FOUND", f"'{path}' is not a file")
        return self._name(real)

    def read_text(self, name: str) -> str:
        """The text of a file named by :meth:`locate` or :meth:`resolve`."""
        return Path(self.root, name).read_text(encoding="utf-8", errors="replace")

    # -- imports (the engine's ModuleResolver) --

    def resolve(self, base: str, specifier: str, extensions: tuple[str, ...]) -> str:
        """The name of the file ``import specifier`` means in module or script ``base``.

        Relative specifiers start from ``base``'s directory (the root for REPL snippets and
        files outside the worktree); bare ones from the root; absolute ones must lie inside.
        The file itself, then the file with each of ``extensions``, then ``index`` plus each.
        """
        target = self._import_target(base, specifier)
        if not within(self.root, target):
            raise ImportRefused(f"Cannot import '{specifier}': path leaves the worktree")
        for candidate in _candidates(target, extensions):
            if os.path.isfile(candidate):
                real = os.path.realpath(candidate)
                if not within(self.root, real):
                    raise ImportRefused(
                        f"Cannot import '{specifier}': path leaves the worktree through a symlink"
                    )
                return self._name(real)
        raise ImportRefused(f"Cannot find module '{specifier}' imported from {base}")

    def load(self, name: str) -> tuple[str, str]:
        """Source and ``import.meta.url`` of a module name returned by :meth:`resolve`."""
        real = os.path.realpath(os.path.join(self.root, name))
        if not within(self.root, real):  # the file was swapped for a symlink since resolve()
            raise ImportRefused(f"Cannot import '{name}': path leaves the worktree")
        try:
            source = Path(real).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise ImportRefused(f"Cannot load module '{name}': {exc.strerror}") from exc
        return source, Path(real).as_uri()

    # -- host modules --

    def real_path(self, path: str) -> str:
        """The real absolute path of ``path`` (relative to the root, or absolute inside it)."""
        joined = os.path.normpath(os.path.join(self.root, path))
        if not within(self.root, joined) or not within(self.root, os.path.realpath(joined)):
            raise PathRefused("INVALID_PATH", f"'{path}' leaves the worktree")
        return os.path.realpath(joined)

    # -- helpers --

    def _import_target(self, base: str, specifier: str) -> str:
        if specifier.startswith(("./", "../")) or specifier in (".", ".."):
            in_worktree = not base.startswith("<") and not os.path.isabs(base)
            directory = posixpath.dirname(base) if in_worktree else ""
            specifier = posixpath.join(directory, specifier)
        return os.path.normpath(os.path.join(self.root, specifier))

    def _name(self, real: str) -> str:
        return Path(os.path.relpath(real, self.root)).as_posix()


def _candidates(target: str, extensions: tuple[str, ...]) -> list[str]:
    with_extension = [target + extension for extension in extensions]
    index = [os.path.join(target, "index" + extension) for extension in extensions]
    return [target, *with_extension, *index]
