"""The API's handlers: decode and validate, call the store or the manager, encode.

The route list that maps paths to these lives in ``app.py``.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from vmctl.supervisor import bodies
from vmctl.supervisor.bodies import decode_body, int_param, required, uuid_field
from vmctl.supervisor.catalog import check_library_name, check_module
from vmctl.supervisor.config import DaemonConfig
from vmctl.supervisor.errors import ApiError, not_found, validation_error
from vmctl.supervisor.manager import SessionManager
from vmctl.supervisor.models import (
    SESSION_STATUSES,
    Capability,
    Limits,
    Resolver,
    Runtime,
    Settings,
    StartupFile,
    Template,
    new_id,
    utc_now,
)
from vmctl.supervisor.paths import clean_relative_path
from vmctl.supervisor.store import Duplicate, Store, TemplateInUse, TemplateNameTaken

# Upper bounds that keep one execution from costing the daemon unbounded memory or time.
LIMIT_MAXIMUMS = {
    "cpu_ms": 3_600_000,
    "wall_ms": 3_600_000,
    "mem_mb": 16_384,
    "max_events": 1_000_000,
    "max_output_kb": 65_536,
}

_encoder = msgspec.json.Encoder()

B = TypeVar("B", bound=bodies.Body)
S = TypeVar("S", Limits, Resolver, Runtime)


class JSON(Response):
    media_type = "application/json"

    def __init__(self, content: Any, status_code: int = 200) -> None:
        super().__init__(_encoder.encode(content), status_code=status_code)


def _store(request: Request) -> Store:
    store: Store = request.state.store
    return store


def _manager(request: Request) -> SessionManager:
    manager: SessionManager = request.state.manager
    return manager


def _config(request: Request) -> DaemonConfig:
    config: DaemonConfig = request.state.config
    return config


async def _body(request: Request, body_type: type[B]) -> B:
    return decode_body(await request.body(), body_type)


def _path_id(request: Request, name: str) -> str:
    return uuid_field(request.path_params[name], name)


async def _template(request: Request) -> Template:
    template_id = _path_id(request, "template_id")
    template = await _store(request).get_template(template_id)
    if template is None:
        raise not_found("template", template_id)
    return template


# -- health and runtime -----------------------------------------------------


async def health(request: Request) -> Response:
    return JSON({"status": "ok"})


async def runtime_summary(request: Request) -> Response:
    return JSON(_manager(request).summary())


# -- templates ----------------------------------------------------------------


async def create_template(request: Request) -> Response:
    body = await _body(request, bodies.CreateTemplate)
    name = required(body.name, "name")
    if not name.strip():
        raise validation_error("name", "name must not be blank")
    engine = body.engine if body.engine is not None else "quickjs"
    if _config(request).worker_command(engine) is None:
        known = ", ".join(sorted(_config(request).engines))
        raise validation_error("engine", f"Unknown engine {engine!r} (known: {known}, goja)")
    now = utc_now()
    template = Template(id=new_id(), name=name, engine=engine, created_at=now, updated_at=now)
    try:
        await _store(request).create_template(template, Settings(vm_id=template.id))
    except TemplateNameTaken:
        raise ApiError(
            "TEMPLATE_NAME_TAKEN", f"Template name {name!r} is taken", {"name": name}
        ) from None
    return JSON(template, 201)


async def list_templates(request: Request) -> Response:
    return JSON(await _store(request).list_templates())


async def get_template(request: Request) -> Response:
    template = await _template(request)
    detail = await _store(request).get_template_detail(template.id)
    if detail is None:
        raise not_found("template", template.id)
    return JSON(detail)


async def delete_template(request: Request) -> Response:
    template = await _template(request)
    try:
        await _store(request).delete_template(template.id)
    except TemplateInUse:
        raise ApiError(
            "TEMPLATE_IN_USE",
            "Template is used by a session that is not closed",
            {"template_id": template.id},
        ) from None
    return JSON({"status": "ok", "template_id": template.id})


async def put_settings(request: Request) -> Response:
    template = await _template(request)
    patch = await _body(request, bodies.PutSettings)
    current = await _store(request).get_settings(template.id) or Settings(vm_id=template.id)
    settings = Settings(
        vm_id=template.id,
        limits=_patched(current.limits, patch.limits),
        resolver=_patched(current.resolver, patch.resolver),
        runtime=_patched(current.runtime, patch.runtime),
    )
    _check_settings(settings)
    await _store(request).put_settings(settings)
    return JSON(settings)


def _patched(current: S, patch: msgspec.Struct | None) -> S:
    """Keys given replace the current values; keys left out keep theirs."""
    if patch is None:
        return current
    given = {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not None}
    for key in ("roots", "extensions"):
        if key in given:
            given[key] = tuple(given[key])
    return msgspec.structs.replace(current, **given)


def _check_settings(settings: Settings) -> None:
    for name, maximum in LIMIT_MAXIMUMS.items():
        value = getattr(settings.limits, name)
        if not 0 < value <= maximum:
            raise ApiError(
                "VALIDATION_ERROR",
                f"limits.{name} must be a positive integer no larger than {maximum}, got {value}",
                {"field": f"limits.{name}", "maximum": maximum},
            )
    for extension in settings.resolver.extensions:
        if not extension.startswith(".") or "/" in extension:
            raise validation_error(
                "resolver.extensions", f"Extension {extension!r} must look like '.js'"
            )


async def create_capability(request: Request) -> Response:
    template = await _template(request)
    body = await _body(request, bodies.CreateCapability)
    capability = Capability(
        id=new_id(),
        vm_id=template.id,
        kind=required(body.kind, "kind"),
        name=required(body.name, "name"),
        enabled=body.enabled,
        config=body.config,
    )
    try:
        await _store(request).add_capability(capability)
    except Duplicate:
        raise ApiError(
            "DUPLICATE",
            f"Capability {capability.kind}/{capability.name} already exists",
            {"kind": capability.kind, "name": capability.name},
        ) from None
    return JSON(capability, 201)


async def list_capabilities(request: Request) -> Response:
    template = await _template(request)
    return JSON(await _store(request).list_capabilities(template.id))


async def create_startup_file(request: Request) -> Response:
    template = await _template(request)
    body = await _body(request, bodies.CreateStartupFile)
    path = clean_relative_path(required(body.path, "path"))
    if body.mode != "eval":
        raise ApiError(
            "STARTUP_MODE_UNSUPPORTED",
            f"Startup mode {body.mode!r} is not supported (only 'eval')",
            {"mode": body.mode},
        )
    startup = StartupFile(
        id=new_id(), vm_id=template.id, path=path, order_index=body.order_index, mode="eval"
    )
    try:
        await _store(request).add_startup_file(startup)
    except Duplicate:
        raise ApiError(
            "DUPLICATE", f"Startup file {path!r} already exists", {"path": path}
        ) from None
    return JSON(startup, 201)


async def list_startup_files(request: Request) -> Response:
    template = await _template(request)
    return JSON(await _store(request).list_startup_files(template.id))


async def add_module(request: Request) -> Response:
    template = await _template(request)
    body = await _body(request, bodies.NameBody)
    name = check_module(required(body.name, "name"))
    await _store(request).add_module(template.id, name)
    return JSON({"template_id": template.id, "name": name}, 201)


async def list_modules(request: Request) -> Response:
    template = await _template(request)
    return JSON(template.exposed_modules)


async def remove_module(request: Request) -> Response:
    template = await _template(request)
    name = request.path_params["name"]
    await _store(request).remove_module(template.id, name)
    return JSON({"status": "ok", "template_id": template.id, "name": name})


async def add_library(request: Request) -> Response:
    template = await _template(request)
    body = await _body(request, bodies.NameBody)
    name = check_library_name(required(body.name, "name"))
    await _store(request).add_library(template.id, name)
    return JSON({"template_id": template.id, "name": name}, 201)


async def list_libraries(request: Request) -> Response:
    template = await _template(request)
    return JSON(template.libraries)


async def remove_library(request: Request) -> Response:
    template = await _template(request)
    name = request.path_params["name"]
    await _store(request).remove_library(template.id, name)
    return JSON({"status": "ok", "template_id": template.id, "name": name})


# -- sessions -------------------------------------------------------------------


async def create_session(request: Request) -> Response:
    body = await _body(request, bodies.CreateSession)
    template_id = uuid_field(body.template_id, "template_id")
    workspace_id = required(body.workspace_id, "workspace_id")
    base_commit_oid = required(body.base_commit_oid, "base_commit_oid")
    worktree = required(body.worktree_path, "worktree_path")
    if not await asyncio.to_thread(_is_absolute_dir, worktree):
        raise validation_error(
            "worktree_path", f"worktree_path must be an absolute path to a directory: {worktree!r}"
        )
    session = await _manager(request).create_session(
        template_id, workspace_id, base_commit_oid, os.path.normpath(worktree)
    )
    return JSON(session, 201)


def _is_absolute_dir(path: str) -> bool:
    return "\x00" not in path and os.path.isabs(path) and os.path.isdir(path)


async def list_sessions(request: Request) -> Response:
    status = request.query_params.get("status")
    if status is not None and status not in SESSION_STATUSES:
        raise validation_error(
            "status", f"status must be one of {', '.join(SESSION_STATUSES)}, got {status!r}"
        )
    return JSON(await _store(request).list_sessions(status))


async def get_session(request: Request) -> Response:
    return JSON(await _manager(request).get_session(_path_id(request, "session_id")))


async def close_session(request: Request) -> Response:
    return JSON(await _manager(request).close_session(_path_id(request, "session_id")))


async def restart_session(request: Request) -> Response:
    return JSON(await _manager(request).restart_session(_path_id(request, "session_id")))


# -- executions -------------------------------------------------------------------


async def execute_repl(request: Request) -> Response:
    body = await _body(request, bodies.ReplBody)
    session_id = uuid_field(body.session_id, "session_id")
    code = required(body.input, "input")
    return JSON(await _manager(request).execute_repl(session_id, code), 201)


async def run_file(request: Request) -> Response:
    body = await _body(request, bodies.RunFileBody)
    session_id = uuid_field(body.session_id, "session_id")
    path = required(body.path, "path")
    execution = await _manager(request).run_file(session_id, path, body.args or {}, body.env or {})
    return JSON(execution, 201)


async def list_executions(request: Request) -> Response:
    session_id = uuid_field(request.query_params.get("session_id"), "session_id")
    limit = int_param(request.query_params.get("limit"), "limit", default=50, minimum=1)
    await _manager(request).get_session(session_id)
    return JSON(await _store(request).list_executions(session_id, min(limit, 1000)))


async def get_execution(request: Request) -> Response:
    if request.path_params["execution_id"] in ("repl", "run-file"):
        # The create routes, reached with GET: the id route must not read them as ids.
        raise ApiError("METHOD_NOT_ALLOWED", f"Method {request.method} not allowed")
    execution_id = _path_id(request, "execution_id")
    execution = await _store(request).get_execution(execution_id)
    if execution is None:
        raise not_found("execution", execution_id)
    return JSON(execution)


async def list_events(request: Request) -> Response:
    execution_id = _path_id(request, "execution_id")
    after_seq = int_param(request.query_params.get("after_seq"), "after_seq", default=0, minimum=0)
    if await _store(request).get_execution(execution_id) is None:
        raise not_found("execution", execution_id)
    return JSON(await _store(request).list_events(execution_id, after_seq))
