"""What the engine evaluates for a file or a snippet: JavaScript as written, TypeScript stripped.

A file is TypeScript by its extension (``.ts``, ``.mts``, ``.cts``; ``.tsx`` is refused:
no JSX). Its types are stripped by :class:`~vmctl.worker.typescript.TypeStripper`, which
keeps every line and column, so stack frames point into the ``.ts`` file. A REPL snippet is
TypeScript by detection: only when the JavaScript grammar cannot read it is it stripped, and
the result used if the grammar reads that; so no snippet that is JavaScript changes meaning.

A file is an ES module by its extension (``.mjs``, ``.mts``), by the template's
``runtime.esm``, or, as Node 22 decides for a file of no declared type, by its syntax: an
``import``/``export`` declaration or ``import.meta``. Anything else is a script.

:class:`SourceFiles` is the engine's module resolver: the worktree's rules, plus TypeScript's
habits when the importing module is TypeScript (``./shapes.js`` names ``shapes.ts`` when only
that exists; an extensionless specifier also tries ``.ts`` and ``.mts``).
"""

from __future__ import annotations

import posixpath

from vmctl.worker import repl
from vmctl.worker.engine import ImportRefused
from vmctl.worker.typescript import TypeScriptError, TypeStripper
from vmctl.worker.worktree import Worktree

TYPESCRIPT_SUFFIXES = (".ts", ".mts", ".cts", ".tsx")
MODULE_SUFFIXES = (".mjs", ".mts")
# A TypeScript importer's ``./a.js`` may name ``a.ts``: the output name for the source name.
_COMPILED_SUFFIXES = {".js": ".ts", ".mjs": ".mts", ".cjs": ".cts"}
_TYPESCRIPT_EXTENSIONS = (".ts", ".mts")


def is_typescript(name: str) -> bool:
    return name.endswith(TYPESCRIPT_SUFFIXES)


class SourceFiles:
    """The worktree's files as JavaScript, for the engine (imports) and the session (scripts)."""

    def __init__(self, worktree: Worktree) -> None:
        self._worktree = worktree
        self._stripper = TypeStripper()  # loads sucrase on its first TypeScript only

    # -- the session's files and snippets --

    def script_text(self, name: str) -> str:
        """The JavaScript of the worktree's file ``name``; raises :class:`TypeScriptError`."""
        return self._javascript(self._worktree.read_text(name), name)

    def script(self, name: str, esm: bool) -> str | None:
        """The JavaScript of file ``name`` when it runs as a script; None when it is an ES
        module (see the module doc), which the engine's loader reads itself. Raises
        :class:`TypeScriptError`."""
        if esm or name.endswith(MODULE_SUFFIXES):
            return None
        text = self.script_text(name)
        return None if repl.is_module(text) else text

    def typescript_snippet(self, code: str, label: str) -> str:
        """A REPL snippet the JavaScript grammar cannot read, stripped of its types if that
        makes it JavaScript; else as it is, for the engine to report its syntax error."""
        try:
            stripped = self._stripper.strip(code, label)
        except TypeScriptError:
            return code  # not TypeScript either
        return stripped if repl.parses(stripped) else code

    # -- the engine's ModuleResolver --

    def resolve(self, base: str, specifier: str, extensions: tuple[str, ...]) -> str:
        if not is_typescript(base):
            return self._worktree.resolve(base, specifier, extensions)
        stem, suffix = posixpath.splitext(specifier)
        if suffix in _COMPILED_SUFFIXES:
            try:
                return self._worktree.resolve(base, specifier, extensions)
            except ImportRefused as not_found:
                try:
                    return self._worktree.resolve(base, stem + _COMPILED_SUFFIXES[suffix], ())
                except ImportRefused:
                    raise not_found from None
        return self._worktree.resolve(base, specifier, extensions + _TYPESCRIPT_EXTENSIONS)

    def load(self, name: str) -> tuple[str, str]:
        source, url = self._worktree.load(name)
        try:
            return self._javascript(source, name), url
        except TypeScriptError as exc:
            raise ImportRefused(str(exc), "SyntaxError") from exc

    def _javascript(self, text: str, name: str) -> str:
        return self._stripper.strip(text, name) if is_typescript(name) else text
