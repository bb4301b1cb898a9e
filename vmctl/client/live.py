"""An execution's events as they happen: its SSE stream decoded, and picked up again
where it broke. No I/O here: both clients feed it what their connection brings.

The daemon keeps every event, so a dropped connection loses nothing: the stream is
asked for again with ``Last-Event-ID`` set to the last event received. A few tries,
with a growing pause between them (enough for a daemon restarting, short enough not
to keep anyone long for a daemon gone), then :class:`~vmctl.client.errors.StreamLost`.
"""

from __future__ import annotations

from typing import TypeVar

import httpx
import msgspec

from vmctl.api.models import Event, Execution
from vmctl.client.errors import StreamLost, invalid_response
from vmctl.client.sse import Parser, SSEError

T = TypeVar("T")

# The pauses before each reconnect since the last event came; about 8 s in all.
RETRY_DELAYS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0)
# The stream's last message: its data is the ended execution's record.
END_MESSAGE = "end"
EVENT_STREAM = "text/event-stream"


def check_event_stream(response: httpx.Response, path: str) -> None:
    """Refuse a successful answer that is not an event stream (a proxy's page, say)."""
    kind = response.headers.get("Content-Type", "").partition(";")[0].strip()
    if kind != EVENT_STREAM:
        problem = f"expected an event stream from {path}, got {kind or 'no type'!r}"
        raise invalid_response(response.status_code, problem)


class StreamDecoder:
    """One connection's messages, as its bytes arrive: events, then the ended record."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._parser = Parser()
        self.record: Execution | None = None  # once the ``end`` message came

    def feed(self, chunk: bytes) -> list[Event]:
        """The events ``chunk`` completes; after the end, :attr:`record` is set."""
        try:
            messages = self._parser.feed(chunk)
        except SSEError as exc:
            raise invalid_response(200, f"{self._path}: {exc}") from exc
        batch: list[Event] = []
        for message in messages:
            if message.event == END_MESSAGE:
                self.record = self._decoded(message.data, Execution)
                break
            batch.append(self._decoded(message.data, Event))
        return batch

    def _decoded(self, data: str, into: type[T]) -> T:
        try:
            return msgspec.json.decode(data, type=into)
        except msgspec.DecodeError as exc:
            problem = f"unexpected message from {self._path}: {exc}"
            raise invalid_response(200, problem) from exc


class Resumption:
    """Where a live stream is, across its connections: each event passes once and in
    order, and a broken connection is tried again a few times before giving up."""

    def __init__(self, execution_id: str, after_seq: int) -> None:
        self.execution_id = execution_id
        self.last_seq = after_seq
        self.resuming = False  # the next request is a reconnect (sends Last-Event-ID)
        self._failures = 0  # since the last event came

    def fresh(self, batch: list[Event]) -> list[Event]:
        # The daemon never repeats an event to a client that resumes; a duplicate
        # handed on twice would still be worse than a check.
        fresh = [event for event in batch if event.seq > self.last_seq]
        if fresh:
            self.last_seq = fresh[-1].seq
            self._failures = 0
        return fresh

    def retry_delay(self, reason: str) -> float:
        """How long to pause before reconnecting, or :class:`StreamLost` past the tries."""
        if self._failures == len(RETRY_DELAYS):
            raise StreamLost(self.execution_id, self.last_seq, reason)
        delay = RETRY_DELAYS[self._failures]
        self._failures += 1
        self.resuming = True
        return delay

    def closed_early(self) -> str:
        return f"the stream of execution {self.execution_id} closed before its end"
