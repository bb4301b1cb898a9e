"""The API's routes as requests to send and answers to decode: the part of a client call
that is not I/O, written once for :class:`~vmctl.client.Client` and
:class:`~vmctl.client.AsyncClient`.

Each function returns a :class:`Call`: method, path, query, body, timeout, and the type
the answer decodes into (the Structs of :mod:`vmctl.api.models`). A client sends it and
hands the answer to :func:`decode`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from vmctl.api.models import (
    Capability,
    Deleted,
    Event,
    Execution,
    Health,
    Lifecycle,
    Limits,
    NamedItem,
    Runtime,
    RuntimeSummary,
    Session,
    Settings,
    StartupFile,
    Template,
    TemplateDetail,
)
from vmctl.api_token import client_token
from vmctl.client.errors import error_from, invalid_response
from vmctl.daemon_options import DEFAULT_LISTEN, default_home

T = TypeVar("T")

API = "/api/v1"
URL_ENV = "VMCTL_URL"
DEFAULT_URL = f"http://{DEFAULT_LISTEN}"
# What a session is created with when the caller does not say (as `vmctl session create`).
DEFAULT_WORKSPACE = "default"
DEFAULT_BASE_COMMIT = "none"
# Executions and session starts block until the JavaScript ends, which the
# template's limits bound on the daemon's side; the client must not cut them short.
READ_SECONDS = 30.0
SHORT_TIMEOUT = httpx.Timeout(READ_SECONDS, connect=5.0)
LONG_TIMEOUT = httpx.Timeout(None, connect=5.0)
# A stream is silent while its execution is; the daemon sends a keep-alive comment at
# least every 15 s, so a read that waits three times that is a connection gone dead.
STREAM_TIMEOUT = httpx.Timeout(30.0, connect=5.0, read=45.0)
# The header of an events page that more events follow: the after_seq of the next page.
NEXT_AFTER_SEQ = "X-Next-After-Seq"


def base_url_of(given: str | None) -> str:
    """The daemon's URL: ``given``, else ``$VMCTL_URL``, else ``http://127.0.0.1:3210``."""
    return (given or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")


def http_options(base_url: str, token: str | None) -> dict[str, Any]:
    """What both clients give their httpx client: the API's base, the token (``token``,
    else ``$VMCTL_AUTH_TOKEN``, else ``$VMCTL_HOME/token``, as the CLI finds it)."""
    found = client_token(default_home(), token)
    headers = {"Authorization": f"Bearer {found}"} if found else {}
    return {"base_url": base_url + API, "timeout": SHORT_TIMEOUT, "headers": headers}


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request, and what its answer decodes into."""

    method: str
    path: str
    into: type[T]
    body: Any = None
    params: dict[str, Any] | None = None
    # httpx.Timeout is unhashable, which dataclasses take for mutable: hence the factory.
    timeout: httpx.Timeout = field(default_factory=lambda: SHORT_TIMEOUT)
    headers: dict[str, str] | None = None


def decode(call: Call[T], response: httpx.Response) -> T:
    """The answer of a read response, or the error it carries, raised."""
    if response.is_error:
        raise error_from(response)
    try:
        return msgspec.json.decode(response.content, type=call.into)
    except msgspec.DecodeError as exc:
        problem = f"unexpected answer to {call.method} {call.path}: {exc}"
        raise invalid_response(response.status_code, problem) from exc


def seg(value: str) -> str:
    """One path segment: an id or a name typed by a user must not become ``/`` or ``..``."""
    if value in {".", ".."}:
        return value.replace(".", "%2E")  # httpx would resolve a literal dot segment
    return quote(value, safe="")


# -- health and runtime ---------------------------------------------------------------------


def health() -> Call[Health]:
    return Call("GET", "/health", Health)


def runtime_summary() -> Call[RuntimeSummary]:
    return Call("GET", "/runtime/summary", RuntimeSummary)


# -- templates ------------------------------------------------------------------------------


def create_template(name: str, engine: str | None) -> Call[Template]:
    body: dict[str, Any] = {"name": name}
    if engine is not None:
        body["engine"] = engine
    return Call("POST", "/templates", Template, body=body)


def list_templates() -> Call[list[Template]]:
    return Call("GET", "/templates", list[Template])


def get_template(template_id: str) -> Call[TemplateDetail]:
    return Call("GET", f"/templates/{seg(template_id)}", TemplateDetail)


def delete_template(template_id: str) -> Call[Deleted]:
    return Call("DELETE", f"/templates/{seg(template_id)}", Deleted)


def update_settings(
    template_id: str, limits: Limits | None, runtime: Runtime | None, lifecycle: Lifecycle | None
) -> Call[Settings]:
    body: dict[str, Any] = {}
    if limits is not None:
        body["limits"] = msgspec.to_builtins(limits)
    if runtime is not None:
        body["runtime"] = msgspec.to_builtins(runtime)
    if lifecycle is not None:
        body["lifecycle"] = msgspec.to_builtins(lifecycle)
    return Call("PUT", f"/templates/{seg(template_id)}/settings", Settings, body=body)


def add_capability(
    template_id: str, kind: str, name: str, enabled: bool, config: dict[str, Any]
) -> Call[Capability]:
    body = {"kind": kind, "name": name, "enabled": enabled, "config": config}
    return Call("POST", f"/templates/{seg(template_id)}/capabilities", Capability, body=body)


def list_capabilities(template_id: str) -> Call[list[Capability]]:
    return Call("GET", f"/templates/{seg(template_id)}/capabilities", list[Capability])


def add_startup_file(template_id: str, path: str, order_index: int, mode: str) -> Call[StartupFile]:
    body = {"path": path, "order_index": order_index, "mode": mode}
    return Call("POST", f"/templates/{seg(template_id)}/startup-files", StartupFile, body=body)


def list_startup_files(template_id: str) -> Call[list[StartupFile]]:
    return Call("GET", f"/templates/{seg(template_id)}/startup-files", list[StartupFile])


def add_named(template_id: str, collection: str, name: str) -> Call[NamedItem]:
    """Attach a module or a library (``collection``: "modules" or "libraries")."""
    path = f"/templates/{seg(template_id)}/{collection}"
    return Call("POST", path, NamedItem, body={"name": name})


def remove_named(template_id: str, collection: str, name: str) -> Call[Deleted]:
    return Call("DELETE", f"/templates/{seg(template_id)}/{collection}/{seg(name)}", Deleted)


def list_named(template_id: str, collection: str) -> Call[list[str]]:
    return Call("GET", f"/templates/{seg(template_id)}/{collection}", list[str])


# -- sessions -------------------------------------------------------------------------------


def create_session(
    template_id: str, worktree_path: str | os.PathLike[str], workspace_id: str, base_commit_oid: str
) -> Call[Session]:
    body = {
        "template_id": template_id,
        "workspace_id": workspace_id,
        "base_commit_oid": base_commit_oid,
        # The API takes only absolute paths; a client resolves one against its own cwd.
        "worktree_path": os.path.abspath(worktree_path),
    }
    return Call("POST", "/sessions", Session, body=body, timeout=LONG_TIMEOUT)


def list_sessions(status: str | None) -> Call[list[Session]]:
    return Call("GET", "/sessions", list[Session], params={"status": status} if status else None)


def get_session(session_id: str) -> Call[Session]:
    return Call("GET", f"/sessions/{seg(session_id)}", Session)


def close_session(session_id: str) -> Call[Session]:
    return Call("POST", f"/sessions/{seg(session_id)}/close", Session, timeout=LONG_TIMEOUT)


def restart_session(session_id: str, replay: bool) -> Call[Session]:
    path = f"/sessions/{seg(session_id)}/restart"
    return Call("POST", path, Session, body={"replay": replay}, timeout=LONG_TIMEOUT)


# -- executions -----------------------------------------------------------------------------


def repl(session_id: str, code: str, wait: bool) -> Call[Execution]:
    return _start("/executions/repl", {"session_id": session_id, "input": code}, wait)


def run_file(
    session_id: str,
    path: str,
    args: dict[str, Any] | None,
    env: dict[str, Any] | None,
    wait: bool,
) -> Call[Execution]:
    body = {"session_id": session_id, "path": path, "args": args or {}, "env": env or {}}
    return _start("/executions/run-file", body, wait)


def _start(path: str, body: dict[str, Any], wait: bool) -> Call[Execution]:
    if wait:
        # Sent only when false: a v1 daemon refuses the unknown field, and waits anyway.
        return Call("POST", path, Execution, body=body, timeout=LONG_TIMEOUT)
    return Call("POST", path, Execution, body={**body, "wait": False})


def cancel_execution(execution_id: str) -> Call[Execution]:
    path = f"/executions/{seg(execution_id)}/cancel"
    return Call("POST", path, Execution, timeout=LONG_TIMEOUT)


def list_executions(session_id: str, limit: int | None) -> Call[list[Execution]]:
    params: dict[str, Any] = {"session_id": session_id}
    if limit is not None:
        params["limit"] = limit
    return Call("GET", "/executions", list[Execution], params=params)


def get_execution(execution_id: str) -> Call[Execution]:
    return Call("GET", f"/executions/{seg(execution_id)}", Execution)


def events_page(execution_id: str, after_seq: int, wait_ms: int = 0) -> Call[list[Event]]:
    """One page of events; ``wait_ms`` long-polls for the first one while the execution runs."""
    params: dict[str, Any] = {"after_seq": after_seq}
    timeout = SHORT_TIMEOUT
    if wait_ms:
        params["wait_ms"] = wait_ms
        timeout = httpx.Timeout(READ_SECONDS + wait_ms / 1000, connect=5.0)
    return Call(
        "GET",
        f"/executions/{seg(execution_id)}/events",
        list[Event],
        params=params,
        timeout=timeout,
    )


def next_page(
    call: Call[list[Event]], page: list[Event], headers: httpx.Headers
) -> Call[list[Event]] | None:
    """The call for the page after ``page``, or None when ``headers`` say none follows."""
    following = headers.get(NEXT_AFTER_SEQ)
    if following is None:
        return None
    after_seq = (call.params or {}).get("after_seq", 0)
    if not page or not following.isdigit() or int(following) <= after_seq:
        raise invalid_response(200, f"unexpected {NEXT_AFTER_SEQ} {following!r} from {call.path}")
    return replace(call, params={"after_seq": int(following)}, timeout=SHORT_TIMEOUT)


def stream(execution_id: str, after_seq: int, resume: bool) -> Call[Event]:
    """The SSE stream's request; ``resume`` asks with ``Last-Event-ID``, as a reconnecting
    EventSource does. (Its messages are decoded by :mod:`vmctl.client.live`.)"""
    headers = {"Accept": "text/event-stream"}
    if resume:
        headers["Last-Event-ID"] = str(after_seq)
    path = f"/executions/{seg(execution_id)}/stream"
    params = {"after_seq": after_seq}
    return Call("GET", path, Event, params=params, timeout=STREAM_TIMEOUT, headers=headers)
