"""A bare HTTP/1.1 client on asyncio streams: what a request costs without a client library.

httpx spends more CPU per request than the daemon's HTTP stack does (the ``GET
/health`` rows show it), and on two shared cores that cost is in every figure.
The rows that issue 14's targets are about go through this client instead: one
keep-alive connection, one request at a time, the body encoded and decoded
with msgspec, and nothing else. It understands only what the daemon sends
(a ``Content-Length`` body); anything else is a :class:`BenchmarkError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from benchmarks.daemon import Daemon
from benchmarks.errors import BenchmarkError

REQUEST_TIMEOUT = 30.0  # any single request; the daemon's own limits end executions sooner


class BareClient:
    """One connection to the daemon's API. Use :func:`open_bare`."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, token: str
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._head = (
            "Host: 127.0.0.1\r\n"
            f"Authorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\n"
        )

    async def call(self, method: str, path: str, body: object, status: int) -> Any:
        """``method /api/v1{path}`` with ``body`` as JSON; the decoded answer, if ``status``."""
        payload = b"" if body is None else msgspec.json.encode(body)
        head = (
            f"{method} /api/v1{path} HTTP/1.1\r\n{self._head}Content-Length: {len(payload)}\r\n\r\n"
        )
        self._writer.write(head.encode() + payload)
        async with asyncio.timeout(REQUEST_TIMEOUT):
            code, answer = await self._read_response()
        if code != status:
            raise BenchmarkError(
                f"{method} {path} answered {code} (expected {status}): {answer[:500]!r}"
            )
        return msgspec.json.decode(answer)

    async def _read_response(self) -> tuple[int, bytes]:
        status_line = await self._reader.readline()
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or parts[0] != b"HTTP/1.1":
            raise BenchmarkError(f"not an HTTP/1.1 response: {status_line!r}")
        length = None
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise BenchmarkError(f"a response without Content-Length: {status_line!r}")
        return int(parts[1]), await self._reader.readexactly(length)

    async def aclose(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()


@contextlib.asynccontextmanager
async def open_bare(daemon: Daemon) -> AsyncIterator[BareClient]:
    """A connected client, closed however the block ends."""
    reader, writer = await asyncio.open_connection("127.0.0.1", daemon.port)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client = BareClient(reader, writer, daemon.token)
    try:
        yield client
    finally:
        await client.aclose()
