"""The worker's side of the line protocol: frames out, requests in, cancels across threads.

:class:`FrameWriter` writes whole frames to the private frame fd under one lock (the
JavaScript thread streams console lines while the reader thread answers pings). It sends
console lines in :class:`ConsoleBatch` frames: a lone line at once, a flood about one frame
per :data:`FLUSH_DELAY` (or per :data:`BATCH_CHARS`) instead of one write per line; held
lines are sent by the writer's own ``vmctl-console`` thread when nothing else sends them
first. :func:`read_requests` runs on the reader thread: it answers :class:`Ping` itself,
turns :class:`Cancel` into a flag the interrupt handler sees, and hands requests to the main
thread through the :class:`Inbox`. :class:`Shutdown` or end of input closes the inbox.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections.abc import Iterator
from typing import BinaryIO

import msgspec

from vmctl.protocol import (
    MAX_LINE_BYTES,
    Cancel,
    Console,
    ConsoleBatch,
    ConsoleLevel,
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


# A console line leaves at once when no batch left in the last FLUSH_DELAY: a lone line waits
# for nothing. Otherwise it is held until the held lines add up to BATCH_CHARS (a line counts
# its characters and _LINE_CHARS for its place in the batch), until FLUSH_DELAY after the last
# batch left, or until another frame is written, whichever comes first: a flood leaves in a
# batch per millisecond or per 64 KiB. A line longer than BATCH_CHARS goes alone, in a Console
# frame clipped like any other frame; so a batch is at most 2 * BATCH_CHARS characters, under
# 1 MiB of JSON even when every character is escaped, far from MAX_LINE_BYTES.
BATCH_CHARS = 64 * 1024
FLUSH_DELAY = 0.001  # seconds
_LINE_CHARS = 16  # ["log","..."], between the lines of a batch


class FrameWriter:
    """Writes frames, one line each, to the frame fd; safe from any thread.

    Every frame leaves after the console lines held before it, so the supervisor reads
    frames in the order they were written. :meth:`close` stops the ``vmctl-console`` thread.
    """

    def __init__(self, fd: int, flush_delay: float = FLUSH_DELAY) -> None:
        self._fd = fd
        self._flush_delay = flush_delay
        # Held while a frame is written and while the held lines change; the condition wakes
        # the vmctl-console thread when a first line is held, or the writer closes.
        self._lock = threading.Lock()
        self._held = threading.Condition(self._lock)
        self._lines: list[tuple[ConsoleLevel, str]] = []
        self._lines_id = 0  # the request the held lines belong to
        self._chars = 0
        self._hold_until = 0.0  # time.monotonic() when the last batch left, plus flush_delay
        self._flusher: threading.Thread | None = None
        self._closed = False
        self._broken: OSError | None = None  # a write failed: the supervisor's end is gone

    def write(self, *frames: Frame) -> None:
        """Write frames whole, after the lines held, in one write (a request's value and
        terminal frame wake the supervisor once). Raises OSError when the supervisor's end
        is gone."""
        data = b"".join(map(_fit, frames))
        with self._lock:
            self._send(self._take_lines() + data)

    def console(self, request_id: int, level: ConsoleLevel, text: str) -> None:
        """Send one console line of ``request_id``: at once after a quiet spell, else with
        the lines around it within ``flush_delay``. Raises OSError when the supervisor's end
        is gone."""
        if len(text) > BATCH_CHARS:
            self.write(Console(id=request_id, level=level, text=text))
            return
        with self._lock:
            if self._lines and request_id != self._lines_id:
                self._send_lines()  # another request's: they go first, in their own batch
            self._lines_id = request_id
            self._lines.append((level, text))
            self._chars += len(text) + _LINE_CHARS
            first = len(self._lines) == 1
            if self._chars >= BATCH_CHARS or (first and time.monotonic() >= self._hold_until):
                self._send_lines()
            elif first:
                self._start_flusher()
                self._held.notify()  # the thread sends it at _hold_until

    def close(self) -> None:
        """Stop the vmctl-console thread (lines still held are dropped: a request's terminal
        frame sends them, so none is held between requests)."""
        with self._lock:
            self._closed = True
            self._held.notify()
        if self._flusher is not None:
            self._flusher.join()

    def _start_flusher(self) -> None:
        self._check_unbroken()
        if self._flusher is None or not self._flusher.is_alive():  # a fork keeps no thread
            self._flusher = threading.Thread(
                target=self._flush_when_due, name="vmctl-console", daemon=True
            )
            self._flusher.start()

    def _flush_when_due(self) -> None:
        """The vmctl-console thread: send held lines once they are due, however long the
        script runs without writing another frame."""
        with self._lock:
            while not self._closed:
                if not self._lines:
                    self._held.wait()
                elif (delay := self._hold_until - time.monotonic()) > 0:
                    self._held.wait(delay)
                else:
                    try:
                        self._send_lines()
                    except OSError:
                        return  # the next console line or frame raises it on its thread

    def _send_lines(self) -> None:
        """Write the held lines as one ConsoleBatch (the lock is held)."""
        if self._lines:
            self._send(self._take_lines())

    def _take_lines(self) -> bytes:
        """The held lines as one encoded ConsoleBatch, no longer held (the lock is held)."""
        if not self._lines:
            return b""
        batch = ConsoleBatch(id=self._lines_id, lines=tuple(self._lines))
        self._lines.clear()
        self._chars = 0
        self._hold_until = time.monotonic() + self._flush_delay
        return encode(batch)

    def _send(self, line: bytes) -> None:
        """Write one encoded frame whole (the lock is held)."""
        self._check_unbroken()
        view = memoryview(line)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            self._broken = exc
            raise

    def _check_unbroken(self) -> None:
        """Raise OSError if a write failed before, on whichever thread it was."""
        if self._broken is not None:
            raise OSError(self._broken.errno, f"the frame pipe failed: {self._broken.strerror}")


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
