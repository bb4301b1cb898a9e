"""Everything the client raises, and the one place an HTTP answer or failure becomes it::

    ClientError
     ├── ApiError            the daemon answered with the error envelope (or garbage)
     │    ├── InvalidRequest      400, 405, 413, 415: the request itself is wrong
     │    ├── Unauthorized        401: no token, or the wrong one
     │    ├── Forbidden           403: a Host or an Origin the daemon does not answer
     │    ├── NotFound            404: no such template, session, execution or file
     │    ├── Conflict            409: busy, not ready, a name taken
     │    ├── Unprocessable       422: a path, module or startup file refused
     │    │    └── LimitExceeded       a limit stopped an execution the request waited for
     │    ├── Unavailable         503: the daemon is at capacity
     │    └── ServerError         500, 507: a worker crashed, the store is full, a bug
     ├── DaemonUnreachable   nothing accepted the connection at the URL
     ├── ConnectionLost      the connection broke or timed out mid-request (or mid-stream)
     └── StreamLost          a live stream broke and did not come back within the retries

Match on ``ApiError.code`` (the contract's stable codes) for anything finer than a family.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec

# A code the client never saw the daemon give (INVALID_RESPONSE) when an answer is not
# what the contract says: a proxy's error page, a truncated body, a stream of garbage.
INVALID_RESPONSE = "INVALID_RESPONSE"


class ClientError(Exception):
    """Base of everything the client raises."""


class ApiError(ClientError):
    """The daemon refused a request; ``code`` is the contract's stable error code."""

    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{message.rstrip()} ({code})")
        self.status = status
        self.code = code
        self.message = message
        self.details: dict[str, Any] = details or {}


class InvalidRequest(ApiError):
    """400, 405, 413, 415: the request is malformed, a field is missing or too big."""


class Unauthorized(ApiError):
    """401: the token is missing or wrong."""


class Forbidden(ApiError):
    """403: the daemon does not answer this Host or Origin."""


class NotFound(ApiError):
    """404: no such template, session, execution, route or file."""


class Conflict(ApiError):
    """409: ``SESSION_BUSY``, ``SESSION_NOT_READY``, ``TEMPLATE_NAME_TAKEN``, ..."""


class Unprocessable(ApiError):
    """422: understood but refused: ``INVALID_PATH``, ``MODULE_NOT_ALLOWED``, ``STARTUP_FAILED``."""


class LimitExceeded(Unprocessable):
    """422 for an execution a request waited for and a limit stopped."""


class Unavailable(ApiError):
    """503: ``CAPACITY_EXCEEDED``."""


class ServerError(ApiError):
    """500 or 507: ``WORKER_CRASHED``, ``STORE_FULL``, ``INTERNAL``."""


class DaemonUnreachable(ClientError):
    def __init__(self, url: str) -> None:
        super().__init__(f"cannot reach the vmctl daemon at {url} — start it with `vmctl up`")
        self.url = url


class ConnectionLost(ClientError):
    def __init__(self, url: str, cause: httpx.TransportError) -> None:
        reason = str(cause) or type(cause).__name__
        super().__init__(f"lost the connection to the vmctl daemon at {url}: {reason}")
        self.url = url


class StreamLost(ClientError):
    """An execution's live stream broke and did not come back within the retries; its
    events are kept by the daemon, and ``after_seq`` is the last one received."""

    def __init__(self, execution_id: str, after_seq: int, reason: str) -> None:
        super().__init__(
            f"{reason}; stream_events({execution_id!r}, after_seq={after_seq}) picks up the"
            " execution's events from there"
        )
        self.execution_id = execution_id
        self.after_seq = after_seq
        self.reason = reason


_LIMIT_CODES = frozenset({"EXECUTION_TIMEOUT", "OUTPUT_LIMIT_EXCEEDED", "MEMORY_LIMIT_EXCEEDED"})
_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: InvalidRequest,
    409: Conflict,
    413: InvalidRequest,
    415: InvalidRequest,
    422: Unprocessable,
    500: ServerError,
    503: Unavailable,
    507: ServerError,
}


class _ErrorBody(msgspec.Struct):
    # vmctl.api.errors.ErrorBody types ``code`` as the codes this daemon gives; a client
    # must still read a code it does not know (a newer daemon's), hence a plain str here.
    code: str
    message: str
    details: dict[str, Any] | None = None


class _Envelope(msgspec.Struct):
    error: _ErrorBody


def api_error(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> ApiError:
    """The exception of the family ``status`` and ``code`` belong to."""
    family = LimitExceeded if code in _LIMIT_CODES else _BY_STATUS.get(status, ApiError)
    return family(status, code, message, details)


def error_from(response: httpx.Response) -> ApiError:
    """The error a read error response carries (its envelope, else its text)."""
    try:
        body = msgspec.json.decode(response.content, type=_Envelope).error
    except msgspec.DecodeError:
        text = response.text.strip()[:200] or response.reason_phrase
        return api_error(response.status_code, f"HTTP_{response.status_code}", text)
    return api_error(response.status_code, body.code, body.message, body.details)


def invalid_response(status: int, message: str) -> ApiError:
    return ApiError(status, INVALID_RESPONSE, message)


@contextlib.contextmanager
def transport_errors(url: str) -> Iterator[None]:
    """httpx's failures to reach or keep talking to the daemon, as the client's own."""
    try:
        yield
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise DaemonUnreachable(url) from exc
    except httpx.TransportError as exc:
        raise ConnectionLost(url, exc) from exc
