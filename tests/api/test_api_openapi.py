"""``GET /api/v1/openapi.json``: a valid OpenAPI 3.1 document of every route, served with
the token, generated from the types the daemon decodes and encodes with."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, get_args

import httpx
import jsonschema_rs
import pytest
from schemathesis.specs.openapi.definitions import OPENAPI_31
from starlette.routing import Route

from real_daemon import Daemon, error_code
from vmctl.api.errors import ErrorCode
from vmctl.supervisor.http.app import ROUTES
from vmctl.supervisor.http.errors import STATUS_BY_CODE
from vmctl.supervisor.http.openapi import build_document

DIALECT = "https://json-schema.org/draft/2020-12/schema"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_document(ROUTES)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    # The OpenAPI Initiative's schema of 3.1 documents, as schemathesis ships it.
    jsonschema_rs.Draft202012Validator(OPENAPI_31).validate(document)
    assert document["openapi"] == "3.1.0"


def test_every_component_is_a_valid_json_schema(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert {"ErrorEnvelope", "Execution", "Event", "CreateStartupFile"} <= set(schemas)
    for name, schema in schemas.items():
        # Against JSON Schema 2020-12's metaschema, the dialect of OpenAPI 3.1.
        jsonschema_rs.meta.validate({"$schema": DIALECT, **schema})
        assert schema["type"] == "object", name


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    refs = set(_refs(document))
    assert refs
    for ref in refs:
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in document["components"]["schemas"]


def test_every_route_is_documented_with_its_methods(document: dict[str, Any]) -> None:
    routes = [route for route in ROUTES if isinstance(route, Route)]
    documented = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    expected = {
        (method, route.path_format)
        for route in routes
        for method in (route.methods or set()) - {"HEAD"}
    }
    assert documented == expected


def test_every_code_of_the_status_table_is_in_the_envelope() -> None:
    assert set(STATUS_BY_CODE) == set(get_args(ErrorCode))


def _codes(envelope: dict[str, Any]) -> list[str]:
    codes: list[str] = envelope["allOf"][1]["properties"]["error"]["properties"]["code"]["enum"]
    return codes


def test_each_error_status_allows_only_its_own_codes(document: dict[str, Any]) -> None:
    startup = document["paths"]["/api/v1/templates/{template_id}/startup-files"]["post"]
    codes = {
        status: _codes(answer["content"]["application/json"]["schema"])
        for status, answer in startup["responses"].items()
        if int(status) >= 400
    }
    for status, listed in codes.items():
        assert {STATUS_BY_CODE[code] for code in listed} == {int(status)}
    assert "TEMPLATE_NOT_FOUND" in codes["404"]
    assert set(codes["422"]) == {"INVALID_PATH", "STARTUP_MODE_UNSUPPORTED"}
    assert {"400", "401", "403", "404", "405", "413", "415", "500", "503", "507"} <= set(codes)


def test_health_alone_is_open(document: dict[str, Any]) -> None:
    open_operations = [
        (path, method)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if operation.get("security") == []
    ]
    assert open_operations == [("/api/v1/health", "get")]
    assert document["security"] == [{"bearer": []}]


def test_the_v1_1_additions_are_described(document: dict[str, Any]) -> None:
    paths = document["paths"]
    stream = paths["/api/v1/executions/{execution_id}/stream"]["get"]
    assert "text/event-stream" in stream["responses"]["200"]["content"]
    names = {p["name"] for p in stream["parameters"]}
    assert names == {"execution_id", "after_seq", "Last-Event-ID"}
    events = paths["/api/v1/executions/{execution_id}/events"]["get"]
    assert "X-Next-After-Seq" in events["responses"]["200"]["headers"]
    wait_ms = next(p for p in events["parameters"] if p["name"] == "wait_ms")
    assert wait_ms["schema"]["maximum"] == 30_000
    repl = paths["/api/v1/executions/repl"]["post"]
    assert {"201", "202"} <= set(repl["responses"])
    assert "cancel" in paths["/api/v1/executions/{execution_id}/cancel"]["post"]["operationId"]


def test_answers_list_every_field_as_sent(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert "closed_at" in schemas["Session"]["required"]  # sent as null
    assert "name" not in schemas["Deleted"].get("required", [])  # left out when absent
    assert schemas["ReplBody"]["required"] == []  # a request's fields stay optional


def test_the_daemon_serves_the_document_with_the_token(daemon: Daemon) -> None:
    url = daemon.url + "/api/v1/openapi.json"
    assert error_code(httpx.get(url)) == "UNAUTHORIZED"
    with daemon.client() as api:
        answer = api.get("/openapi.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == json.loads(json.dumps(build_document(ROUTES)))
