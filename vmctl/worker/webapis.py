"""The web APIs' vendored libraries, handed to the prelude's ``webapis.js``.

``vendor/*.js`` are bundles built by ``tools/vendor/webapis`` (see its README): each file is
one function expression that initialises its library and returns its exports, touching no
global. Two kinds:

- **Eager** (small, cheap to set up): :func:`vendor_source` is the script the worker evaluates
  before the prelude; it sets ``globalThis.__vmctl_vendor`` to an object of their functions,
  which ``webapis.js`` takes and deletes.
- **Lazy** (URL and the text codecs: most of the bytes): :func:`lazy_scripts` are evaluated
  only when their globals are first read, through the engine's ``__vmctl_host_load``. A
  worker that never uses ``URL`` neither reads their bytecode nor keeps their functions in its
  heap (about 2 ms and 1.7 MiB a worker).

Both are read beside this file with plain ``open``, as the prelude's files are, once per
process: the engine keeps the compiled scripts' bytecode by this very text.
"""

from __future__ import annotations

import functools
import os

# The key webapis.js reads -> the bundle in vendor/.
EAGER_FILES = {"clone": "structured-clone.js", "events": "events.js"}
LAZY_FILES = {"url": "url.js", "encoding": "encoding.js"}
# What webapis.js defines for the engine to hand each lazy script's value to (it takes it).
RECEIVE = (
    "(() => { const f = globalThis.__vmctl_receive;"
    " delete globalThis.__vmctl_receive; return f; })()"
)

_DIRECTORY = os.path.join(os.path.dirname(__file__), "vendor")


def _read(name: str) -> str:
    with open(os.path.join(_DIRECTORY, name), encoding="utf-8") as file:
        return file.read()


@functools.cache
def vendor_source() -> str:
    """``globalThis.__vmctl_vendor = { clone: (function () {...}), ... };`` of the eager ones."""
    parts = ["globalThis.__vmctl_vendor = {\n"]
    parts += [f"{key}: {_read(name)},\n" for key, name in EAGER_FILES.items()]
    parts.append("};\n")
    return "".join(parts)


@functools.cache
def lazy_scripts() -> dict[str, tuple[str, str]]:
    """Name -> (filename, source) of the lazy ones; each script's value is its function."""
    return {key: (f"<vendor:{key}>", _read(name)) for key, name in LAZY_FILES.items()}
