"""The import rules between vmctl's parts (docs/architecture.md), read from the source.

Each module's imports are parsed, not executed, so a rule broken in a branch that
never runs is caught too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "vmctl"

# Part -> the other parts of vmctl it may import. A module belongs to the longest
# part its name starts with; every part may import itself.
MAY_IMPORT: dict[str, frozenset[str]] = {
    "vmctl": frozenset(),  # this module only, not the package: see _part
    "vmctl.json_depth": frozenset(),
    "vmctl.api": frozenset({"vmctl.json_depth"}),
    "vmctl.protocol": frozenset({"vmctl.json_depth"}),
    "vmctl.sandbox": frozenset({"vmctl.protocol"}),
    "vmctl.lifeline": frozenset(),
    "vmctl.daemon_options": frozenset(),
    "vmctl.api_token": frozenset(),
    "vmctl.worker": frozenset({"vmctl.protocol", "vmctl.lifeline", "vmctl.sandbox"}),
    "vmctl.client": frozenset({"vmctl.api", "vmctl.api_token", "vmctl.daemon_options"}),
    "vmctl.cli": frozenset(
        {
            "vmctl.client",
            "vmctl.api",
            "vmctl.daemon_options",
            "vmctl.api_token",
            "vmctl.sandbox",
            "vmctl.mcp",
        }
    ),
    "vmctl.mcp": frozenset({"vmctl.client", "vmctl.api"}),
    "vmctl.supervisor": frozenset(),  # the package's own __init__: a docstring
    "vmctl.supervisor.__main__": frozenset({"vmctl.supervisor.server"}),
    "vmctl.supervisor.config": frozenset({"vmctl.daemon_options"}),
    "vmctl.supervisor.metrics": frozenset(),  # prometheus_client and the standard library
    "vmctl.supervisor.server": frozenset(
        {
            "vmctl.supervisor.config",
            "vmctl.supervisor.http",
            "vmctl.supervisor.connections",
            "vmctl.daemon_options",
            "vmctl.api_token",
        }
    ),
    "vmctl.supervisor.connections": frozenset({"vmctl.supervisor.config", "vmctl.supervisor.http"}),
    "vmctl.supervisor.http": frozenset(
        {
            "vmctl.api",
            "vmctl.json_depth",
            "vmctl.mcp",
            "vmctl.supervisor.config",
            "vmctl.supervisor.metrics",
            "vmctl.supervisor.sessions",
            "vmctl.supervisor.store.models",
        }
    ),
    "vmctl.supervisor.sessions": frozenset(
        {
            "vmctl.api",
            "vmctl.protocol",
            "vmctl.supervisor.config",
            "vmctl.supervisor.metrics",
            "vmctl.supervisor.workers",
            "vmctl.supervisor.store",
        }
    ),
    "vmctl.supervisor.workers": frozenset(
        {
            "vmctl.api",
            "vmctl.protocol",
            "vmctl.lifeline",
            "vmctl.sandbox",
            "vmctl.supervisor.config",
            "vmctl.supervisor.metrics",
            "vmctl.supervisor.store.models",
        }
    ),
    "vmctl.supervisor.store": frozenset(
        {"vmctl.api", "vmctl.json_depth", "vmctl.supervisor.metrics"}
    ),
}

# Third-party packages only some parts may use.
ONLY_IN = {
    "starlette": ("vmctl.supervisor.http",),
    "sse_starlette": ("vmctl.supervisor.http.streams",),
    "uvicorn": ("vmctl.supervisor.server", "vmctl.supervisor.connections"),
    "prometheus_client": ("vmctl.supervisor.metrics", "vmctl.supervisor.http.metrics"),
    "mcp": ("vmctl.mcp",),
    "mcp_types": ("vmctl.mcp",),
}


def _module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


MODULES = _module_names()


def _part(module: str) -> str:
    if module == "vmctl":
        return module  # the package's __init__: a docstring
    owners = [p for p in MAY_IMPORT if module == p or module.startswith(p + ".")]
    assert owners, f"{module} belongs to no part of MAY_IMPORT"
    return max(owners, key=len)


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _imports(path: Path) -> list[str]:
    """Every module ``path`` imports, a ``from X import Y`` of a submodule as ``X.Y``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            subs = [f"{node.module}.{a.name}" for a in node.names]
            found += [s for s in subs if s in MODULES] or [node.module]
    return found


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_follow_the_arrows(module: str) -> None:
    part = _part(module)
    allowed = MAY_IMPORT[part] | {part}
    wrong = [
        name
        for name in _imports(MODULES[module])
        if _within(name, "vmctl") and not any(_within(name, a) for a in allowed)
    ]
    assert wrong == [], f"{module} ({part}) may not import {wrong}"


@pytest.mark.parametrize(("package", "owners"), sorted(ONLY_IN.items()))
def test_a_library_of_some_parts_is_imported_nowhere_else(
    package: str, owners: tuple[str, ...]
) -> None:
    users = sorted(
        module
        for module, path in MODULES.items()
        if any(_within(name, package) for name in _imports(path))
        and not any(_within(module, owner) for owner in owners)
    )
    assert users == []


def test_the_rules_see_every_part() -> None:
    # A rule for a part that no longer exists would check nothing.
    assert all(any(_within(m, part) for m in MODULES) for part in MAY_IMPORT)
