"""What a template may name: host modules from the protocol's catalog, and library files."""

from __future__ import annotations

from vmctl.protocol import MODULE_CATALOG
from vmctl.supervisor.sessions.errors import Invalid, validation_error

# Names of JavaScript built-ins: always there, so never a module to add.
JS_BUILTINS = frozenset(
    {
        "json", "math", "console", "date", "promise", "reflect", "proxy", "intl", "regexp",
        "array", "object", "string", "number", "boolean", "symbol", "bigint", "map", "set",
        "weakmap", "weakset", "error", "atomics", "globalthis", "arraybuffer", "dataview",
    }
)  # fmt: skip


def check_module(name: str) -> str:
    if name in MODULE_CATALOG:
        return name
    if name.lower() in JS_BUILTINS:
        why = f"{name!r} is a JavaScript built-in, always available without a module"
    else:
        why = f"{name!r} is not in the module catalog (available: {', '.join(MODULE_CATALOG)})"
    raise Invalid("MODULE_NOT_ALLOWED", f"Module not allowed: {why}", {"name": name})


def check_library_name(name: str) -> str:
    """A library name is a file stem under ``$VMCTL_HOME/libraries``."""
    if "/" in name or "\\" in name or "\x00" in name or name in {".", ".."}:
        raise validation_error("name", f"Library name {name!r} must be a plain file name")
    return name
