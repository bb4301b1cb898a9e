"""The Python client of the vmctl daemon's REST API (docs/python.md)::

    from vmctl.client import Client

    with Client() as client, client.session(template="scratch") as session:
        run = session.repl("[1, 2, 3].map((n) => n * 2)")
        print(run.value)  # [2, 4, 6]

:class:`Client` (httpx, synchronous) and :class:`AsyncClient` (the same methods,
awaited) have one flat method per endpoint, returning the Structs of
:mod:`vmctl.api.models`; ``session()`` opens a session as a context manager;
``stream_events()`` follows an execution live. Failures are the exceptions of
:mod:`vmctl.client.errors`. The URL and the token are found as the CLI finds them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vmctl.api.models import Event, Execution, Session, Template
from vmctl.client.errors import (
    ApiError,
    ClientError,
    Conflict,
    ConnectionLost,
    DaemonUnreachable,
    Forbidden,
    InvalidRequest,
    LimitExceeded,
    NotFound,
    ServerError,
    StreamLost,
    Unauthorized,
    Unavailable,
    Unprocessable,
)
from vmctl.client.handles import RunningExecution, SessionHandle
from vmctl.client.runs import Run
from vmctl.client.sync import Client, EventStream

if TYPE_CHECKING:
    from vmctl.client.aio import AsyncClient, AsyncEventStream
    from vmctl.client.aio_handles import AsyncRunningExecution, AsyncSessionHandle

# The async half is imported on first use: the CLI, which is synchronous, starts
# without asyncio.
_ASYNC = {
    "AsyncClient": "vmctl.client.aio",
    "AsyncEventStream": "vmctl.client.aio",
    "AsyncRunningExecution": "vmctl.client.aio_handles",
    "AsyncSessionHandle": "vmctl.client.aio_handles",
}


def __getattr__(name: str) -> Any:
    if name in _ASYNC:
        import importlib

        return getattr(importlib.import_module(_ASYNC[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ApiError",
    "AsyncClient",
    "AsyncEventStream",
    "AsyncRunningExecution",
    "AsyncSessionHandle",
    "Client",
    "ClientError",
    "Conflict",
    "ConnectionLost",
    "DaemonUnreachable",
    "Event",
    "EventStream",
    "Execution",
    "Forbidden",
    "InvalidRequest",
    "LimitExceeded",
    "NotFound",
    "Run",
    "RunningExecution",
    "ServerError",
    "Session",
    "SessionHandle",
    "StreamLost",
    "Template",
    "Unauthorized",
    "Unavailable",
    "Unprocessable",
]
