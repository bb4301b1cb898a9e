"""Host modules for ``require(name)``: today only ``fs``, read-only, inside the worktree.

JavaScript sees a global ``require``; it works for the names of the protocol's
:data:`~vmctl.protocol.MODULE_CATALOG` that the request's ``runtime.modules`` enables, and
throws ``Error: Cannot find module 'x'`` for any other. The Python side is one method,
:meth:`HostModules.call`, that takes the enabled names, an operation name and its arguments as
JSON text and answers ``{"ok": value}`` or ``{"error", "code"}`` as JSON text: JSON keeps
values intact across the binding, and a callable must never raise (the binding would leave
the Python error set). The session exposes it to JavaScript as ``__vmctl_host_modules``,
passing the running request's ``modules``.

``fs.readFileSync`` returns a string (there is no ``Buffer``): UTF-8 text unless an
encoding such as ``base64``, ``hex`` or ``latin1`` is given.
"""

from __future__ import annotations

import base64
import errno
import json
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

from vmctl.protocol import MODULE_CATALOG
from vmctl.worker.worktree import PathRefused, Worktree

# Larger files are refused rather than copied into the worker's memory and the JS heap.
MAX_READ_BYTES = 64 * 1024 * 1024

# Evaluated once after the prelude. It takes the host callable out of the global scope.
REQUIRE_SOURCE = r"""
(function () {
  "use strict";
  const host = globalThis.__vmctl_host_modules;
  delete globalThis.__vmctl_host_modules;
  function call(op, args) {
    const reply = JSON.parse(host(op, JSON.stringify(args)));
    if ("error" in reply) {
      const error = new Error(reply.error);
      if (reply.code) error.code = reply.code;
      throw error;
    }
    return reply.ok;
  }
  const fs = Object.freeze({
    readFileSync: (path, options) => call("fs.readFileSync", [path, options]),
    existsSync: (path) => call("fs.existsSync", [path]),
    readdirSync: (path) => call("fs.readdirSync", [path]),
  });
  const modules = { fs };
  function require(name) {
    return modules[call("require", [name])];
  }
  Object.defineProperty(globalThis, "require", {
    value: require, writable: true, configurable: true, enumerable: false,
  });
})();
"""

_TEXT_ENCODINGS = {
    "utf8": "utf-8",
    "utf-8": "utf-8",
    "latin1": "latin-1",
    "binary": "latin-1",
    "ascii": "ascii",
}


class _HostError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class HostModules:
    """What ``__vmctl_host_modules(op, argsJson)`` does, over the session's worktree."""

    def __init__(self, worktree: Worktree) -> None:
        self._worktree = worktree
        self._file_operations: dict[str, Callable[..., Any]] = {
            "fs.readFileSync": self._read_file,
            "fs.existsSync": self._exists,
            "fs.readdirSync": self._read_dir,
        }

    def call(self, enabled: frozenset[str], op: object, args_json: object) -> str:
        """Run operation ``op``; ``enabled`` is the request's ``runtime.modules``. Never raises."""
        try:
            args = json.loads(str(args_json))
            if op == "require":
                return json.dumps({"ok": _require(enabled, *args)})
            return json.dumps({"ok": self._file_operations[str(op)](*args)})
        except _HostError as exc:
            return json.dumps({"error": str(exc), "code": exc.code})
        except Exception:
            traceback.print_exc(file=sys.stderr)
            return json.dumps({"error": f"internal error in host operation {op}"})

    def _read_file(self, path: object = None, options: object = None) -> str:
        real = self._path(path, "open")
        encoding = options.get("encoding") if isinstance(options, dict) else options
        try:
            if os.path.getsize(real) > MAX_READ_BYTES:
                raise _HostError(
                    "EFBIG", f"EFBIG: file too large (over {MAX_READ_BYTES} bytes), open '{path}'"
                )
            with open(real, "rb") as file:
                data = file.read()
        except OSError as exc:
            raise _os_error(exc, "open", path) from exc
        return _decode(data, encoding)

    def _exists(self, path: object = None) -> bool:
        try:
            return os.path.exists(self._path(path, "access"))
        except _HostError:
            return False  # like Node: existsSync never throws

    def _read_dir(self, path: object = None) -> list[str]:
        real = self._path(path, "scandir")
        try:
            return sorted(os.listdir(real))
        except OSError as exc:
            raise _os_error(exc, "scandir", path) from exc

    def _path(self, path: object, syscall: str) -> str:
        if not isinstance(path, str):
            raise _HostError("ERR_INVALID_ARG_TYPE", 'The "path" argument must be of type string')
        try:
            return self._worktree.real_path(path)
        except PathRefused as exc:
            raise _HostError(
                "EACCES", f"EACCES: path leaves the worktree, {syscall} '{path}'"
            ) from exc


def _require(enabled: frozenset[str], name: object = None) -> str:
    module = str(name).removeprefix("node:")
    if module not in MODULE_CATALOG or module not in enabled:
        raise _HostError("MODULE_NOT_FOUND", f"Cannot find module '{name}'")
    return module


def _decode(data: bytes, encoding: object) -> str:
    if encoding is None:
        return data.decode("utf-8", "replace")
    name = str(encoding).lower()
    if name in _TEXT_ENCODINGS:
        return data.decode(_TEXT_ENCODINGS[name], "replace")
    if name == "base64":
        return base64.b64encode(data).decode("ascii")
    if name == "hex":
        return data.hex()
    raise _HostError("ERR_UNKNOWN_ENCODING", f"Unknown encoding: {encoding}")


def _os_error(exc: OSError, syscall: str, path: object) -> _HostError:
    code = errno.errorcode.get(exc.errno or 0, "EIO")
    reason = (exc.strerror or "i/o error").lower()  # Node's (libuv's) wording is lower case
    return _HostError(code, f"{code}: {reason}, {syscall} '{path}'")
