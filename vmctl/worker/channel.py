"""The worker's side of the line protocol: frames out, requests in, cancels across threads.

:class:`FrameWriter` writes whole frames to the private frame fd under one lock (the
JavaScript thread streams console frames while the reader thread answers pings).
:func:`read_requests` runs on the reader thread: it answers :class:`Ping` itself, turns
:class:`Cancel` into a flag the interrupt handler sees, and hands requests to the main thread
through the :class:`Inbox`. :class:`Shutdown` or end of input closes the inbox.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from collections.abc import Iterator
from typing import BinaryIO

import msgspec

from vmctl.protocol import (
    MAX_LINE_BYTES,
    Cancel,
    Error,
    ExecRepl,
    Frame,
    Ping,
    Pong,
    ProtocolError,
    RunFile,
    RunStartup,
    Shutdown,
    Value,
    decode_request,
    encode,
)
from vmctl.worker.limits import Budget

Job = ExecRepl | RunFile | RunStartup

# A frame past MAX_LINE_BYTES would make the supervisor kill the worker, so long strings are
# clipped first. Escaped JSON takes at most 6 bytes per character, and a frame has at most
# three long strings (message, name, stack).
_CLIP_CHARS = MAX_LINE_BYTES // 32


class FrameWriter:
    """Writes frames, one line each, to the frame fd; safe from any thread."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._lock = threading.Lock()

    def write(self, frame: Frame) -> None:
        """Write one frame whole. Raises OSError when the supervisor's end is gone."""
        view = memoryview(_fit(frame))
        with self._lock:
            while view:
                view = view[os.write(self._fd, view) :]


def _fit(frame: Frame) -> bytes:
    line = encode(frame)
    if len(line) <= MAX_LINE_BYTES:
        return line
    changes: dict[str, object] = {
        name: _clip(value)
        for name in frame.__struct_fields__
        if isinstance(value := getattr(frame, name), str)
    }
    if isinstance(frame, Value):
        changes["json"] = msgspec.UNSET
    return encode(msgspec.structs.replace(frame, **changes))


def _clip(text: str) -> str:
    if len(text) <= _CLIP_CHARS:
        return text
    return f"{text[:_CLIP_CHARS]}… [{len(text) - _CLIP_CHARS} more characters]"


class Inbox:
    """Requests waiting for the JavaScript thread, and the cancels that reach them."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._waiting: set[int] = set()
        self._cancelled: set[int] = set()
        self._running: tuple[int, Budget] | None = None
        self.closed = False

    def put(self, job: Job) -> None:
        with self._lock:
            self._waiting.add(job.id)
        self._queue.put(job)

    def take(self) -> Job | None:
        """The next request, or None once the inbox is closed and empty (blocks until then)."""
        return self._queue.get()

    def begin(self, job_id: int, budget: Budget) -> bool:
        """Mark ``job_id`` running under ``budget``; False if it was cancelled while waiting."""
        with self._lock:
            self._waiting.discard(job_id)
            if self.closed or job_id in self._cancelled:
                self._cancelled.discard(job_id)
                return False
            self._running = (job_id, budget)
            return True

    def end(self) -> None:
        with self._lock:
            self._running = None

    def cancel(self, job_id: int) -> None:
        """Interrupt ``job_id`` if it runs, or refuse it when its turn comes; else ignore."""
        with self._lock:
            if self._running is not None and self._running[0] == job_id:
                self._running[1].cancel()
            elif job_id in self._waiting:
                self._cancelled.add(job_id)

    def close(self) -> None:
        """Interrupt the running request and let the main thread finish after the queue."""
        with self._lock:
            self.closed = True
            if self._running is not None:
                self._running[1].cancel()
        self._queue.put(None)


def read_requests(stream: BinaryIO, writer: FrameWriter, inbox: Inbox) -> None:
    """The reader thread: until Shutdown or end of input, then close the inbox.

    A line that is not a valid request is answered with ``Error(code="BAD_REQUEST")``,
    carrying the line's ``id`` when one can be read from it and 0 otherwise.
    """
    try:
        for line in _lines(stream):
            try:
                frame = decode_request(line)
            except ProtocolError as exc:
                writer.write(Error(id=_salvage_id(line), code="BAD_REQUEST", message=str(exc)))
                continue
            match frame:
                case Ping(id=ping_id):
                    writer.write(Pong(id=ping_id))
                case Cancel(id=cancel_id):
                    inbox.cancel(cancel_id)
                case Shutdown():
                    return
                case _:
                    inbox.put(frame)
    except OSError:
        return  # the frame pipe is gone: nobody is listening any more
    finally:
        inbox.close()


def _lines(stream: BinaryIO) -> Iterator[bytes]:
    """Lines without their newline; an over-long line is yielded cut (and then refused)."""
    while line := stream.readline(MAX_LINE_BYTES + 1):
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while (rest := stream.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                pass  # drop the remainder of the over-long line
        yield line.rstrip(b"\n")


def _salvage_id(line: bytes) -> int:
    if len(line) > MAX_LINE_BYTES:
        return 0
    try:
        value = json.loads(line)
    except ValueError:
        return 0
    request_id = value.get("id") if isinstance(value, dict) else None
    return request_id if isinstance(request_id, int) and not isinstance(request_id, bool) else 0
