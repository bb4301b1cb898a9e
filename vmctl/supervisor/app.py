"""The Starlette app: every route in one list, one error envelope, one lifespan.

The lifespan starts the fork server (which imports while the store opens),
opens the store, marks what a previous daemon left behind, builds the session
manager and hands both to requests as lifespan state; when the server stops it
closes every session, then the store, then the fork server.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vmctl.supervisor import endpoints as ep
from vmctl.supervisor.config import DaemonConfig
from vmctl.supervisor.errors import ApiError, not_found
from vmctl.supervisor.forkserver import ForkServer
from vmctl.supervisor.manager import SessionManager
from vmctl.supervisor.store import NotFound, Store, open_store

logger = logging.getLogger("vmctl.http")

API = "/api/v1"
TEMPLATE = API + "/templates/{template_id}"

ROUTES = [
    Route(API + "/health", ep.health, methods=["GET"]),
    Route(API + "/runtime/summary", ep.runtime_summary, methods=["GET"]),
    Route(API + "/templates", ep.create_template, methods=["POST"]),
    Route(API + "/templates", ep.list_templates, methods=["GET"]),
    Route(TEMPLATE, ep.get_template, methods=["GET"]),
    Route(TEMPLATE, ep.delete_template, methods=["DELETE"]),
    Route(TEMPLATE + "/settings", ep.put_settings, methods=["PUT"]),
    Route(TEMPLATE + "/capabilities", ep.create_capability, methods=["POST"]),
    Route(TEMPLATE + "/capabilities", ep.list_capabilities, methods=["GET"]),
    Route(TEMPLATE + "/startup-files", ep.create_startup_file, methods=["POST"]),
    Route(TEMPLATE + "/startup-files", ep.list_startup_files, methods=["GET"]),
    Route(TEMPLATE + "/modules", ep.add_module, methods=["POST"]),
    Route(TEMPLATE + "/modules", ep.list_modules, methods=["GET"]),
    Route(TEMPLATE + "/modules/{name}", ep.remove_module, methods=["DELETE"]),
    Route(TEMPLATE + "/libraries", ep.add_library, methods=["POST"]),
    Route(TEMPLATE + "/libraries", ep.list_libraries, methods=["GET"]),
    Route(TEMPLATE + "/libraries/{name}", ep.remove_library, methods=["DELETE"]),
    Route(API + "/sessions", ep.create_session, methods=["POST"]),
    Route(API + "/sessions", ep.list_sessions, methods=["GET"]),
    Route(API + "/sessions/{session_id}", ep.get_session, methods=["GET"]),
    Route(API + "/sessions/{session_id}", ep.close_session, methods=["DELETE"]),
    Route(API + "/sessions/{session_id}/close", ep.close_session, methods=["POST"]),
    Route(API + "/sessions/{session_id}/restart", ep.restart_session, methods=["POST"]),
    Route(API + "/executions/repl", ep.execute_repl, methods=["POST"]),
    Route(API + "/executions/run-file", ep.run_file, methods=["POST"]),
    Route(API + "/executions", ep.list_executions, methods=["GET"]),
    Route(API + "/executions/{execution_id}", ep.get_execution, methods=["GET"]),
    Route(API + "/executions/{execution_id}/events", ep.list_events, methods=["GET"]),
]


def _envelope(error: ApiError) -> Response:
    return ep.JSON(error.envelope(), error.status)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _envelope(exc)


async def _store_not_found(request: Request, exc: Exception) -> Response:
    """A row that vanished between a handler's check and its write (a concurrent delete)."""
    assert isinstance(exc, NotFound)
    return _envelope(not_found(exc.resource, exc.id))


async def _http_error(request: Request, exc: Exception) -> Response:
    """Routing failures (unknown path, wrong method) in the envelope."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        error = ApiError("METHOD_NOT_ALLOWED", f"Method {request.method} not allowed")
        response = _envelope(error)
        if exc.headers:
            response.headers.update(exc.headers)
        return response
    if exc.status_code == 404:
        return _envelope(ApiError("NOT_FOUND", f"No route for {request.url.path}"))
    return _envelope(ApiError("INTERNAL", str(exc.detail)))


def _request_id(scope: Scope) -> str:
    """The client's X-Request-Id if it is 1 to 128 printable ASCII characters, else a new one."""
    text = (_header(scope, b"x-request-id") or b"").decode("latin-1")
    if 0 < len(text) <= 128 and all(0x20 < ord(c) < 0x7F for c in text):
        return text
    return uuid.uuid4().hex


def _header(scope: Scope, wanted: bytes) -> bytes | None:
    for name, value in scope["headers"]:
        if name == wanted:
            return bytes(value)
    return None


class RequestContext:
    """Request id, auth, body size, access log and the last-resort 500, for every request."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, auth_token: str | None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.auth_token = auth_token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            refusal = self._refusal(scope)
            if refusal is not None:
                await _envelope(refusal)(scope, receive, send_with_id)
            else:
                await self.app(scope, self._bounded(receive), send_with_id)
        except Exception:
            logger.exception("request %s failed", request_id)
            if status == 0:
                error = ApiError("INTERNAL", "Internal error", {"request_id": request_id})
                await _envelope(error)(scope, receive, send_with_id)
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            logger.info(
                "%s %s %s %d %.1fms",
                request_id,
                scope["method"],
                scope["path"],
                status,
                elapsed_ms,
            )

    def _refusal(self, scope: Scope) -> ApiError | None:
        if self.auth_token is not None and scope["path"] != API + "/health":
            given = _header(scope, b"authorization") or b""
            expected = f"Bearer {self.auth_token}".encode()
            if not hmac.compare_digest(given, expected):
                return ApiError("UNAUTHORIZED", "Missing or wrong bearer token")
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            return _too_large(self.max_body_bytes)
        return None

    def _bounded(self, receive: Receive) -> Receive:
        """Count body bytes as they arrive, whatever Content-Length claimed."""
        received = 0

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise _too_large(self.max_body_bytes)
            return message

        return bounded_receive


def _too_large(limit: int) -> ApiError:
    return ApiError(
        "PAYLOAD_TOO_LARGE", f"Request body exceeds {limit} bytes", {"max_bytes": limit}
    )


@contextlib.asynccontextmanager
async def _opened_store(config: DaemonConfig) -> AsyncIterator[Store]:
    """The store, with what a previous daemon left behind marked; closed at the end."""
    store = await open_store(config.db_path)
    try:
        sessions, executions = await store.recover_abandoned(
            "the daemon stopped without closing this session"
        )
        if sessions or executions:
            logger.warning(
                "recovered %d session(s) and %d execution(s) left by a previous daemon",
                sessions,
                executions,
            )
        yield store
    finally:
        await store.aclose()
        logger.info("store closed")


def build_app(config: DaemonConfig) -> Starlette:
    """The daemon's ASGI app for ``config``."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        # Only a speed-up: if it does not start, or dies later, workers are spawned.
        forkserver = ForkServer()
        await forkserver.start()
        try:
            async with _opened_store(config) as store:
                await forkserver.wait_ready()
                manager = SessionManager(store, config, forkserver)
                # The server reaches it here to stop workers before draining requests.
                app.state.manager = manager
                try:
                    yield {"store": store, "manager": manager, "config": config}
                finally:
                    await manager.aclose()
        finally:
            await forkserver.aclose()
            logger.info("fork server closed")

    app = Starlette(
        routes=ROUTES,
        lifespan=lifespan,
        exception_handlers={
            ApiError: _api_error,
            NotFound: _store_not_found,
            HTTPException: _http_error,
        },
    )
    # A trailing slash is an unknown route (404 envelope), not a bodiless 307.
    app.router.redirect_slashes = False
    app.add_middleware(
        RequestContext, max_body_bytes=config.max_body_bytes, auth_token=config.auth_token
    )
    return app
