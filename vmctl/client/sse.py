"""Server-sent events: the ``text/event-stream`` framing, parsed as the WHATWG HTML spec says.

Pure: bytes in, messages out, no I/O. The client feeds it what comes off the
socket, in chunks of any size::

    parser = Parser()
    for chunk in response.iter_bytes():
        for message in parser.feed(chunk):
            ...

Our own rather than the ``httpx-sse`` package: that one dispatches a phantom
empty message for every comment line once an ``id:`` has been seen (its issue
#35, open), and the daemon's stream is exactly ids plus keep-alive comments.
The spec's parsing is a page (section "Interpreting an event stream"); the tests
in tests/cli/test_sse.py walk through it.
"""

from __future__ import annotations

import codecs
import re

import msgspec

# A line ends at CRLF, CR or LF, and only there: JSON text may hold U+2028 and its
# kin, which str.splitlines would also break on.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# The daemon's messages are bounded by an execution's output limit (max_output_kb);
# a line or a message far past any of them is a broken stream, not something to buffer.
MAX_MESSAGE_CHARS = 64 * 1024 * 1024


class SSEError(ValueError):
    """The stream is not one this parser will hold in memory."""


class Message(msgspec.Struct, frozen=True):
    """One dispatched message."""

    event: str  # "message" when the server named no type
    data: str  # the data lines joined with "\n"
    last_event_id: str  # the last ``id:`` seen so far ("" before any), as EventSource keeps it


class Parser:
    """An event stream's messages, as its bytes arrive; a message cut off by the end of the
    stream is never dispatched (the spec's rule, which makes a reconnect safe)."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._started = False  # a byte-order mark is skipped at the very start only
        self._pending = ""  # the text after the last line break
        self._skip_lf = False  # the last chunk ended in CR: an LF opening the next one pairs it
        self._event = ""
        self._data: list[str] = []
        self._data_chars = 0
        self.last_event_id = ""
        self.retry_ms: int | None = None  # the server's reconnection time, when it sent one

    def feed(self, chunk: bytes) -> list[Message]:
        """The messages that ``chunk`` completes, in order."""
        text = self._decoder.decode(chunk)
        if not text:
            return []  # e.g. half of a multi-byte character: wait for the rest
        if not self._started:
            self._started = True
            text = text.removeprefix("\ufeff")
        if self._skip_lf and text.startswith("\n"):
            text = text[1:]
        buffer = self._pending + text
        self._skip_lf = buffer.endswith("\r")
        *lines, self._pending = _LINE_BREAK.split(buffer)
        if len(self._pending) > MAX_MESSAGE_CHARS:
            raise SSEError(f"an event-stream line longer than {MAX_MESSAGE_CHARS} characters")
        messages = []
        for line in lines:
            message = self._line(line)
            if message is not None:
                messages.append(message)
        return messages

    def _line(self, line: str) -> Message | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment: the daemon's keep-alive
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        match name:
            case "event":
                self._event = value
            case "data":
                self._data.append(value)
                self._data_chars += len(value) + 1
                if self._data_chars > MAX_MESSAGE_CHARS:
                    raise SSEError(f"an event-stream message over {MAX_MESSAGE_CHARS} characters")
            case "id" if "\0" not in value:
                self.last_event_id = value
            case "retry" if value.isascii() and value.isdigit():
                self.retry_ms = int(value)
            case _:
                pass  # the spec ignores any other field
        return None

    def _dispatch(self) -> Message | None:
        data, event = self._data, self._event
        self._data, self._event, self._data_chars = [], "", 0
        if not data:
            return None  # no data line: nothing to dispatch (a blank line after a comment)
        return Message(event or "message", "\n".join(data), self.last_event_id)
