"""Templates and their sub-resources, through real HTTP."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from real_daemon import JSON_BODY, error_code, session_body

TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")

Make = Callable[..., dict[str, Any]]


def test_create_template_returns_the_contract_shape(api: httpx.Client) -> None:
    response = api.post("/templates", json={"name": f"shape-{uuid.uuid4()}"})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {
        "id", "name", "engine", "is_active", "exposed_modules", "libraries",
        "created_at", "updated_at",
    }  # fmt: skip
    assert body["engine"] == "quickjs"
    assert body["is_active"] is True
    assert body["exposed_modules"] == [] and body["libraries"] == []
    assert TS.fullmatch(body["created_at"]) and TS.fullmatch(body["updated_at"])
    assert str(uuid.UUID(body["id"])) == body["id"]


def test_goja_engine_is_accepted_and_stored_as_sent(api: httpx.Client) -> None:
    response = api.post("/templates", json={"name": f"goja-{uuid.uuid4()}", "engine": "goja"})
    assert response.status_code == 201
    assert response.json()["engine"] == "goja"


def test_unknown_engine_is_a_validation_error(api: httpx.Client) -> None:
    response = api.post("/templates", json={"name": "x", "engine": "v8"})
    assert response.status_code == 400
    assert error_code(response) == "VALIDATION_ERROR"


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": None}])
def test_missing_or_empty_name_is_a_validation_error(api: httpx.Client, body: Any) -> None:
    response = api.post("/templates", json=body)
    assert response.status_code == 400
    assert error_code(response) == "VALIDATION_ERROR"


@pytest.mark.parametrize(
    "content",
    [b"{", b"[]", b'"name"', b'{"name": 5}', b'{"name": "a", "colour": "red"}', b""],
)
def test_malformed_or_mistyped_bodies_are_invalid_requests(
    api: httpx.Client, content: bytes
) -> None:
    response = api.post("/templates", content=content, headers=JSON_BODY)
    assert response.status_code == 400
    assert error_code(response) == "INVALID_REQUEST"


def test_duplicate_name_is_taken(api: httpx.Client) -> None:
    name = f"dup-{uuid.uuid4()}"
    assert api.post("/templates", json={"name": name}).status_code == 201
    response = api.post("/templates", json={"name": name})
    assert response.status_code == 409
    assert error_code(response) == "TEMPLATE_NAME_TAKEN"


def test_list_is_newest_first(api: httpx.Client, make_template: Make) -> None:
    first, second = make_template(), make_template()
    ids = [t["id"] for t in api.get("/templates").json()]
    assert ids.index(second["id"]) < ids.index(first["id"])


def test_get_returns_template_settings_and_sub_resources(
    api: httpx.Client, make_template: Make
) -> None:
    template = make_template()
    body = api.get(f"/templates/{template['id']}").json()
    assert body["template"] == template
    assert body["capabilities"] == [] and body["startup_files"] == []
    assert body["settings"] == {
        "vm_id": template["id"],
        "limits": {
            "cpu_ms": 2000, "wall_ms": 5000, "mem_mb": 128,
            "max_events": 50000, "max_output_kb": 256,
        },
        "resolver": {"roots": ["."], "extensions": [".js", ".mjs"],
                     "allow_absolute_repo_imports": False},
        "runtime": {"esm": False, "strict": False, "console": True},
        "lifecycle": {"idle_timeout_ms": None, "max_lifetime_ms": None, "restart": "never"},
    }  # fmt: skip


def test_uppercase_ids_are_normalised(api: httpx.Client, make_template: Make) -> None:
    template = make_template()
    response = api.get(f"/templates/{template['id'].upper()}")
    assert response.status_code == 200
    assert response.json()["template"]["id"] == template["id"]


def test_unknown_and_malformed_template_ids(api: httpx.Client) -> None:
    missing = api.get(f"/templates/{uuid.uuid4()}")
    assert missing.status_code == 404 and error_code(missing) == "TEMPLATE_NOT_FOUND"
    malformed = api.get("/templates/not-a-uuid")
    assert malformed.status_code == 400 and error_code(malformed) == "VALIDATION_ERROR"
    assert malformed.json()["error"]["details"]["field"] == "template_id"


def test_settings_put_merges_given_keys(api: httpx.Client, make_template: Make) -> None:
    template = make_template()
    response = api.put(
        f"/templates/{template['id']}/settings",
        json={"limits": {"wall_ms": 900}, "runtime": {"strict": True}},
    )
    assert response.status_code == 200
    settings = response.json()
    assert settings["limits"]["wall_ms"] == 900
    assert settings["limits"]["cpu_ms"] == 2000  # left out: kept
    assert settings["runtime"] == {"esm": False, "strict": True, "console": True}
    assert api.get(f"/templates/{template['id']}").json()["settings"] == settings


@pytest.mark.parametrize("value", [0, -5])
def test_non_positive_limit_is_a_validation_error(
    api: httpx.Client, make_template: Make, value: int
) -> None:
    template = make_template()
    response = api.put(f"/templates/{template['id']}/settings", json={"limits": {"cpu_ms": value}})
    assert response.status_code == 400 and error_code(response) == "VALIDATION_ERROR"


@pytest.mark.parametrize(
    "body", [{"limits": {"cpu_ms": "fast"}}, {"limits": {"speed": 1}}, {"colour": {}}, []]
)
def test_settings_wrong_type_or_unknown_key_is_invalid(
    api: httpx.Client, make_template: Make, body: Any
) -> None:
    template = make_template()
    response = api.put(f"/templates/{template['id']}/settings", json=body)
    assert response.status_code == 400 and error_code(response) == "INVALID_REQUEST"


def test_capabilities_create_list_and_duplicate(api: httpx.Client, make_template: Make) -> None:
    template = make_template()
    url = f"/templates/{template['id']}/capabilities"
    created = api.post(url, json={"kind": "net", "name": "http"})
    assert created.status_code == 201
    body = created.json()
    assert body["vm_id"] == template["id"]
    assert (body["enabled"], body["config"]) == (False, {})
    assert api.get(url).json() == [body]
    duplicate = api.post(url, json={"kind": "net", "name": "http", "enabled": True})
    assert duplicate.status_code == 409 and error_code(duplicate) == "DUPLICATE"
    missing = api.post(url, json={"kind": "net"})
    assert missing.status_code == 400 and error_code(missing) == "VALIDATION_ERROR"


def test_startup_files_are_cleaned_and_ordered(api: httpx.Client, make_template: Make) -> None:
    template = make_template()
    url = f"/templates/{template['id']}/startup-files"
    second = api.post(url, json={"path": "x/../b.js", "order_index": 2})
    first = api.post(url, json={"path": "./a.js", "order_index": 1})
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["path"] == "a.js" and second.json()["path"] == "b.js"
    assert [f["path"] for f in api.get(url).json()] == ["a.js", "b.js"]
    duplicate = api.post(url, json={"path": "a.js"})
    assert duplicate.status_code == 409 and error_code(duplicate) == "DUPLICATE"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "VALIDATION_ERROR"),
        ({"path": ""}, 400, "VALIDATION_ERROR"),
        ({"path": "   "}, 422, "INVALID_PATH"),
        ({"path": "."}, 422, "INVALID_PATH"),
        ({"path": "/etc/passwd"}, 422, "INVALID_PATH"),
        ({"path": "../up.js"}, 422, "INVALID_PATH"),
        ({"path": "a/../../up.js"}, 422, "INVALID_PATH"),
        ({"path": "a.js", "mode": "import"}, 422, "STARTUP_MODE_UNSUPPORTED"),
    ],
)
def test_startup_file_rules(
    api: httpx.Client, make_template: Make, body: Any, status: int, code: str
) -> None:
    template = make_template()
    response = api.post(f"/templates/{template['id']}/startup-files", json=body)
    assert response.status_code == status and error_code(response) == code


def test_modules_only_from_the_catalog(api: httpx.Client, make_template: Make) -> None:
    template = make_template()
    url = f"/templates/{template['id']}/modules"
    for _ in range(2):  # idempotent
        added = api.post(url, json={"name": "fs"})
        assert added.status_code == 201
        assert added.json() == {"template_id": template["id"], "name": "fs"}
    assert api.get(url).json() == ["fs"]
    assert api.get(f"/templates/{template['id']}").json()["template"]["exposed_modules"] == ["fs"]
    for name in ["json", "console", "child_process"]:
        refused = api.post(url, json={"name": name})
        assert refused.status_code == 422 and error_code(refused) == "MODULE_NOT_ALLOWED"
    removed = api.delete(f"{url}/fs")
    assert removed.status_code == 200
    assert removed.json() == {"status": "ok", "template_id": template["id"], "name": "fs"}
    assert api.get(url).json() == []


def test_libraries_add_list_remove(api: httpx.Client, make_template: Make) -> None:
    template = make_template()
    url = f"/templates/{template['id']}/libraries"
    assert api.post(url, json={"name": "lodash"}).status_code == 201
    assert api.post(url, json={"name": "lodash"}).status_code == 201
    assert api.get(url).json() == ["lodash"]
    refused = api.post(url, json={"name": "../evil"})
    assert refused.status_code == 400 and error_code(refused) == "VALIDATION_ERROR"
    assert api.delete(f"{url}/lodash").status_code == 200
    assert api.get(url).json() == []


@pytest.mark.parametrize("suffix", ["capabilities", "startup-files", "modules", "libraries"])
def test_sub_resources_of_unknown_template(api: httpx.Client, suffix: str) -> None:
    response = api.get(f"/templates/{uuid.uuid4()}/{suffix}")
    assert response.status_code == 404 and error_code(response) == "TEMPLATE_NOT_FOUND"


def test_delete_template_and_in_use(api: httpx.Client, make_template: Make, worktree: Path) -> None:
    template = make_template()
    session = api.post("/sessions", json=session_body(template["id"], worktree)).json()
    in_use = api.delete(f"/templates/{template['id']}")
    assert in_use.status_code == 409 and error_code(in_use) == "TEMPLATE_IN_USE"
    api.post(f"/sessions/{session['id']}/close")
    deleted = api.delete(f"/templates/{template['id']}")
    assert deleted.status_code == 200
    assert deleted.json() == {"status": "ok", "template_id": template["id"]}
    assert api.get(f"/templates/{template['id']}").status_code == 404
    gone = api.delete(f"/templates/{template['id']}")
    assert gone.status_code == 404 and error_code(gone) == "TEMPLATE_NOT_FOUND"
