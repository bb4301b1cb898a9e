"""The API's handlers: decode and validate the request, call the sessions room, encode.

Each handler is a few lines. What a client may not do is decided in the sessions
room (templates.py, manager.py); what is wrong with the request itself (its body,
an id that is not a UUID) here and in bodies.py. The route list that maps paths
to these lives in app.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from vmctl.api.models import SESSION_STATUSES, Deleted, Health, NamedItem, RuntimeSummary, Template
from vmctl.supervisor.http import bodies
from vmctl.supervisor.http.bodies import decode_body, given, int_param, required, uuid_field
from vmctl.supervisor.http.errors import JSON, method_not_allowed
from vmctl.supervisor.sessions import SessionManager, Templates
from vmctl.supervisor.sessions.errors import validation_error

B = TypeVar("B", bound=bodies.Body)

# Events come in pages (api-contract.md, "Live executions"): this many by default, at most
# EVENTS_PAGE_MAX; when more follow, the header says the after_seq of the next page.
EVENTS_PAGE = 10_000
EVENTS_PAGE_MAX = 100_000
NEXT_AFTER_SEQ = "X-Next-After-Seq"
WAIT_MS_MAX = 30_000  # a long-poll's longest wait


def _manager(request: Request) -> SessionManager:
    manager: SessionManager = request.state.manager
    return manager


def _templates(request: Request) -> Templates:
    return _manager(request).templates


async def _body(request: Request, body_type: type[B]) -> B:
    return decode_body(await request.body(), body_type)


def _path_id(request: Request, name: str) -> str:
    return uuid_field(request.path_params[name], name)


async def _template(request: Request) -> Template:
    return await _templates(request).get(_path_id(request, "template_id"))


# -- health and runtime -----------------------------------------------------


async def health(request: Request) -> Response:
    return JSON(Health(status="ok"))


async def runtime_summary(request: Request) -> Response:
    return JSON(msgspec.convert(_manager(request).summary(), RuntimeSummary))


# -- templates ----------------------------------------------------------------


async def create_template(request: Request) -> Response:
    body = await _body(request, bodies.CreateTemplate)
    template = await _templates(request).create(required(body.name, "name"), body.engine)
    return JSON(template, 201)


async def list_templates(request: Request) -> Response:
    return JSON(await _templates(request).list_all())


async def get_template(request: Request) -> Response:
    return JSON(await _templates(request).detail(_path_id(request, "template_id")))


async def delete_template(request: Request) -> Response:
    template = await _template(request)
    await _templates(request).delete(template)
    return JSON(Deleted(status="ok", template_id=template.id))


async def put_settings(request: Request) -> Response:
    template = await _template(request)
    patch = await _body(request, bodies.PutSettings)
    settings = await _templates(request).put_settings(
        template,
        given(patch.limits),
        given(patch.resolver),
        given(patch.runtime),
        given(patch.lifecycle),
    )
    return JSON(settings)


async def create_capability(request: Request) -> Response:
    template = await _template(request)
    body = await _body(request, bodies.CreateCapability)
    capability = await _templates(request).add_capability(
        template,
        required(body.kind, "kind"),
        required(body.name, "name"),
        body.enabled,
        body.config,
    )
    return JSON(capability, 201)


async def list_capabilities(request: Request) -> Response:
    template = await _template(request)
    return JSON(await _templates(request).list_capabilities(template))


async def create_startup_file(request: Request) -> Response:
    template = await _template(request)
    body = await _body(request, bodies.CreateStartupFile)
    startup = await _templates(request).add_startup_file(
        template, required(body.path, "path"), body.order_index, body.mode
    )
    return JSON(startup, 201)


async def list_startup_files(request: Request) -> Response:
    template = await _template(request)
    return JSON(await _templates(request).list_startup_files(template))


async def add_module(request: Request) -> Response:
    return await _add_name(request, Templates.add_module)


async def list_modules(request: Request) -> Response:
    template = await _template(request)
    return JSON(template.exposed_modules)


async def remove_module(request: Request) -> Response:
    return await _remove_name(request, Templates.remove_module)


async def add_library(request: Request) -> Response:
    return await _add_name(request, Templates.add_library)


async def list_libraries(request: Request) -> Response:
    template = await _template(request)
    return JSON(template.libraries)


async def remove_library(request: Request) -> Response:
    return await _remove_name(request, Templates.remove_library)


async def _add_name(
    request: Request, add: Callable[[Templates, Template, str], Awaitable[str]]
) -> Response:
    """A module or a library, named in the body, added to the template of the path."""
    template = await _template(request)
    body = await _body(request, bodies.NameBody)
    name = await add(_templates(request), template, required(body.name, "name"))
    return JSON(NamedItem(template_id=template.id, name=name), 201)


async def _remove_name(
    request: Request, remove: Callable[[Templates, Template, str], Awaitable[None]]
) -> Response:
    """A module or a library, named in the path, removed from the template of the path."""
    template = await _template(request)
    name = request.path_params["name"]
    await remove(_templates(request), template, name)
    return JSON(Deleted(status="ok", template_id=template.id, name=name))


# -- sessions -------------------------------------------------------------------


async def create_session(request: Request) -> Response:
    body = await _body(request, bodies.CreateSession)
    session = await _manager(request).create_session(
        uuid_field(body.template_id, "template_id"),
        required(body.workspace_id, "workspace_id"),
        required(body.base_commit_oid, "base_commit_oid"),
        required(body.worktree_path, "worktree_path"),
    )
    return JSON(session, 201)


async def list_sessions(request: Request) -> Response:
    status = request.query_params.get("status")
    if status is not None and status not in SESSION_STATUSES:
        raise validation_error(
            "status", f"status must be one of {', '.join(SESSION_STATUSES)}, got {status!r}"
        )
    return JSON(await _manager(request).list_sessions(status))


async def get_session(request: Request) -> Response:
    return JSON(await _manager(request).get_session(_path_id(request, "session_id")))


async def close_session(request: Request) -> Response:
    return JSON(await _manager(request).close_session(_path_id(request, "session_id")))


async def restart_session(request: Request) -> Response:
    session_id = _path_id(request, "session_id")
    raw = await request.body()  # no body (v1), {} or {"replay": bool}
    body = decode_body(raw, bodies.RestartBody) if raw else bodies.RestartBody()
    return JSON(await _manager(request).restart_session(session_id, body.replay))


# -- executions -------------------------------------------------------------------


async def execute_repl(request: Request) -> Response:
    body = await _body(request, bodies.ReplBody)
    session_id = uuid_field(body.session_id, "session_id")
    code = required(body.input, "input")
    execution = await _manager(request).execute_repl(session_id, code, body.wait)
    return JSON(execution, 201 if body.wait else 202)


async def run_file(request: Request) -> Response:
    body = await _body(request, bodies.RunFileBody)
    session_id = uuid_field(body.session_id, "session_id")
    path = required(body.path, "path")
    execution = await _manager(request).run_file(
        session_id, path, body.args or {}, body.env or {}, body.wait
    )
    return JSON(execution, 201 if body.wait else 202)


async def list_executions(request: Request) -> Response:
    session_id = uuid_field(request.query_params.get("session_id"), "session_id")
    limit = int_param(request.query_params.get("limit"), "limit", default=50, minimum=1)
    return JSON(await _manager(request).list_executions(session_id, min(limit, 1000)))


async def get_execution(request: Request) -> Response:
    if request.path_params["execution_id"] in ("repl", "run-file"):
        # The create routes, reached with GET: the id route must not read them as ids.
        raise method_not_allowed(request)
    return JSON(await _manager(request).get_execution(_path_id(request, "execution_id")))


async def list_events(request: Request) -> Response:
    execution_id = _path_id(request, "execution_id")
    after_seq = int_param(request.query_params.get("after_seq"), "after_seq", default=0, minimum=0)
    limit = int_param(
        request.query_params.get("limit"),
        "limit",
        default=EVENTS_PAGE,
        minimum=1,
        maximum=EVENTS_PAGE_MAX,
    )
    wait_ms = int_param(
        request.query_params.get("wait_ms"), "wait_ms", default=0, minimum=0, maximum=WAIT_MS_MAX
    )
    page = await _manager(request).list_events(execution_id, after_seq, limit, wait_ms)
    response = Response(page.body, media_type=JSON.media_type)
    if page.more:
        response.headers[NEXT_AFTER_SEQ] = str(page.last_seq)
    return response


async def cancel_execution(request: Request) -> Response:
    execution_id = _path_id(request, "execution_id")
    raw = await request.body()
    if raw:
        decode_body(raw, bodies.Body)  # no body, or an empty object: nothing else
    return JSON(await _manager(request).cancel_execution(execution_id))
