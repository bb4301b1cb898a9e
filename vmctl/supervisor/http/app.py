"""The Starlette app: every route in one list, one middleware stack, one lifespan.

The lifespan opens the session manager (sessions/manager.py: the fork server,
the store with what a previous daemon left behind marked, the manager) and
hands it to requests as lifespan state; when the server stops it closes every
session, then the store, then the fork server.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from vmctl.mcp.http import McpEndpoint
from vmctl.supervisor.config import DaemonConfig
from vmctl.supervisor.http import endpoints as ep
from vmctl.supervisor.http.console import PAGE as CONSOLE_PAGE
from vmctl.supervisor.http.console import console_routes
from vmctl.supervisor.http.credentials import Token
from vmctl.supervisor.http.errors import EXCEPTION_HANDLERS
from vmctl.supervisor.http.hosts import AllowedHosts
from vmctl.supervisor.http.metrics import RequestCounter, scrape
from vmctl.supervisor.http.middleware import Gate, RequestFrame
from vmctl.supervisor.http.openapi import openapi_document
from vmctl.supervisor.http.streams import stream_events
from vmctl.supervisor.metrics import Metrics
from vmctl.supervisor.sessions import SessionManager, open_session_manager

API = "/api/v1"
HEALTH = API + "/health"
TEMPLATE = API + "/templates/{template_id}"

# Starlette tries the routes in order: the ones every execution takes come first.
ROUTES = [
    Route(API + "/executions/repl", ep.execute_repl, methods=["POST"]),
    Route(API + "/executions/run-file", ep.run_file, methods=["POST"]),
    Route(API + "/executions", ep.list_executions, methods=["GET"]),
    Route(API + "/executions/{execution_id}", ep.get_execution, methods=["GET"]),
    Route(API + "/executions/{execution_id}/events", ep.list_events, methods=["GET"]),
    Route(API + "/executions/{execution_id}/stream", stream_events, methods=["GET"]),
    Route(API + "/executions/{execution_id}/cancel", ep.cancel_execution, methods=["POST"]),
    Route(HEALTH, ep.health, methods=["GET"]),
    Route(API + "/sessions", ep.create_session, methods=["POST"]),
    Route(API + "/sessions", ep.list_sessions, methods=["GET"]),
    Route(API + "/sessions/{session_id}", ep.get_session, methods=["GET"]),
    Route(API + "/sessions/{session_id}", ep.close_session, methods=["DELETE"]),
    Route(API + "/sessions/{session_id}/close", ep.close_session, methods=["POST"]),
    Route(API + "/sessions/{session_id}/restart", ep.restart_session, methods=["POST"]),
    Route(API + "/openapi.json", openapi_document, methods=["GET"]),
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
    Route("/metrics", scrape, methods=["GET"]),  # where Prometheus looks; the token guards it
]


async def stop_sessions(app: Starlette) -> None:
    """Stop every worker now: the server calls it before it drains the open requests."""
    manager: SessionManager | None = getattr(app.state, "manager", None)
    if manager is not None:
        await manager.aclose()


def build_app(config: DaemonConfig) -> Starlette:
    """The daemon's ASGI app for ``config``."""
    metrics = Metrics()  # the app's own registry: what /metrics reports
    # MCP over streamable HTTP (docs/mcp.md): the tools call this daemon's API over loopback.
    mcp = McpEndpoint.for_daemon(config.host, config.port, config.auth_token, config.worktree_roots)
    # One token for the Gate and the console's sign-in (credentials.py); None: --no-auth.
    token = Token(config.auth_token) if config.auth_token is not None else None
    routes = [*ROUTES, Route("/mcp", mcp), *console_routes(token)]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with open_session_manager(config, metrics) as manager, mcp.running():
            # The server reaches it here to stop workers before draining requests.
            app.state.manager = manager
            yield {"manager": manager, "metrics": metrics}

    allowed = AllowedHosts(config.host, config.port, config.allowed_hosts, config.allowed_origins)
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[  # outermost first
            # Outside the gate: a refusal is named, logged and counted too.
            Middleware(RequestFrame, on_answered=RequestCounter(metrics, routes)),
            Middleware(
                Gate,
                allowed=allowed,
                token=token,
                open_paths=frozenset({HEALTH, CONSOLE_PAGE}),
                max_bytes=config.max_body_bytes,
            ),
        ],
    )
    # A trailing slash is an unknown route (404 envelope), not a bodiless 307.
    app.router.redirect_slashes = False
    return app
