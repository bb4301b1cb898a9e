"""How a REPL snippet becomes source the engine evaluates (console semantics).

Interface (fixed; the worker's runtime relies on it): ``compile_snippet(code)``
returns a :class:`Snippet`. The runtime evaluates ``source`` as a global
script. When ``is_async`` is false its completion value is the snippet's value.
When ``is_async`` is true its completion value is a promise that resolves to an
object ``{value: <the snippet's value>}`` (or rejects with what the snippet
threw); the runtime runs pending jobs, under the request's limits, until it
settles.

MINIMAL STUB: redeclaration and top-level await support replace this.
"""

from __future__ import annotations

from typing import NamedTuple


class Snippet(NamedTuple):
    source: str
    is_async: bool


def compile_snippet(code: str) -> Snippet:
    return Snippet(source=code, is_async=False)
