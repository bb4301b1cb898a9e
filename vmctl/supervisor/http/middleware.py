"""The daemon's middleware, one concern each, stacked in one place (app.py).

From the outside in: :class:`RequestId` names the request; :class:`AccessLog`
logs it once it is answered; :class:`ServerErrors` answers ``INTERNAL`` for a
bug (and logs it with the request id); :class:`HostGuard` refuses a ``Host`` or
an ``Origin`` the daemon does not answer (hosts.py); :class:`BearerAuth` refuses
a request without the token; :class:`JsonBody` refuses a body that is not JSON;
:class:`BodyLimit` refuses a body over the limit, whatever its Content-Length
claimed. Each is plain ASGI: a refusal is the envelope of errors.py, sent before
the app sees the request. What comes before them (connection count, head size and
time, body time) is bounded by the connection itself (``vmctl/supervisor/connections.py``).
"""

from __future__ import annotations

import hmac
import logging
import time
import uuid
from collections.abc import Callable
from urllib.parse import quote

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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

# Where RequestId leaves the request's id in the ASGI scope, for the layers inside it.
REQUEST_ID = "vmctl.request_id"

# What a logged field keeps as it is: printable ASCII but the space (which separates the
# fields) and "%" (which starts an escape). Anything else, a newline or an escape
# sequence that would forge a log line or drive a terminal included, is %-escaped.
_LOGGED_AS_IS = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "%")

# Methods whose body the daemon reads; their bodies must be JSON.
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def header(scope: Scope, wanted: bytes) -> bytes | None:
    for name, value in scope["headers"]:
        if name == wanted:
            return bytes(value)
    return None


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


class RequestId(_HttpOnly):
    """The client's X-Request-Id if it is 1 to 128 printable ASCII characters, else a new
    one; in the scope for the layers inside, and on the response."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        text = (header(scope, b"x-request-id") or b"").decode("latin-1")
        if not (0 < len(text) <= 128 and all(0x20 < ord(c) < 0x7F for c in text)):
            text = uuid.uuid4().hex
        scope[REQUEST_ID] = text
        id_header = (b"x-request-id", text.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), id_header]
            await send(message)

        await self.app(scope, receive, send_with_id)


class AccessLog(_HttpOnly):
    """One log line per request once it is answered: id, method, path, status, time; and
    ``on_answered(scope, status)`` (the metrics' request counter), from the same place."""

    def __init__(
        self, app: ASGIApp, on_answered: Callable[[Scope, int], None] | None = None
    ) -> None:
        super().__init__(app)
        self.on_answered = on_answered

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 0

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            if self.on_answered is not None:
                self.on_answered(scope, status)
            elapsed_ms = (time.perf_counter() - started) * 1000
            logger.info(
                "%s %s %s %d %.1fms",
                scope[REQUEST_ID],  # RequestId took it only if it is printable ASCII
                loggable(scope["method"]),
                loggable(scope["path"]),
                status,
                elapsed_ms,
            )


class ServerErrors(_HttpOnly):
    """The last resort: a bug is logged with the request id and answered ``INTERNAL``
    without a traceback (if no answer has started yet). A client gone before its body
    ended is no bug: one line, and nobody to answer."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def send_noting_start(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_noting_start)
        except ClientDisconnect:
            # It hung up, or its body ran out of time and connections.py answered for it.
            logger.info("request %s: the client left before its body ended", scope[REQUEST_ID])
        except Exception as exc:
            known = client_error(exc)  # a fault the client is to be told of (a full disk)
            if known is None:
                logger.exception("request %s failed", scope[REQUEST_ID])
            else:
                logger.error("request %s: %s (%s)", scope[REQUEST_ID], known.message, exc)
            if not started:
                answer = internal_error(scope[REQUEST_ID]) if known is None else envelope(known)
                await answer(scope, receive, send)


class HostGuard(_HttpOnly):
    """``FORBIDDEN`` unless the ``Host`` is one the daemon answers and the ``Origin``, if
    any, is its own or an allowed one: every path, the health check included."""

    def __init__(self, app: ASGIApp, allowed: AllowedHosts) -> None:
        super().__init__(app)
        self.allowed = allowed

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        origin = header(scope, b"origin")
        if not self.allowed.allows_host(header(scope, b"host")):
            refusal = forbidden(
                "The Host header names no address this daemon answers "
                "(start it with --allow-host NAME to add one)"
            )
        elif origin is not None and not self.allowed.allows_origin(origin):
            refusal = forbidden(
                "Cross-site request refused: the Origin is not this daemon's "
                "(start it with --allow-origin ORIGIN to add one)"
            )
        else:
            await self.app(scope, receive, send)
            return
        await envelope(refusal)(scope, receive, send)


class BearerAuth(_HttpOnly):
    """With a token, every route but ``GET`` of the health check needs
    ``Authorization: Bearer``, compared in constant time."""

    def __init__(self, app: ASGIApp, token: str | None, open_path: str) -> None:
        super().__init__(app)
        self.expected = f"Bearer {token}".encode() if token is not None else None
        self.open_path = open_path

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.expected is not None
            and not (scope["method"] == "GET" and scope["path"] == self.open_path)
            and not hmac.compare_digest(header(scope, b"authorization") or b"", self.expected)
        ):
            refusal = RequestError("UNAUTHORIZED", "Missing or wrong bearer token")
            await envelope(refusal)(scope, receive, send)
            return
        await self.app(scope, receive, send)


class JsonBody(_HttpOnly):
    """``UNSUPPORTED_MEDIA_TYPE`` for a body that does not say it is JSON.

    Besides telling a client its mistake, this closes the door a browser leaves open: a
    cross-site form or ``fetch`` can send ``text/plain`` (or no type) without asking the
    daemon first, but never ``application/json``.
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] in _BODY_METHODS and _has_body(scope):
            media_type = (header(scope, b"content-type") or b"").partition(b";")[0]
            if media_type.strip().lower() != b"application/json":
                refusal = RequestError(
                    "UNSUPPORTED_MEDIA_TYPE",
                    "A request body must be sent as Content-Type: application/json",
                )
                await envelope(refusal)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _has_body(scope: Scope) -> bool:
    length = header(scope, b"content-length")
    return header(scope, b"transfer-encoding") is not None or (
        length is not None and length.strip() not in (b"", b"0")
    )


class BodyLimit(_HttpOnly):
    """A body over ``max_bytes`` is ``PAYLOAD_TOO_LARGE``: refused at once when its
    Content-Length says so, else as soon as that many bytes have arrived."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        length = header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await envelope(too_large(self.max_bytes))(scope, receive, send)
            return
        received = 0

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise too_large(self.max_bytes)
            return message

        await self.app(scope, bounded_receive, send)
