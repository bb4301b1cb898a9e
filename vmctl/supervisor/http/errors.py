"""The error envelope, and the one table from an error's code to its HTTP status.

Every failure a client sees is a :class:`~vmctl.supervisor.sessions.errors.VmctlError`
(the domain's, or a :class:`RequestError` of this room for what is wrong with the
HTTP request itself) and is rendered here, once, as
``{"error": {"code", "message", "details"}}`` with the status of
:data:`STATUS_BY_CODE`. Anything else that escapes a handler is a bug: the
middleware logs it with the request id and answers ``INTERNAL``.
"""

from __future__ import annotations

import http
from typing import Any, cast

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from vmctl.api.errors import ErrorBody, ErrorCode, ErrorEnvelope
from vmctl.supervisor.sessions.errors import VmctlError

# The contract's table (api-contract.md, "Errors"); its codes are vmctl.api's ErrorCode.
STATUS_BY_CODE: dict[str, int] = {
    "VALIDATION_ERROR": 400,
    "INVALID_REQUEST": 400,
    "UNAUTHORIZED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "TEMPLATE_NOT_FOUND": 404,
    "SESSION_NOT_FOUND": 404,
    "EXECUTION_NOT_FOUND": 404,
    "FILE_NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "TEMPLATE_NAME_TAKEN": 409,
    "TEMPLATE_IN_USE": 409,
    "DUPLICATE": 409,
    "SESSION_NOT_READY": 409,
    "SESSION_BUSY": 409,
    "PAYLOAD_TOO_LARGE": 413,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "INVALID_PATH": 422,
    "OUTPUT_LIMIT_EXCEEDED": 422,
    "EXECUTION_TIMEOUT": 422,
    "MEMORY_LIMIT_EXCEEDED": 422,
    "STARTUP_MODE_UNSUPPORTED": 422,
    "MODULE_NOT_ALLOWED": 422,
    "STARTUP_FAILED": 422,
    "CAPACITY_EXCEEDED": 503,
    "STORE_FULL": 507,
    "WORKER_CRASHED": 500,
    "INTERNAL": 500,
}

_encoder = msgspec.json.Encoder()


class RequestError(VmctlError):
    """What is wrong with the HTTP request itself: its body, its route, its credentials."""


def encode_json(content: Any) -> bytes:
    """What :class:`JSON` sends, for answers made otherwise (a stream's messages)."""
    return _encoder.encode(content)


class JSON(Response):
    media_type = "application/json"

    def __init__(self, content: Any, status_code: int = 200) -> None:
        super().__init__(_encoder.encode(content), status_code=status_code)


def _envelope_body(error: VmctlError) -> ErrorEnvelope:
    # Every code raised is one of STATUS_BY_CODE's (tests/supervisor/test_error_codes.py).
    return ErrorEnvelope(ErrorBody(cast(ErrorCode, error.code), error.message, error.details))


def envelope(error: VmctlError) -> Response:
    return JSON(_envelope_body(error), STATUS_BY_CODE[error.code])


def closing_response(error: VmctlError) -> bytes:
    """The envelope as a whole HTTP/1.1 response that closes the connection: what the
    connection layer (connections.py) writes when it refuses a request the app never sees."""
    status = STATUS_BY_CODE[error.code]
    body = _encoder.encode(_envelope_body(error))
    head = (
        f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def internal_error(request_id: str) -> Response:
    return envelope(RequestError("INTERNAL", "Internal error", {"request_id": request_id}))


def too_large(limit: int) -> RequestError:
    return RequestError(
        "PAYLOAD_TOO_LARGE", f"Request body exceeds {limit} bytes", {"max_bytes": limit}
    )


def forbidden(message: str, **details: Any) -> RequestError:
    return RequestError("FORBIDDEN", message, details)


def method_not_allowed(request: Request) -> RequestError:
    return RequestError("METHOD_NOT_ALLOWED", f"Method {request.method} not allowed")


async def on_domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, VmctlError)
    return envelope(exc)


async def on_routing_error(request: Request, exc: Exception) -> Response:
    """Routing failures (unknown path, wrong method) in the envelope."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        response = envelope(method_not_allowed(request))
        if exc.headers:
            response.headers.update(exc.headers)
        return response
    if exc.status_code == 404:
        return envelope(RequestError("NOT_FOUND", f"No route for {request.url.path}"))
    return envelope(RequestError("INTERNAL", str(exc.detail)))


EXCEPTION_HANDLERS = {VmctlError: on_domain_error, HTTPException: on_routing_error}
