"""``GET /metrics`` and the middleware that counts HTTP requests (docs/metrics.md).

The route sits beside ``/api/v1``, not under it, where Prometheus looks by default;
the same bearer token guards it (middleware.py's ``Gate`` lets only the health
check through). :class:`RequestCounter` counts each request by its route's template
(``/api/v1/sessions/{session_id}``), never its raw path: a label value per path a
client can make up would grow without bound.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from vmctl.supervisor.metrics import Metrics
from vmctl.supervisor.sessions import SessionManager

# What prometheus_client's generate_latest writes (its CONTENT_TYPE_PLAIN_0_0_4; its
# CONTENT_TYPE_LATEST names the 1.0.0 format since 0.22).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# The route label of a path no route has; the method label of a method no route takes.
UNMATCHED = "unmatched"
OTHER = "other"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


async def scrape(request: Request) -> Response:
    """Every metric, with the daemon's state read now."""
    manager: SessionManager = request.state.manager
    registry: Metrics = request.state.metrics
    body = registry.exposition(await manager.daemon_state())
    return Response(body, headers={"Content-Type": CONTENT_TYPE})


class RequestCounter:
    """Counts each HTTP request once answered, by route template, method and status (0
    when the client left before any answer): what RequestFrame calls for every request, so
    one wrapper notes the status for both."""

    def __init__(self, metrics: Metrics, routes: Sequence[BaseRoute]) -> None:
        self.requests = metrics.http_requests
        self.routes = routes

    def __call__(self, scope: Scope, status: int) -> None:
        method = scope["method"] if scope["method"] in _METHODS else OTHER
        self.requests.labels(self._route(scope), method, str(status)).inc()

    def _route(self, scope: Scope) -> str:
        """The template of the route the router chose; for a request refused before it
        was routed (auth, host, body), of the one it would have chosen."""
        route = scope.get("route") or self._match(scope)
        path = getattr(route, "path", None)  # a Route's template, a Mount's prefix
        return path if isinstance(path, str) else UNMATCHED

    def _match(self, scope: Scope) -> BaseRoute | None:
        """As the router matches: the first full match, else the first partial one."""
        partial = None
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return route
            if match is Match.PARTIAL and partial is None:
                partial = route
        return partial
