"""One HTTP connection, bounded before any request reaches the app (or its auth).

uvicorn's httptools protocol, with four bounds it lacks:

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
- **Body time**: a request has ``BODY_TIMEOUT`` seconds from the end of its head (the
  end of the read that ended it) to deliver its whole body; one that stops mid-way is
  answered ``400 INVALID_REQUEST`` and closed (only closed if its answer has begun).
  The clock is for the client's sending, not for the request's work: it stops at the
  body's last byte, so a long execution or an event stream is never cut by it, and it
  starts again while the daemon itself is not reading (a pipelined request waiting for
  the one before it). uvicorn has no such bound: a handler awaiting a body that never
  comes holds its connection for ever.

Every request llhttp cannot parse is answered in the envelope (``send_400_response``),
not in uvicorn's plain text.

The head is what llhttp parses between ``on_message_begin`` and ``on_headers_complete``:
both are parser callbacks this class extends. A whole head is measured when it ends; one
still arriving is measured per read, from the read after the one it began in, so a
connection holds at most ``MAX_HEAD_BYTES`` and one read (256 KiB) of it. The body's
clock is armed only by a read that ends with a body still incomplete, so a request that
arrives whole costs it one test. This leans on uvicorn's ``HttpToolsProtocol`` (its
callbacks, ``url``, ``headers``, ``cycle`` and its ``more_body``, ``response_started``
and ``disconnected``, ``pipeline``, ``flow``, ``connections``, ``transport``,
``on_response_complete`` and ``send_400_response``), stable since uvicorn 0.30.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from vmctl.supervisor.config import BODY_TIMEOUT, HEAD_TIMEOUT, MAX_CONNECTIONS, MAX_HEAD_BYTES
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
BODY_TOO_SLOW = closing_response(
    RequestError(
        "INVALID_REQUEST",
        f"The request body did not arrive within {BODY_TIMEOUT:g} s of its head",
        {"body_timeout_s": BODY_TIMEOUT},
    )
)
MALFORMED = closing_response(RequestError("INVALID_REQUEST", "Invalid HTTP request"))


class _HeadTooLarge(Exception):
    """Raised in a parser callback: llhttp stops, and uvicorn answers the parse error."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a cap on connections, on a head's size and time,
    and on a body's time."""

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
        self._reading_body = False  # from a head's end to its message's end
        self._body_timer: asyncio.TimerHandle | None = None
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
        self._cancel_body_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._head_began = False
        super().data_received(data)
        if self.transport.is_closing():
            return
        if not self._reading_head:
            # A body still incomplete after the read that ended its head starts the clock.
            if self._reading_body and self._body_timer is None:
                self._body_timer = self.loop.call_later(BODY_TIMEOUT, self._body_timed_out)
            return
        if self._head_began:
            return
        self._head_bytes += len(data)
        if self._head_bytes > MAX_HEAD_BYTES:
            self._refuse(HEAD_TOO_LARGE)

    # -- llhttp's callbacks and uvicorn's hooks --------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_head, self._head_began, self._head_bytes = True, True, 0

    def on_headers_complete(self) -> None:
        self._reading_head, self._reading_body = False, True
        self._cancel_head_timer()
        if len(self.url) + sum(len(n) + len(v) for n, v in self.headers) > MAX_HEAD_BYTES:
            self._refusal = HEAD_TOO_LARGE
            raise _HeadTooLarge
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._reading_body = False
        self._cancel_body_timer()
        super().on_message_complete()

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

    # -- the body's clock -------------------------------------------------------------

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_timed_out(self) -> None:
        self._body_timer = None
        if self.transport.is_closing():
            return
        if self.pipeline or self.flow.read_paused:
            # The daemon is not reading, so the client cannot be sending: the body
            # belongs to a pipelined request still queued, or a handler has not yet
            # taken what arrived. Its time starts again.
            self._body_timer = self.loop.call_later(BODY_TIMEOUT, self._body_timed_out)
            return
        logger.warning("a request body was unfinished %gs after its head: refused", BODY_TIMEOUT)
        if self.cycle.response_started:
            self.transport.close()  # an answer has begun: it can only be cut
            return
        # We answer for the request: whatever its handler sends from now on is dropped,
        # and the body it awaits ends as a disconnect.
        self.cycle.disconnected = True
        self.cycle.message_event.set()
        self._refuse(BODY_TOO_SLOW)

    def _refuse(self, response: bytes) -> None:
        self._cancel_head_timer()
        self._cancel_body_timer()
        if not self.transport.is_closing():
            self.transport.write(response)
            self.transport.close()
