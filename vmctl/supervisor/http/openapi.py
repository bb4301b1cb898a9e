"""``GET /api/v1/openapi.json``: the OpenAPI 3.1 document of every route, generated.

Nothing in it is a hand-kept copy of a schema. The component schemas are msgspec's own
JSON Schema (``msgspec.json.schema_components``) of the types the daemon decodes and
encodes with: the request bodies of ``bodies.py``, the answers of ``vmctl/api/models.py``
and the envelope of ``vmctl/api/errors.py``. What msgspec cannot know, which body and
answer each route has, its query parameters and the error codes particular to it, is
written beside each route in :data:`OPERATIONS`; the codes every route can give (from
the middleware, a path id, a body, a query) are derived. The document is built from the
app's own route list the first time it is asked for, and kept: an undocumented route
fails that build (and the tests), so none can be added without its entry here.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Sequence
from typing import Any, get_args

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from vmctl.api import errors as api_errors
from vmctl.api import models
from vmctl.api.errors import ErrorCode, ErrorEnvelope
from vmctl.supervisor.http import bodies
from vmctl.supervisor.http.bodies import MAX_INTEGER
from vmctl.supervisor.http.endpoints import (
    EVENTS_PAGE,
    EVENTS_PAGE_MAX,
    NEXT_AFTER_SEQ,
    WAIT_MS_MAX,
)
from vmctl.supervisor.http.errors import STATUS_BY_CODE

API = "/api/v1"  # app.py's prefix; a route whose path drifts from it fails the build
TEMPLATE = API + "/templates/{template_id}"
SCHEMAS = "#/components/schemas/"
BEARER = "bearer"

# What the middleware and the connection can answer on any route (middleware.py,
# connections.py): a bad request head or a body out of time, the Host/Origin guard, a
# body too large or not JSON, a path that matches no route (an id with a "/"), a wrong
# method, a bug, too many connections.
ANY_ROUTE: tuple[ErrorCode, ...] = (
    "INVALID_REQUEST",
    "FORBIDDEN",
    "NOT_FOUND",
    "METHOD_NOT_ALLOWED",
    "PAYLOAD_TOO_LARGE",
    "UNSUPPORTED_MEDIA_TYPE",
    "INTERNAL",
    "CAPACITY_EXCEEDED",
)
# The store refuses a write when its disk is full; reads go on.
WRITE_METHODS = frozenset({"POST", "PUT", "DELETE"})
# A path parameter of this name is a UUID, and the object it names may not exist.
PATH_IDS: dict[str, ErrorCode] = {
    "template_id": "TEMPLATE_NOT_FOUND",
    "session_id": "SESSION_NOT_FOUND",
    "execution_id": "EXECUTION_NOT_FOUND",
}
# Every code an execution that ran may end with (the execution is recorded).
EXECUTION_ERRORS: tuple[ErrorCode, ...] = (
    "SESSION_NOT_FOUND",
    "SESSION_NOT_READY",
    "SESSION_BUSY",
    "OUTPUT_LIMIT_EXCEEDED",
    "EXECUTION_TIMEOUT",
    "MEMORY_LIMIT_EXCEEDED",
    "WORKER_CRASHED",
)
SESSION_START_ERRORS: tuple[ErrorCode, ...] = (
    "INVALID_PATH",
    "STARTUP_FAILED",
    "CAPACITY_EXCEEDED",
    "WORKER_CRASHED",
)


@dataclasses.dataclass(frozen=True)
class Param:
    """A query parameter (or, ``where="header"``, a request header)."""

    name: str
    schema: dict[str, Any]
    description: str
    required: bool = False
    where: str = "query"


@dataclasses.dataclass(frozen=True)
class Op:
    """What the document says of one route and method beyond its path."""

    summary: str
    answer: Any  # the type of the success body: a Struct, a list of them, list[str], ...
    status: int = 200
    body: type[bodies.Body] | None = None
    body_optional: bool = False  # cancel: no body, or {}
    also: tuple[int, ...] = ()  # other success statuses with the same answer (202)
    params: tuple[Param, ...] = ()
    errors: tuple[ErrorCode, ...] = ()  # the codes particular to this route
    media_type: str = "application/json"
    headers: dict[str, Any] = dataclasses.field(default_factory=dict)  # of the success
    description: str = ""
    open: bool = False  # no token needed


def _integer(minimum: int, maximum: int, default: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": minimum, "maximum": maximum, "default": default}


AFTER_SEQ = Param(
    "after_seq", _integer(0, MAX_INTEGER, 0), "Answer the events whose seq is greater."
)
WAIT = (
    "`wait` (default true) answers 201 once the execution has ended; `false` answers "
    "202 with the running record as soon as it is written, and the code runs on."
)
REPLAY = (
    'No body, `{}` or `{"replay": false}`: the session\'s state starts fresh. '
    '`{"replay": true}`: the executions that ended ok since its state last started '
    "fresh run again on the new worker, in order, under the current limits; "
    "`runtime_meta.replay` says how many, which gave another value, and the first that "
    "failed (the replay stops there; the session is ready either way)."
)

OPERATIONS: dict[tuple[str, str], Op] = {
    ("GET", API + "/health"): Op("Health check", models.Health, open=True),
    ("GET", API + "/openapi.json"): Op("This document", dict[str, Any]),
    ("GET", API + "/runtime/summary"): Op(
        "Live sessions and the host's sandbox", models.RuntimeSummary
    ),
    ("POST", API + "/templates"): Op(
        "Create a template", models.Template, 201, bodies.CreateTemplate,
        errors=("TEMPLATE_NAME_TAKEN",),
    ),
    ("GET", API + "/templates"): Op("List templates, newest first", list[models.Template]),
    ("GET", TEMPLATE): Op(
        "A template with its settings, capabilities and startup files", models.TemplateDetail
    ),
    ("DELETE", TEMPLATE): Op("Delete a template", models.Deleted, errors=("TEMPLATE_IN_USE",)),
    ("PUT", TEMPLATE + "/settings"): Op(
        "Merge into a template's settings", models.Settings, body=bodies.PutSettings,
        description="A key given replaces its value, a key left out keeps it, at every level.",
    ),
    ("POST", TEMPLATE + "/capabilities"): Op(
        "Add a capability", models.Capability, 201, bodies.CreateCapability, errors=("DUPLICATE",)
    ),
    ("GET", TEMPLATE + "/capabilities"): Op(
        "List a template's capabilities", list[models.Capability]
    ),
    ("POST", TEMPLATE + "/startup-files"): Op(
        "Add a startup file", models.StartupFile, 201, bodies.CreateStartupFile,
        errors=("DUPLICATE", "INVALID_PATH", "STARTUP_MODE_UNSUPPORTED"),
    ),
    ("GET", TEMPLATE + "/startup-files"): Op(
        "List a template's startup files by order_index", list[models.StartupFile]
    ),
    ("POST", TEMPLATE + "/modules"): Op(
        "Expose a module of the catalog", models.NamedItem, 201, bodies.NameBody,
        errors=("MODULE_NOT_ALLOWED",),
    ),
    ("GET", TEMPLATE + "/modules"): Op("A template's modules", list[str]),
    ("DELETE", TEMPLATE + "/modules/{name}"): Op("Remove a module (idempotent)", models.Deleted),
    ("POST", TEMPLATE + "/libraries"): Op("Add a library", models.NamedItem, 201, bodies.NameBody),
    ("GET", TEMPLATE + "/libraries"): Op("A template's libraries", list[str]),
    ("DELETE", TEMPLATE + "/libraries/{name}"): Op("Remove a library (idempotent)", models.Deleted),
    ("POST", API + "/sessions"): Op(
        "Create a session: start its worker", models.Session, 201, bodies.CreateSession,
        errors=("TEMPLATE_NOT_FOUND", *SESSION_START_ERRORS),
    ),
    ("GET", API + "/sessions"): Op(
        "List sessions, newest first", list[models.Session],
        params=(Param("status", {"enum": list(models.SESSION_STATUSES)}, "Only these."),),
    ),
    ("GET", API + "/sessions/{session_id}"): Op("A session", models.Session),
    ("DELETE", API + "/sessions/{session_id}"): Op("Close a session", models.Session),
    ("POST", API + "/sessions/{session_id}/close"): Op("Close a session", models.Session),
    ("POST", API + "/sessions/{session_id}/restart"): Op(
        "Restart a session with a fresh worker", models.Session,
        body=bodies.RestartBody, body_optional=True,
        errors=("SESSION_NOT_READY", *SESSION_START_ERRORS), description=REPLAY,
    ),
    ("POST", API + "/executions/repl"): Op(
        "Run a REPL snippet", models.Execution, 201, bodies.ReplBody, also=(202,),
        errors=EXECUTION_ERRORS, description=WAIT,
    ),
    ("POST", API + "/executions/run-file"): Op(
        "Run a file of the worktree", models.Execution, 201, bodies.RunFileBody, also=(202,),
        errors=(*EXECUTION_ERRORS, "FILE_NOT_FOUND", "INVALID_PATH"), description=WAIT,
    ),
    ("GET", API + "/executions"): Op(
        "A session's executions, newest first", list[models.Execution],
        params=(
            Param("session_id", {"type": "string", "format": "uuid"}, "The session.", True),
            Param("limit", _integer(1, MAX_INTEGER, 50), "At most this many (capped at 1000)."),
        ),
        errors=("SESSION_NOT_FOUND",),
    ),
    ("GET", API + "/executions/{execution_id}"): Op("An execution", models.Execution),
    ("GET", API + "/executions/{execution_id}/events"): Op(
        "A page of an execution's events, by seq", list[models.Event],
        params=(
            AFTER_SEQ,
            Param("limit", _integer(1, EVENTS_PAGE_MAX, EVENTS_PAGE), "At most this many."),
            Param(
                "wait_ms", _integer(0, WAIT_MS_MAX, 0),
                "Long-poll: when no event follows after_seq yet and the execution runs, "
                "wait this long for one or for its end (then [])."
            ),
        ),
        headers={
            NEXT_AFTER_SEQ: {
                "description": "More events follow: the after_seq of the next page.",
                "schema": {"type": "integer", "minimum": 1},
            }
        },
    ),
    ("GET", API + "/executions/{execution_id}/stream"): Op(
        "An execution's events as server-sent events", models.StreamMessage,
        media_type="text/event-stream",
        params=(
            AFTER_SEQ,
            Param(
                "Last-Event-ID", {"type": "string"},
                "The id of the last message received: wins over after_seq.", where="header",
            ),
        ),
        description=(
            "One message per event (`id: <seq>`, `event: <type>`, `data: <Event JSON>`), "
            "then `event: end` with the Execution record, and the stream closes."
        ),
    ),
    ("POST", API + "/executions/{execution_id}/cancel"): Op(
        "Cancel an execution; answers once it has ended", models.Execution,
        body=bodies.Body, body_optional=True, errors=("WORKER_CRASHED",),
    ),
    ("GET", "/metrics"): Op(
        "Prometheus metrics", str, media_type="text/plain; version=0.0.4; charset=utf-8"
    ),
}  # fmt: skip


def build_document(routes: Sequence[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes``; a route with no entry in OPERATIONS raises.

    Routes made with ``include_in_schema=False`` are left out: the web console's page and
    files are for a browser, not for programs (docs/console.md).
    """
    operations = [
        (route, method, _operation(route.path_format, method))
        for route in routes
        if isinstance(route, Route) and route.include_in_schema
        for method in sorted((route.methods or set()) - {"HEAD"})
    ]
    types = [t for _, _, op in operations for t in (op.answer, op.body) if t is not None]
    schemas, components = msgspec.json.schema_components(
        [*types, ErrorEnvelope], ref_template=SCHEMAS + "{name}"
    )
    _mark_always_sent(components)
    schema_of = dict(zip(map(_type_key, [*types, ErrorEnvelope]), schemas, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for route, method, op in operations:
        paths.setdefault(route.path_format, {})[method.lower()] = _path_item(
            route, method, op, schema_of
        )
    paths = dict(sorted(paths.items()))  # by resource, whatever order the router has
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "vmctl",
            "version": "1.1",
            "description": "Isolated, stateful JavaScript sessions (docs/api.md).",
        },
        "security": [{BEARER: []}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                BEARER: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The daemon's token: $VMCTL_AUTH_TOKEN, else $VMCTL_HOME/token.",
                }
            },
        },
    }


def _operation(path: str, method: str) -> Op:
    op = OPERATIONS.get((method, path))
    if op is None:
        raise LookupError(f"{method} {path} has no entry in openapi.py's OPERATIONS")
    return op


def _type_key(t: Any) -> str:
    return repr(t)


def _path_item(route: Route, method: str, op: Op, schema_of: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {
        "operationId": f"{method.lower()}_{route.name}",
        "summary": op.summary,
        "parameters": _parameters(route, op),
        "responses": _responses(route, method, op, schema_of),
    }
    if op.description:
        item["description"] = op.description
    if op.open:
        item["security"] = []
    if op.body is not None:
        item["requestBody"] = {
            "required": not op.body_optional,
            "content": {"application/json": {"schema": schema_of[_type_key(op.body)]}},
        }
    return item


def _parameters(route: Route, op: Op) -> list[dict[str, Any]]:
    params = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "format": "uuid"}
            if name in PATH_IDS
            else {"type": "string"},
        }
        for name in route.param_convertors
    ]
    for param in op.params:
        params.append(
            {
                "name": param.name,
                "in": param.where,
                "required": param.required,
                "description": param.description,
                "schema": param.schema,
            }
        )
    return params


def _error_codes(route: Route, method: str, op: Op) -> list[ErrorCode]:
    codes: list[ErrorCode] = [*ANY_ROUTE]
    if not op.open:
        codes.append("UNAUTHORIZED")
    if method in WRITE_METHODS:
        codes.append("STORE_FULL")
    for name in route.param_convertors:
        if name in PATH_IDS:
            codes += ["VALIDATION_ERROR", PATH_IDS[name]]
    if op.body is not None or op.params:
        codes.append("VALIDATION_ERROR")
    codes += op.errors
    return [code for code in get_args(ErrorCode) if code in codes]  # the Literal's order


def _responses(route: Route, method: str, op: Op, schema_of: dict[str, Any]) -> dict[str, Any]:
    success: dict[str, Any] = {
        "description": "OK",
        "content": {op.media_type: {"schema": schema_of[_type_key(op.answer)]}},
    }
    if op.headers:
        success["headers"] = op.headers
    responses = {str(status): success for status in (op.status, *op.also)}
    by_status: dict[int, list[ErrorCode]] = {}
    for code in _error_codes(route, method, op):
        by_status.setdefault(STATUS_BY_CODE[code], []).append(code)
    for status, codes in sorted(by_status.items()):
        responses[str(status)] = {
            "description": ", ".join(codes),
            "content": {"application/json": {"schema": _envelope_of(codes, schema_of)}},
        }
    return responses


def _envelope_of(codes: list[ErrorCode], schema_of: dict[str, Any]) -> dict[str, Any]:
    """The envelope, its ``code`` one of ``codes``."""
    only = {"properties": {"error": {"properties": {"code": {"enum": codes}}}}}
    return {"allOf": [schema_of[_type_key(ErrorEnvelope)], only]}


def _mark_always_sent(components: dict[str, Any]) -> None:
    """An answer's every field is required: the encoder sends each one (``null`` when it
    does not apply), but in a Struct with ``omit_defaults``. msgspec's schema lists only
    the fields without a default, which is what a decoder needs, not what is sent."""
    for module in (models, api_errors):
        for name, cls in inspect.getmembers(module, inspect.isclass):
            schema = components.get(name)
            if (
                schema is not None
                and issubclass(cls, msgspec.Struct)
                and cls.__module__ == module.__name__
                and not cls.__struct_config__.omit_defaults
            ):
                schema["required"] = list(schema.get("properties", {}))


async def openapi_document(request: Request) -> Response:
    """The document of this app's routes, built at the first request and kept."""
    state = request.app.state
    document: bytes | None = getattr(state, "openapi_document", None)
    if document is None:
        document = state.openapi_document = msgspec.json.encode(build_document(request.app.routes))
    return Response(document, media_type="application/json")
