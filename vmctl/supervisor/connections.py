"""One HTTP connection, bounded before any request reaches the app (or its auth).

uvicorn's httptools protocol, with three bounds it lacks:

- **Connections**: at most ``MAX_CONNECTIONS`` open at once; one more is answered
  ``503 CAPACITY_EXCEEDED`` and closed at once. (uvicorn's ``limit_concurrency`` only
  answers a request whose head has arrived, so half-sent requests pile up.)
- **Head size**: a request whose URL and headers exceed ``MAX_HEAD_BYTES`` is refused
  with ``400 INVALID_REQUEST``, and a head that has not ended by then is refused as its
  bytes arrive. llhttp has no such limit, and httptools grows a header line in memory
  for as long as it goes on.
- **Head time**: a connection has ``HEAD_TIMEOUT`` seconds to deliver a whole request
  head, from its opening and again from the end of each response; a client that
  trickles its headers, or connects and says nothing, is then closed. (uvicorn only
  times the idle time after a response, and any byte restarts that clock.)

The head is what llhttp parses between ``on_message_begin`` and ``on_headers_complete``:
both are parser callbacks this class extends. A whole head is measured when it ends; one
still arriving is measured per read, from the read after the one it began in, so a
connection holds at most ``MAX_HEAD_BYTES`` and one read (256 KiB) of it. This leans on
uvicorn's ``HttpToolsProtocol`` (its callbacks, ``url``, ``headers``, ``cycle``,
``connections``, ``transport``, ``on_response_complete`` and ``send_400_response``),
stable since uvicorn 0.30.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from vmctl.supervisor.config import HEAD_TIMEOUT, MAX_CONNECTIONS, MAX_HEAD_BYTES
from vmctl.supervisor.http.errors import RequestError, closing_response

logger = logging.getLogger("vmctl.http")

TOO_MANY = closing_response(
    RequestError(
        "CAPACITY_EXCEEDED",
        f"The daemon has {MAX_CONNECTIONS} connections open, its maximum",
        {"max_connections": MAX_CONNECTIONS},
    )
)
HEAD_TOO_LARGE = closing_response(
    RequestError(
        "INVALID_REQUEST",
        f"The request line and headers exceed {MAX_HEAD_BYTES} bytes",
        {"max_head_bytes": MAX_HEAD_BYTES},
    )
)
MALFORMED = closing_response(RequestError("INVALID_REQUEST", "Invalid HTTP request"))


class _HeadTooLarge(Exception):
    """Raised in a parser callback: llhttp stops, and uvicorn answers the parse error."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a cap on connections and on a head's size and time."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # From a head's first byte (or the connection's opening) to the head's end.
        self._reading_head = True
        self._head_began = False  # a head began within the read being parsed
        self._head_bytes = 0  # of the head being read, counted from the read after it began
        self._head_timer: asyncio.TimerHandle | None = None
        self._refusal = MALFORMED  # what a parse error is answered with

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        if len(self.connections) > MAX_CONNECTIONS:
            logger.warning("refused a connection: %d are open", len(self.connections) - 1)
            self._refuse(TOO_MANY)
            return
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._head_began = False
        super().data_received(data)
        if not self._reading_head or self._head_began or self.transport.is_closing():
            return
        self._head_bytes += len(data)
        if self._head_bytes > MAX_HEAD_BYTES:
            self._refuse(HEAD_TOO_LARGE)

    # -- llhttp's callbacks and uvicorn's hooks --------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_head, self._head_began, self._head_bytes = True, True, 0

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._cancel_head_timer()
        if len(self.url) + sum(len(n) + len(v) for n, v in self.headers) > MAX_HEAD_BYTES:
            self._refusal = HEAD_TOO_LARGE
            raise _HeadTooLarge
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_head_timer()

    def send_400_response(self, msg: str) -> None:
        # A request llhttp cannot parse (or one we stopped it parsing): the envelope
        # rather than uvicorn's plain text.
        self._refuse(self._refusal)

    # -- the head's clock --------------------------------------------------------------

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(HEAD_TIMEOUT, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            # A request is being served (a pipelined one may have been queued behind
            # it): its response's end arms the clock again.
            return
        if not self.transport.is_closing():
            self.transport.close()

    def _refuse(self, response: bytes) -> None:
        self._cancel_head_timer()
        if not self.transport.is_closing():
            self.transport.write(response)
            self.transport.close()
