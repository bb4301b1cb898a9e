"""The worker's frame writer on a real pipe: console batches, their order, size and timing."""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Iterator

import pytest

from vmctl.protocol import (
    MAX_LINE_BYTES,
    Console,
    ConsoleBatch,
    Ok,
    Pong,
    Reply,
    System,
    decode_reply,
)
from vmctl.worker.channel import BATCH_CHARS, FrameWriter

from .jsworker import TIMEOUT

# Longer than any test here: lines leave by size or before another frame, never by time.
NEVER = 3600.0


class PipeReader:
    """The supervisor's end of a pipe: its frames, read on a thread, each read bounded."""

    def __init__(self, fd: int) -> None:
        self._file = os.fdopen(fd, "rb")
        self._frames: queue.Queue[tuple[bytes, Reply] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._file:
            self._frames.put((line, decode_reply(line)))
        self._frames.put(None)

    def next_line(self, timeout: float = TIMEOUT) -> tuple[bytes, Reply]:
        try:
            item = self._frames.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no frame within {timeout} s") from None
        assert item is not None, "the writer's end was closed"
        return item

    def next_frame(self, timeout: float = TIMEOUT) -> Reply:
        return self.next_line(timeout)[1]

    def close(self) -> None:
        self._thread.join(TIMEOUT)
        self._file.close()


@contextlib.contextmanager
def open_writer(flush_delay: float) -> Iterator[tuple[FrameWriter, PipeReader]]:
    """A writer on a pipe and a reader of its other end; both closed at the end."""
    read_fd, write_fd = os.pipe()
    reader = PipeReader(read_fd)
    writer = FrameWriter(write_fd, flush_delay)
    try:
        yield writer, reader
    finally:
        writer.close()
        os.close(write_fd)
        reader.close()


def lines_of(frames: list[Reply]) -> list[str]:
    texts: list[str] = []
    for frame in frames:
        assert isinstance(frame, ConsoleBatch), frame
        texts += [text for _, text in frame.lines]
    return texts


def test_the_first_line_leaves_at_once_and_the_next_ones_before_the_next_frame() -> None:
    with open_writer(NEVER) as (writer, reader):
        writer.console(1, "log", "a")
        assert reader.next_frame() == ConsoleBatch(id=1, lines=(("log", "a"),))
        writer.console(1, "warn", "b")
        writer.console(1, "info", "c")
        writer.write(System(id=1, level="info", message="note"))
        writer.console(1, "error", "d")
        writer.write(Ok(id=1, cpu_ms=0.5))
        assert [reader.next_frame() for _ in range(4)] == [
            ConsoleBatch(id=1, lines=(("warn", "b"), ("info", "c"))),
            System(id=1, level="info", message="note"),
            ConsoleBatch(id=1, lines=(("error", "d"),)),
            Ok(id=1, cpu_ms=0.5),
        ]


def test_held_lines_leave_on_their_own_when_nothing_else_is_written() -> None:
    # The first line leaves at once; the next are held until flush_delay after it, then
    # sent by the writer's thread. The reader waits for them under a generous bound only.
    with open_writer(flush_delay=0.05) as (writer, reader):
        writer.console(7, "log", "first")
        writer.console(7, "log", "second")
        writer.console(7, "log", "third")
        texts: list[str] = []
        while len(texts) < 3:
            texts += lines_of([reader.next_frame()])
        assert texts == ["first", "second", "third"]
        writer.console(7, "log", "later")  # held or not, it leaves without another frame
        assert reader.next_frame() == ConsoleBatch(id=7, lines=(("log", "later"),))


def test_a_full_batch_leaves_at_once_and_no_batch_outgrows_two_batch_sizes() -> None:
    text = "x" * 1000
    count = 10 * BATCH_CHARS // len(text)
    with open_writer(NEVER) as (writer, reader):
        for _ in range(count):
            writer.console(1, "log", text)
        full = [reader.next_frame() for _ in range(9)]  # ten filled up: sent already
        writer.write(Ok(id=1, cpu_ms=0.0))
        rest: list[Reply] = []
        while not isinstance(frame := reader.next_frame(), Ok):
            rest.append(frame)
    batches = full + rest
    assert lines_of(batches) == [text] * count
    for batch in batches:
        assert isinstance(batch, ConsoleBatch)
        assert sum(len(text) for _, text in batch.lines) < 2 * BATCH_CHARS


def test_a_line_longer_than_a_batch_goes_alone_after_the_held_lines() -> None:
    long = "y" * (BATCH_CHARS + 1)
    with open_writer(NEVER) as (writer, reader):
        writer.console(1, "log", "before")
        writer.console(1, "info", long)
        writer.console(1, "log", "after")
        writer.write(Ok(id=1, cpu_ms=0.0))
        assert [reader.next_frame() for _ in range(4)] == [
            ConsoleBatch(id=1, lines=(("log", "before"),)),
            Console(id=1, level="info", text=long),
            ConsoleBatch(id=1, lines=(("log", "after"),)),
            Ok(id=1, cpu_ms=0.0),
        ]


@pytest.mark.parametrize("length", [BATCH_CHARS, 2 * MAX_LINE_BYTES // 6])
def test_escaped_lines_never_make_a_frame_longer_than_the_cap(length: int) -> None:
    # A control character takes 6 bytes of JSON (\u0001): the worst case for every size.
    text = "\x01" * length
    with open_writer(NEVER) as (writer, reader):
        for _ in range(3):
            writer.console(1, "log", text)
        writer.write(Ok(id=1, cpu_ms=0.0))
        sizes: list[int] = []
        texts: list[str] = []
        while True:
            line, frame = reader.next_line()
            sizes.append(len(line))
            match frame:
                case ConsoleBatch():
                    texts += [text for _, text in frame.lines]
                case Console():
                    texts.append(frame.text)
                case _:
                    break
    assert max(sizes) <= MAX_LINE_BYTES
    assert len(texts) == 3
    if length <= BATCH_CHARS:
        assert texts == [text] * 3  # batched whole
    else:
        assert all(t.startswith("\x01") and t.endswith("more characters]") for t in texts)


def test_lines_of_another_request_start_a_batch_of_their_own() -> None:
    with open_writer(NEVER) as (writer, reader):
        for request_id, text in [(1, "a"), (1, "b"), (2, "c")]:
            writer.console(request_id, "log", text)
        writer.write(Pong(id=5))
        assert [reader.next_frame() for _ in range(4)] == [
            ConsoleBatch(id=1, lines=(("log", "a"),)),
            ConsoleBatch(id=1, lines=(("log", "b"),)),
            ConsoleBatch(id=2, lines=(("log", "c"),)),
            Pong(id=5),
        ]


def test_a_broken_pipe_is_raised_to_the_next_writer_whichever_thread_saw_it() -> None:
    read_fd, write_fd = os.pipe()
    writer = FrameWriter(write_fd, flush_delay=0.05)
    try:
        writer.console(1, "log", "sent at once, into the pipe's buffer")
        os.close(read_fd)
        writer.console(1, "log", "held: the writer's thread finds the pipe broken")
        with pytest.raises(OSError):
            writer.write(Ok(id=1, cpu_ms=0.0))
        with pytest.raises(OSError):
            writer.console(2, "log", "nor this")
    finally:
        writer.close()
        os.close(write_fd)
