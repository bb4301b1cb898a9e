"""The daemon's middleware: two layers, each a few concerns in a fixed order (app.py).

:class:`RequestFrame`, outermost, frames every request: it names it (``X-Request-Id``),
answers ``INTERNAL`` for a bug (logged with that id), and once it is answered logs it
and counts it. :class:`Gate` then refuses, before the app sees it, a request the daemon
does not serve, each check a function of its own, in this order: a ``Host`` or an
``Origin`` it does not answer (hosts.py), a missing token (the bearer header, or the web
console's cookie: credentials.py), a body that is not JSON, a
body over the limit (whatever its Content-Length claimed). A refusal is the envelope of
errors.py. Each concern is a layer's step rather than a layer: every ASGI layer costs a
coroutine and a wrapped ``send`` on every request. What comes before them (connection
count, head size and time, body time) is bounded by the connection itself
(``vmctl/supervisor/connections.py``).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from urllib.parse import quote

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vmctl.supervisor.http.credentials import Token, header
from vmctl.supervisor.http.errors import (
    RequestError,
    envelope,
    forbidden,
    internal_error,
    too_large,
)
from vmctl.supervisor.http.hosts import AllowedHosts
from vmctl.supervisor.sessions.errors import client_error

logger = logging.getLogger("vmctl.http")

# Where RequestFrame leaves the request's id in the ASGI scope, for the layers inside it.
REQUEST_ID = "vmctl.request_id"

# What a logged field keeps as it is: printable ASCII but the space (which separates the
# fields) and "%" (which starts an escape). Anything else, a newline or an escape
# sequence that would forge a log line or drive a terminal included, is %-escaped.
_LOGGED_AS_IS = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "%")

# Methods whose body the daemon reads; their bodies must be JSON.
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def loggable(text: str) -> str:
    """``text`` as one log field: one token, every byte printable ASCII (UTF-8, %-escaped)."""
    return quote(text, safe=_LOGGED_AS_IS) or "-"


class _HttpOnly:
    """A middleware of HTTP requests: every other scope (the lifespan) passes through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.handle(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class RequestFrame(_HttpOnly):
    """Names the request: the client's X-Request-Id if it is 1 to 128 printable ASCII
    characters, else a new one, in the scope for the layers inside and on the response.
    Answers a bug ``INTERNAL`` without a traceback (if no answer has started yet) and logs
    it with the request id; a client gone before its body ended is no bug: one line, and
    nobody to answer. Once answered, logs one line (id, method, path, status, time) and
    calls ``on_answered(scope, status)`` (the metrics' request counter); status 0 is a
    request nobody answered."""

    def __init__(
        self, app: ASGIApp, on_answered: Callable[[Scope, int], None] | None = None
    ) -> None:
        super().__init__(app)
        self.on_answered = on_answered

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request_id = _request_id(scope)
        scope[REQUEST_ID] = request_id
        id_header = (b"x-request-id", request_id.encode())
        status = 0

        async def send_framed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), id_header]
            await send(message)

        try:
            await self.app(scope, receive, send_framed)
        except ClientDisconnect:
            # It hung up, or its body ran out of time and connections.py answered for it.
            logger.info("request %s: the client left before its body ended", request_id)
        except Exception as exc:
            known = client_error(exc)  # a fault the client is to be told of (a full disk)
            if known is None:
                logger.exception("request %s failed", request_id)
            else:
                logger.error("request %s: %s (%s)", request_id, known.message, exc)
            if not status:
                answer = internal_error(request_id) if known is None else envelope(known)
                await answer(scope, receive, send_framed)
        finally:
            if self.on_answered is not None:
                self.on_answered(scope, status)
            elapsed_ms = (time.perf_counter() - started) * 1000
            logger.info(
                "%s %s %s %d %.1fms",
                request_id,  # taken only if it is printable ASCII
                loggable(scope["method"]),
                loggable(scope["path"]),
                status,
                elapsed_ms,
            )


def _request_id(scope: Scope) -> str:
    text = (header(scope, b"x-request-id") or b"").decode("latin-1")
    if 0 < len(text) <= 128 and all(0x20 < ord(c) < 0x7F for c in text):
        return text
    return uuid.uuid4().hex


class Gate(_HttpOnly):
    """Refuses what the daemon does not serve, in order: a Host or Origin it does not
    answer (before auth: DNS rebinding), a missing or wrong token, a body that is not
    JSON, a body over ``max_bytes``."""

    def __init__(
        self,
        app: ASGIApp,
        allowed: AllowedHosts,
        token: Token | None,
        open_paths: frozenset[str],
        max_bytes: int,
    ) -> None:
        super().__init__(app)
        self.allowed = allowed
        self.token = token
        self.open_paths = open_paths
        self.max_bytes = max_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = (
            host_refusal(scope, self.allowed)
            or token_refusal(scope, self.token, self.open_paths)
            or media_refusal(scope)
            or length_refusal(scope, self.max_bytes)
        )
        if refusal is not None:
            await envelope(refusal)(scope, receive, send)
            return
        if _declared_length(scope) is not None and not header(scope, b"transfer-encoding"):
            # The connection reads no more than a Content-Length: it is within the limit.
            await self.app(scope, receive, send)
        else:
            await self.app(scope, bounded(receive, self.max_bytes), send)


def host_refusal(scope: Scope, allowed: AllowedHosts) -> RequestError | None:
    """``FORBIDDEN`` unless the ``Host`` is one the daemon answers and the ``Origin``, if
    any, is its own or an allowed one: every path, the health check included."""
    if not allowed.allows_host(header(scope, b"host")):
        return forbidden(
            "The Host header names no address this daemon answers "
            "(start it with --allow-host NAME to add one)"
        )
    origin = header(scope, b"origin")
    if origin is not None and not allowed.allows_origin(origin):
        return forbidden(
            "Cross-site request refused: the Origin is not this daemon's "
            "(start it with --allow-origin ORIGIN to add one)"
        )
    return None


def token_refusal(
    scope: Scope, token: Token | None, open_paths: frozenset[str]
) -> RequestError | None:
    """With a token, every route needs it (``Token``) but a ``GET`` of the open paths: the
    health check, and the console's page, which signs in with it itself."""
    if (
        token is not None
        and not (scope["method"] == "GET" and scope["path"] in open_paths)
        and not token.shown(scope)
    ):
        return RequestError("UNAUTHORIZED", "Missing or wrong bearer token")
    return None


def media_refusal(scope: Scope) -> RequestError | None:
    """``UNSUPPORTED_MEDIA_TYPE`` for a body that does not say it is JSON.

    Besides telling a client its mistake, this closes the door a browser leaves open: a
    cross-site form or ``fetch`` can send ``text/plain`` (or no type) without asking the
    daemon first, but never ``application/json``.
    """
    if scope["method"] in _BODY_METHODS and _has_body(scope):
        media_type = (header(scope, b"content-type") or b"").partition(b";")[0]
        if media_type.strip().lower() != b"application/json":
            return RequestError(
                "UNSUPPORTED_MEDIA_TYPE",
                "A request body must be sent as Content-Type: application/json",
            )
    return None


def _has_body(scope: Scope) -> bool:
    length = header(scope, b"content-length")
    return header(scope, b"transfer-encoding") is not None or (
        length is not None and length.strip() not in (b"", b"0")
    )


def length_refusal(scope: Scope, max_bytes: int) -> RequestError | None:
    """``PAYLOAD_TOO_LARGE`` at once when the Content-Length says the body is too large."""
    length = _declared_length(scope)
    if length is not None and length > max_bytes:
        return too_large(max_bytes)
    return None


def _declared_length(scope: Scope) -> int | None:
    """The body's length as a plain-number Content-Length declares it, if one does."""
    length = header(scope, b"content-length")
    return int(length) if length is not None and length.isdigit() else None


def bounded(receive: Receive, max_bytes: int) -> Receive:
    """``receive`` that raises ``PAYLOAD_TOO_LARGE`` as soon as more than ``max_bytes`` of a
    body without a Content-Length (chunked) have arrived."""
    received = 0

    async def bounded_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > max_bytes:
                raise too_large(max_bytes)
        return message

    return bounded_receive
