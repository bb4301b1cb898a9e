"""A real ``python -m vmctl.worker`` process, spoken to through the protocol, always reaped."""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from vmctl.protocol import (
    Console,
    ConsoleBatch,
    Error,
    ExecLimits,
    ExecRepl,
    Frame,
    Hello,
    JsException,
    Ok,
    Reply,
    RunFile,
    RunStartup,
    RuntimeOptions,
    Value,
    decode_reply,
    encode,
)

# Every wait in these tests is bounded by this unless a test says otherwise.
TIMEOUT = 15.0

LIMITS = ExecLimits(cpu_ms=5000, wall_ms=10000, mem_mb=64)


class WorkerProcess:
    """One worker in ``worktree``. Frames are read on a thread; every read has a timeout."""

    def __init__(self, worktree: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vmctl.worker"],
            cwd=worktree,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self._stderr = bytearray()
        self._threads = [
            threading.Thread(target=self._read_frames, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        self._next_id = 0

    def _read_frames(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        while chunk := os.read(self.proc.stderr.fileno(), 65536):
            self._stderr += chunk

    @property
    def stderr(self) -> str:
        return self._stderr.decode(errors="replace")

    def wait_hello(self) -> Hello:
        frame = self.next_frame()
        assert isinstance(frame, Hello), frame
        return frame

    def send(self, frame: Frame) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(encode(frame))
        self.proc.stdin.flush()

    def send_raw(self, line: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line)
        self.proc.stdin.flush()

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def next_frame(self, timeout: float = TIMEOUT) -> Reply:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no frame within {timeout}s; stderr:\n{self.stderr}") from None
        if line is None:
            self._lines.put(None)  # stay at end of stream for later reads
            raise AssertionError(f"the worker closed its stdout; stderr:\n{self.stderr}")
        return _decoded(decode_reply(line))

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def wait_terminal(self, request_id: int, timeout: float = TIMEOUT) -> list[Reply]:
        """Frames up to and including the terminal frame of ``request_id``, each console
        batch read as the Console frames it stands for (see :func:`unbatched`)."""
        frames = self.wait_terminal_frames(request_id, timeout)
        return [each for frame in frames for each in unbatched(frame)]

    def wait_terminal_frames(self, request_id: int, timeout: float = TIMEOUT) -> list[Reply]:
        """Frames up to and including the terminal frame of ``request_id``, as they came."""
        frames: list[Reply] = []
        while True:
            frame = self.next_frame(timeout)
            frames.append(frame)
            if isinstance(frame, Ok | Error) and frame.id == request_id:
                return frames

    def repl(self, code: str, limits: ExecLimits = LIMITS, **runtime: Any) -> list[Reply]:
        request_id = self.new_id()
        self.send(
            ExecRepl(id=request_id, code=code, limits=limits, runtime=RuntimeOptions(**runtime))
        )
        return self.wait_terminal(request_id)

    def run_file(self, path: str, limits: ExecLimits = LIMITS, **fields: Any) -> list[Reply]:
        request_id = self.new_id()
        runtime = RuntimeOptions(**fields.pop("runtime", {}))
        self.send(RunFile(id=request_id, path=path, limits=limits, runtime=runtime, **fields))
        return self.wait_terminal(request_id)

    def startup(self, limits: ExecLimits = LIMITS, **fields: Any) -> list[Reply]:
        request_id = self.new_id()
        self.send(RunStartup(id=request_id, limits=limits, **fields))
        return self.wait_terminal(request_id)

    def wait_exited(self, timeout: float = TIMEOUT) -> int:
        return self.proc.wait(timeout)

    def close(self) -> None:
        """Kill (if still running), reap, and close every pipe."""
        if self.proc.returncode is None:
            self.proc.kill()
        self.proc.wait(TIMEOUT)
        for thread in self._threads:
            thread.join(TIMEOUT)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                with contextlib.suppress(BrokenPipeError):  # unflushed input to a dead worker
                    pipe.close()


@contextmanager
def open_worker(worktree: Path) -> Iterator[WorkerProcess]:
    """A started worker whose Hello has been read; killed and reaped on exit."""
    worker = WorkerProcess(worktree)
    try:
        worker.wait_hello()
        yield worker
    finally:
        worker.close()


# -- reading the frames of one request ---------------------------------------------------


def _decoded(frame: Reply) -> Reply:
    """A Value frame with its ``json`` (raw JSON text on the wire) decoded, for comparisons."""
    if isinstance(frame, Value) and isinstance(frame.json, msgspec.Raw):
        return msgspec.structs.replace(frame, json=msgspec.json.decode(frame.json))
    return frame


def unbatched(frame: Reply) -> list[Reply]:
    """A ConsoleBatch as the Console frames of its lines, in order; any other frame alone.

    What the supervisor records is one console event per line either way, so most tests
    read the lines one frame each; those about batching read the frames as they came
    (:meth:`WorkerProcess.wait_terminal_frames`, :meth:`WorkerProcess.next_frame`).
    """
    if isinstance(frame, ConsoleBatch):
        return [Console(id=frame.id, level=level, text=text) for level, text in frame.lines]
    return [frame]


def kinds(frames: list[Reply]) -> list[str]:
    return [type(frame).__name__ for frame in frames]


class SeenValue(NamedTuple):
    """A Value frame as a test reads it: its ``json`` decoded (on the wire it is raw text)."""

    id: int
    value_type: str
    preview: str
    json: Any


def value_of(frames: list[Reply]) -> SeenValue:
    assert kinds(frames)[-2:] == ["Value", "Ok"], frames
    value = frames[-2]
    assert isinstance(value, Value)
    return SeenValue(value.id, value.value_type, value.preview, value.json)


def error_of(frames: list[Reply]) -> Error:
    error = frames[-1]
    assert isinstance(error, Error), frames
    return error


def exception_of(frames: list[Reply]) -> JsException:
    assert kinds(frames)[-2:] == ["JsException", "Error"], frames
    exception = frames[-2]
    assert isinstance(exception, JsException)
    assert error_of(frames).code == "JS_ERROR"
    return exception
