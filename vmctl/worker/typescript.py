"""TypeScript in the worker: types stripped by the vendored sucrase, positions kept.

``vendor/sucrase.js`` is sucrase's TypeScript transform (``tools/vendor/typescript``), patched
so that every removed character becomes a space (one per UTF-8 byte, as QuickJS counts
columns) and line breaks stay: what is left of the source keeps its line and column, so stack
traces point at the ``.ts`` file. ES module syntax stays as written.

It runs in a QuickJS context of its own, not the session's: user code cannot reach or replace
it, and its heap does not count against the session's memory limit. That context is made on
the first :meth:`TypeStripper.strip` and kept for the worker's life, so a worker that never
sees TypeScript never loads sucrase. Source and result cross the binding as JSON text.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import _quickjs

MEMORY_LIMIT_BYTES = 64 * 1024 * 1024
STACK_LIMIT_BYTES = 1024 * 1024
# sucrase needs about 140 bytes of heap per byte of source, so this strips files up to about
# 400 KB; it strips about 300 KB a second in QuickJS, so the time limit is only a backstop.
TIME_LIMIT_SECONDS = 10

_VENDOR_FILE = Path(__file__).parent / "vendor" / "sucrase.js"

# Called with the vendor file's function expression; returns strip(request) -> reply, both JSON
# text. A reply is {"code"} or {"error", "pos"} (pos: the offset sucrase names, or null).
_HELPER = r"""
(function (make) {
  "use strict";
  const { transform } = make();
  const options = { transforms: ["typescript"], disableESTransforms: true };
  function run(source) {
    try {
      return { code: transform(source, options).code };
    } catch (e) {
      if (e === null) return { error: "out of memory", pos: null };  // QuickJS's own OOM
      const pos = typeof e === "object" && typeof e.pos === "number" ? e.pos : null;
      const message = String(typeof e === "object" ? e.message : e);
      return { error: message.replace(/ \(\d+:\d+\)$/, ""), pos: pos };
    }
  }
  return function strip(request) {
    const reply = run(JSON.parse(request));
    transform("", options);  // sucrase keeps the last input's tokens: let them go
    return JSON.stringify(reply);
  };
})
"""


class TypeScriptError(Exception):
    """TypeScript source that cannot be stripped to JavaScript.

    The message names TypeScript and, when the stripper knows it, ``file:line:column``
    (1-based; the column counted in UTF-8 bytes, as QuickJS's stack traces count it).
    """

    def __init__(
        self, message: str, filename: str, line: int | None = None, column: int | None = None
    ) -> None:
        super().__init__(message)
        self.filename = filename
        self.line = line
        self.column = column


class TypeStripper:
    """Strips TypeScript types in a QuickJS context of its own, made on first use."""

    def __init__(self) -> None:
        self._context: Any = None
        self._strip: Any = None

    def strip(self, source: str, filename: str) -> str:
        """JavaScript with the same lines and columns as ``source``, or :class:`TypeScriptError`.

        A ``.tsx`` file is refused: JSX is not supported.
        """
        if filename.endswith(".tsx"):
            raise TypeScriptError(
                f"TypeScript: cannot strip types from {filename}: JSX (.tsx) is not supported",
                filename,
            )
        reply = json.loads(self._call(json.dumps(source), filename))
        if "code" in reply:
            code: str = reply["code"]
            return code
        if reply["pos"] is None:
            raise TypeScriptError(
                f"TypeScript: cannot strip types from {filename}: {reply['error']}", filename
            )
        line, column = _line_and_column(source, reply["pos"])
        raise TypeScriptError(
            f"TypeScript: cannot strip types at {filename}:{line}:{column}: {reply['error']}",
            filename,
            line,
            column,
        )

    def _call(self, request: str, filename: str) -> str:
        try:
            strip = self._strip if self._strip is not None else self._open()
            reply: str = strip(request)
        except (_quickjs.JSException, _quickjs.StackOverflow) as exc:
            # Out of memory, stack or time: the context may be left half-changed, so the next
            # strip gets a new one.
            self._context = self._strip = None
            reason = str(exc).partition("\n")[0]
            reason = "out of memory" if reason in ("", "null") else reason
            raise TypeScriptError(
                f"TypeScript: cannot strip types from {filename}: {reason}", filename
            ) from exc
        return reply

    def _open(self) -> Any:
        context = _quickjs.Context()
        context.set_memory_limit(MEMORY_LIMIT_BYTES)
        context.set_max_stack_size(STACK_LIMIT_BYTES)
        context.set_time_limit(TIME_LIMIT_SECONDS)
        self._strip = context.eval(_HELPER)(context.eval(_sucrase_source()))
        self._context = context
        return self._strip


def _sucrase_source() -> str:
    """The vendored sucrase: one function expression that returns ``{ transform }``."""
    return _VENDOR_FILE.read_text(encoding="utf-8")


def _line_and_column(source: str, pos: int) -> tuple[int, int]:
    """1-based line and column of a UTF-16 offset (JavaScript's), the column in UTF-8 bytes."""
    prefix = source.encode("utf-16-le", "surrogatepass")[: 2 * pos].decode(
        "utf-16-le", "surrogatepass"
    )
    line_start = prefix.rfind("\n") + 1
    column = len(prefix[line_start:].encode("utf-8", "surrogatepass")) + 1
    return prefix.count("\n") + 1, column
