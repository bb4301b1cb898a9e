"""How deeply a JSON value may nest, and the check: one rule for the protocol and the store.

Every JSON encoder and decoder between a worker and a client recurses once per level of
arrays and objects, under Python's recursion limit (1000 frames, some already taken by
whoever encodes). So a worker's value (vmctl/protocol/frames.py) and a request's JSON
fields (run-file ``args`` and ``env``, a capability's ``config``; the store's models) nest
at most :data:`MAX_DEPTH` levels. Standard library only: the protocol and the store both
import it, and neither may import the other.
"""

from __future__ import annotations

from typing import Any

MAX_DEPTH = 64


def nests_deeper(value: object, depth: int) -> bool:
    """Whether a decoded JSON value nests arrays and objects more than ``depth`` levels deep.

    Level by level, without recursion, so any value can be asked about.
    """
    level: list[dict[Any, Any] | list[Any]] = [value] if isinstance(value, dict | list) else []
    for _ in range(depth):
        below: list[dict[Any, Any] | list[Any]] = []
        for container in level:
            items = container.values() if isinstance(container, dict) else container
            below.extend(item for item in items if isinstance(item, dict | list))
        if not below:
            return False
        level = below
    return bool(level)


def too_few_brackets(text: str | bytes, depth: int) -> bool:
    """Whether JSON text surely nests no deeper than ``depth`` without being decoded: it
    holds no more brackets than that (those inside strings count too, so a count under
    ``depth`` proves it; one over it proves nothing)."""
    if isinstance(text, bytes):
        return text.count(b"[") + text.count(b"{") <= depth
    return text.count("[") + text.count("{") <= depth
