"""Host modules for ``require(name)``: today only ``fs``, read-only, inside the worktree.

JavaScript sees a global ``require``; it works for the names of the protocol's
:data:`~vmctl.protocol.MODULE_CATALOG` that the request's ``runtime.modules`` enables, and
throws ``Error: Cannot find module 'x'`` for any other. The Python side is one method,
:meth:`HostModules.call`, that takes the enabled names, an operation name and its arguments as
JSON text and answers ``{"ok": value}`` or ``{"error", "code"}`` as JSON text: JSON keeps
values intact across the binding, and a callable must never raise (the binding would leave
the Python error set). The session exposes it to JavaScript as ``__vmctl_host_modules``,
passing the running request's ``modules``.

The gate is here, not in JavaScript: every call, ``require`` or an operation of a module
object obtained earlier, is refused unless its module is enabled for the running request.
What JavaScript holds (a module object kept in a global, a closure reached through a
stack-trace hook, a reply forged by a replaced ``JSON.parse``) therefore never gives more
than the template enables now.

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

# Evaluated once after the prelude, before any user code. It takes the host callable out of
# the global scope, and uses only built-ins captured here, so that replacing JSON.parse,
# Error or Object.* later changes nothing in it. Python enforces the module gate (see call).
REQUIRE_SOURCE = r"""
(function () {
  "use strict";
  const host = globalThis.__vmctl_host_modules;
  delete globalThis.__vmctl_host_modules;
  const { parse, stringify } = JSON;
  const { defineProperty, freeze, hasOwn } = Object;
  const ErrorCtor = Error;
  function call(op, args) {
    const reply = parse(host(op, stringify(args)));
    if (hasOwn(reply, "error")) {
      const error = new ErrorCtor(reply.error);
      if (hasOwn(reply, "code")) {
        defineProperty(error, "code", {
          value: reply.code, writable: true, enumerable: true, configurable: true,
        });
      }
      throw error;
    }
    return reply.ok;
  }
  const fs = freeze({
    readFileSync: (path, options) => call("fs.readFileSync", [path, options]),
    existsSync: (path) => call("fs.existsSync", [path]),
    readdirSync: (path) => call("fs.readdirSync", [path]),
  });
  const modules = freeze({ __proto__: null, fs });
  function require(name) {
    return modules[call("require", [name])];
  }
  defineProperty(globalThis, "require", {
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
        # Each operation -> the module it belongs to, and what does it.
        self._operations: dict[str, tuple[str, Callable[..., Any]]] = {
            "fs.readFileSync": ("fs", self._read_file),
            "fs.existsSync": ("fs", self._exists),
            "fs.readdirSync": ("fs", self._read_dir),
        }

    def call(self, enabled: frozenset[str], op: object, args_json: object) -> str:
        """Run operation ``op`` if its module is in ``enabled``, the running request's
        ``runtime.modules`` (empty between requests). Never raises."""
        try:
            args = _arguments(args_json)
            name = str(op)
            if name == "require":
                return json.dumps({"ok": _require(enabled, *args)})
            if name not in self._operations:
                raise _HostError("ERR_UNKNOWN_OPERATION", f"Unknown host operation {name!r}")
            module, operation = self._operations[name]
            _check_enabled(enabled, module)
            return json.dumps({"ok": operation(*args)})
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


def _arguments(args_json: object) -> list[Any]:
    """The operation's arguments: a JSON list (a user's toJSON may have made anything)."""
    try:
        args = json.loads(str(args_json))
    except (ValueError, RecursionError):
        args = None
    if not isinstance(args, list):
        raise _HostError("ERR_INVALID_ARG_TYPE", "host operation arguments must be a JSON list")
    return args


def _require(enabled: frozenset[str], name: object = None) -> str:
    module = str(name).removeprefix("node:")
    if module not in MODULE_CATALOG or module not in enabled:
        raise _HostError("MODULE_NOT_FOUND", f"Cannot find module '{name}'")
    return module


def _check_enabled(enabled: frozenset[str], module: str) -> None:
    """Refuse an operation of a module the running request does not enable (any more)."""
    if module not in MODULE_CATALOG or module not in enabled:
        raise _HostError(
            "MODULE_NOT_FOUND", f"Cannot find module '{module}': it is not enabled for this session"
        )


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
