"""``vmctl template ...`` against a real daemon: output, --json, errors and exit codes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from cli.runner import Vmctl

Json = Callable[..., Any]


@pytest.fixture
def template(vmctl_json: Json) -> dict[str, Any]:
    created: dict[str, Any] = vmctl_json("template", "create", "--name", f"t-{uuid.uuid4()}")
    return created


def test_create_prints_name_and_id(vmctl: Vmctl) -> None:
    name = f"t-{uuid.uuid4()}"
    result = vmctl("template", "create", "--name", name)
    assert result.exit_code == 0
    assert result.stdout.startswith(f"Created template {name} (")


def test_create_json_is_the_template_object(vmctl_json: Json) -> None:
    created = vmctl_json("template", "create", "--name", f"t-{uuid.uuid4()}")
    assert created["engine"] == "quickjs"
    assert created["exposed_modules"] == [] and created["libraries"] == []
    assert set(created) >= {"id", "name", "is_active", "created_at", "updated_at"}


def test_a_taken_name_is_an_error_with_its_code(vmctl: Vmctl, template: dict[str, Any]) -> None:
    result = vmctl("template", "create", "--name", template["name"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ")
    assert result.stderr.rstrip().endswith("(TEMPLATE_NAME_TAKEN)")


def test_an_unknown_engine_is_refused(vmctl: Vmctl) -> None:
    result = vmctl("template", "create", "--name", f"t-{uuid.uuid4()}", "--engine", "nope")
    assert result.exit_code == 1
    assert "(VALIDATION_ERROR)" in result.stderr


def test_list_is_a_table_with_the_template(vmctl: Vmctl, template: dict[str, Any]) -> None:
    result = vmctl("template", "list")
    assert result.exit_code == 0
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["ID", "NAME", "ENGINE", "MODULES", "LIBRARIES", "CREATED"]
    assert any(row.split()[:2] == [template["id"], template["name"]] for row in rows)


def test_list_json_is_a_list(vmctl_json: Json, template: dict[str, Any]) -> None:
    assert template["id"] in [t["id"] for t in vmctl_json("template", "list")]


def test_get_accepts_a_name_or_an_id(vmctl: Vmctl, template: dict[str, Any]) -> None:
    by_name = vmctl("template", "get", template["name"])
    by_id = vmctl("template", "get", template["id"])
    assert by_name.exit_code == by_id.exit_code == 0
    assert by_name.stdout == by_id.stdout
    assert f"Template:   {template['name']} ({template['id']})" in by_name.stdout
    assert "Limits:     cpu_ms=2000 wall_ms=5000 mem_mb=128" in by_name.stdout


def test_get_of_an_unknown_template_says_not_found(vmctl: Vmctl) -> None:
    by_name = vmctl("template", "get", "no-such-template")
    assert by_name.exit_code == 1
    assert "(TEMPLATE_NOT_FOUND)" in by_name.stderr
    by_id = vmctl("template", "get", str(uuid.uuid4()))
    assert by_id.exit_code == 1
    assert "(TEMPLATE_NOT_FOUND)" in by_id.stderr


def test_set_limits_changes_only_the_limits_given(
    vmctl: Vmctl, vmctl_json: Json, template: dict[str, Any]
) -> None:
    result = vmctl("template", "set-limits", template["name"], "--wall-ms", "750")
    assert result.exit_code == 0
    assert "wall_ms=750" in result.stdout
    vmctl_json("template", "set-limits", template["id"], "--max-events", "10")
    limits = vmctl_json("template", "get", template["id"])["settings"]["limits"]
    assert limits == {
        "cpu_ms": 2000, "wall_ms": 750, "mem_mb": 128, "max_events": 10, "max_output_kb": 256,
    }  # fmt: skip


def test_set_limits_needs_a_limit_and_positive_values(
    vmctl: Vmctl, template: dict[str, Any]
) -> None:
    nothing = vmctl("template", "set-limits", template["id"])
    assert nothing.exit_code == 2
    assert "give at least one limit" in nothing.stderr
    zero = vmctl("template", "set-limits", template["id"], "--cpu-ms", "0")
    assert zero.exit_code == 2


def test_set_runtime_changes_only_the_flags_given(
    vmctl_json: Json, template: dict[str, Any]
) -> None:
    settings = vmctl_json("template", "set-runtime", template["id"], "--esm")
    assert settings["runtime"] == {"esm": True, "strict": False, "console": True}
    settings = vmctl_json("template", "set-runtime", template["id"], "--strict", "--no-esm")
    assert settings["runtime"] == {"esm": False, "strict": True, "console": True}


def test_startup_files_are_added_and_listed_in_order(
    vmctl: Vmctl, template: dict[str, Any]
) -> None:
    first = vmctl("template", "add-startup", template["id"], "--path", "./b.js", "--order", "2")
    assert first.exit_code == 0
    added = vmctl("template", "add-startup", template["id"], "--path", "a.js", "--order", "1")
    assert added.stdout == "Added startup file a.js (order 1)\n"
    listed = vmctl("template", "list-startup", template["id"])
    assert listed.stdout.splitlines() == [
        "ORDER  MODE  PATH",
        "1      eval  a.js",
        "2      eval  b.js",
    ]


def test_a_startup_path_outside_the_worktree_is_refused(
    vmctl: Vmctl, template: dict[str, Any]
) -> None:
    result = vmctl("template", "add-startup", template["id"], "--path", "../x.js")
    assert result.exit_code == 1
    assert "(INVALID_PATH)" in result.stderr
    mode = vmctl("template", "add-startup", template["id"], "--path", "x.js", "--mode", "module")
    assert mode.exit_code == 1
    assert "(STARTUP_MODE_UNSUPPORTED)" in mode.stderr


def test_modules_from_the_catalog_are_added_listed_and_removed(
    vmctl: Vmctl, template: dict[str, Any]
) -> None:
    assert vmctl("template", "list-modules", template["id"]).stdout == "No modules.\n"
    assert vmctl("template", "add-module", template["id"], "--name", "fs").exit_code == 0
    assert vmctl("template", "list-modules", template["id"]).stdout == "fs\n"
    removed = vmctl("template", "remove-module", template["id"], "--name", "fs")
    assert removed.stdout == "Removed module fs\n"
    assert vmctl("template", "list-modules", template["id"]).stdout == "No modules.\n"


def test_a_module_outside_the_catalog_is_refused(vmctl: Vmctl, template: dict[str, Any]) -> None:
    result = vmctl("template", "add-module", template["id"], "--name", "math")
    assert result.exit_code == 1
    assert "(MODULE_NOT_ALLOWED)" in result.stderr


def test_libraries_are_added_listed_and_removed(vmctl: Vmctl, template: dict[str, Any]) -> None:
    assert vmctl("template", "add-library", template["id"], "--name", "lodash").exit_code == 0
    assert vmctl("template", "list-libraries", template["id"]).stdout == "lodash\n"
    assert vmctl("template", "remove-library", template["id"], "--name", "lodash").exit_code == 0
    assert vmctl("template", "list-libraries", template["id"]).stdout == "No libraries.\n"
    slash = vmctl("template", "add-library", template["id"], "--name", "a/b")
    assert slash.exit_code == 1
    assert "(VALIDATION_ERROR)" in slash.stderr


def test_capabilities_take_a_json_config(
    vmctl: Vmctl, vmctl_json: Json, template: dict[str, Any]
) -> None:
    added = vmctl_json(
        "template", "add-capability", template["id"], "--kind", "net", "--name", "http",
        "--config", '{"hosts": ["example.org"]}',
    )  # fmt: skip
    assert (added["kind"], added["name"], added["enabled"]) == ("net", "http", True)
    assert added["config"] == {"hosts": ["example.org"]}
    listed = vmctl("template", "list-capabilities", template["id"])
    assert listed.stdout.splitlines()[1].split()[:3] == ["net", "http", "yes"]


def test_a_config_that_is_not_a_json_object_is_a_usage_error(
    vmctl: Vmctl, template: dict[str, Any]
) -> None:
    for config in ("{nope", "[1, 2]"):
        result = vmctl(
            "template", "add-capability", template["id"], "--name", "x", "--config", config
        )
        assert result.exit_code == 2
        assert "--config" in result.stderr


def test_delete_removes_the_template(vmctl: Vmctl, template: dict[str, Any]) -> None:
    result = vmctl("template", "delete", template["name"])
    assert result.exit_code == 0
    assert result.stdout == f"Deleted template {template['id']}\n"
    assert vmctl("template", "get", template["id"]).exit_code == 1


def test_set_lifecycle_changes_only_what_is_given_and_off_turns_a_timeout_off(
    vmctl: Vmctl, vmctl_json: Json, template: dict[str, Any]
) -> None:
    settings = vmctl_json("template", "set-lifecycle", template["id"], "--idle-timeout-ms", "6000")
    assert settings["lifecycle"] == {
        "idle_timeout_ms": 6000, "max_lifetime_ms": None, "restart": "never",
    }  # fmt: skip
    settings = vmctl_json(
        "template", "set-lifecycle", template["id"], "--max-lifetime-ms", "9000",
        "--restart", "on-crash",
    )  # fmt: skip
    assert settings["lifecycle"] == {
        "idle_timeout_ms": 6000, "max_lifetime_ms": 9000, "restart": "on-crash",
    }  # fmt: skip
    shown = vmctl("template", "set-lifecycle", template["id"], "--idle-timeout-ms", "off")
    assert shown.exit_code == 0
    assert "idle_timeout_ms=off max_lifetime_ms=9000 restart=on-crash" in shown.stdout


def test_set_lifecycle_refuses_what_is_not_a_timeout(
    vmctl: Vmctl, template: dict[str, Any]
) -> None:
    nothing = vmctl("template", "set-lifecycle", template["id"])
    assert nothing.exit_code == 2
    assert "give at least one option" in nothing.stderr
    for bad in ("0", "-1", "soon"):
        refused = vmctl("template", "set-lifecycle", template["id"], "--idle-timeout-ms", bad)
        assert refused.exit_code == 2, bad
        assert "neither a positive number of milliseconds nor 'off'" in refused.stderr
    too_long = vmctl("template", "set-lifecycle", template["id"], "--max-lifetime-ms", str(10**12))
    assert too_long.exit_code != 0
    assert "lifecycle.max_lifetime_ms" in too_long.stderr
