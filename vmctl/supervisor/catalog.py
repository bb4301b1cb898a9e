"""What a template may name: host modules from the catalog, and library files."""

from __future__ import annotations

from vmctl.supervisor.errors import ApiError, validation_error

# Host-provided modules a template may expose to ``require(name)``.
MODULE_CATALOG: dict[str, str] = {
    "fs": "read-only access to files inside the session's worktree",
}

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
    raise ApiError("MODULE_NOT_ALLOWED", f"Module not allowed: {why}", {"name": name})


def check_library_name(name: str) -> str:
    """A library name is a file stem under ``$VMCTL_HOME/libraries``."""
    if "/" in name or "\\" in name or "\x00" in name or name in {".", ".."}:
        raise validation_error("name", f"Library name {name!r} must be a plain file name")
    return name
