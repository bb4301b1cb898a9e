"""What a worker writes, made bounded: stdout split into lines, stderr kept as a tail.

Both are fed from the loop's pipe callbacks as the bytes arrive, so reading
never waits on anyone and neither buffer grows past a fixed size.
"""

from __future__ import annotations

from typing import BinaryIO

from vmctl.protocol import MAX_LINE_BYTES

STDERR_TAIL_BYTES = 8 * 1024
# A worker spewing to stderr must not fill the disk: past this, the log says
# so once and only the in-memory tail keeps following.
STDERR_LOG_MAX_BYTES = 16 * 1024 * 1024


class LineBuffer:
    """Splits a byte stream into lines; the unfinished line is held up to the protocol maximum."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """The lines completed by ``data`` (without their newline), in order."""
        start = len(self._buffer)
        self._buffer += data
        lines = []
        # Search only the new bytes: a long unfinished line is not scanned again.
        end = self._buffer.find(b"\n", start)
        begin = 0
        while end >= 0:
            lines.append(bytes(self._buffer[begin:end]))
            begin = end + 1
            end = self._buffer.find(b"\n", begin)
        del self._buffer[:begin]
        return lines

    @property
    def overflowed(self) -> bool:
        """The unfinished line is already longer than any valid frame."""
        return len(self._buffer) > MAX_LINE_BYTES

    def clear(self) -> None:
        self._buffer.clear()


class StderrSink:
    """The last :data:`STDERR_TAIL_BYTES` of stderr in memory, and all of it (capped) in a log."""

    def __init__(self, log: BinaryIO | None) -> None:
        self._tail = bytearray()
        self._log = log
        self._logged = 0

    def write(self, data: bytes) -> None:
        self._tail += data
        del self._tail[:-STDERR_TAIL_BYTES]
        if self._log is not None:
            self._write_log(data)

    def tail(self) -> str:
        return self._tail.decode(errors="replace")

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def _write_log(self, data: bytes) -> None:
        assert self._log is not None
        room = STDERR_LOG_MAX_BYTES - self._logged
        if room <= 0:
            return
        self._log.write(data[:room])
        self._logged += len(data)
        if self._logged >= STDERR_LOG_MAX_BYTES:
            self._log.write(b"\n[vmctl: stderr log truncated; later output is not logged]\n")
