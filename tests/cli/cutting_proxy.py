"""A TCP proxy in front of a real daemon that drops event streams part-way.

Not a stand-in for the daemon: every byte comes from it. The proxy only cuts the
connection of an answer that is an event stream (a dropped connection, as a flaky
network or a restarting proxy gives one): the n-th stream once it has passed
``cuts[n]`` bytes of the answer, head included (0: before any byte of it); streams
past the list pass whole. It keeps every request's head, so a test can read the
``Last-Event-ID`` the client sent back.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator, Sequence

STREAM_MARK = b"text/event-stream"
JOIN_TIMEOUT = 10.0


class CuttingProxy:
    def __init__(self, target_port: int, cuts: Sequence[int]) -> None:
        self._target = ("127.0.0.1", target_port)
        self._cuts = list(cuts)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.heads: list[bytes] = []  # every request's first bytes, in order
        self.cut = 0  # how many streams were dropped
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._start(self._accept)

    def _start(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed: the proxy is stopping
            try:
                upstream = socket.create_connection(self._target)
            except OSError:
                client.close()  # the daemon is gone: so is this connection
                continue
            with self._lock:
                self._sockets += [client, upstream]
            self._start(self._requests, client, upstream)
            self._start(self._answers, upstream, client)

    def _requests(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if data[:4] in (b"GET ", b"POST"):
                    with self._lock:
                        self.heads.append(data.split(b"\r\n\r\n", 1)[0])
                sink.sendall(data)
        _close(source, sink)

    def _answers(self, source: socket.socket, sink: socket.socket) -> None:
        cut_after: int | None = None  # once an event stream that is to be cut started
        passed = 0
        with contextlib.suppress(OSError):
            while data := source.recv(4096):
                if cut_after is None and STREAM_MARK in data:
                    cut_after = self._next_cut()
                if cut_after is not None:
                    room = cut_after - passed
                    if len(data) >= room:
                        sink.sendall(data[:room])
                        break  # drop the connection mid-stream
                    passed += len(data)
                sink.sendall(data)
        _close(source, sink)

    def _next_cut(self) -> int | None:
        with self._lock:
            if not self._cuts:
                return None
            self.cut += 1
            return self._cuts.pop(0)

    def close(self) -> None:
        _close(self._listener)  # the shutdown is what wakes a thread blocked in accept()
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for sock in sockets:
            _close(sock)
        for thread in threads:
            thread.join(JOIN_TIMEOUT)

    def last_event_ids(self) -> list[str]:
        """The Last-Event-ID of every stream request, in order ("" when it sent none)."""
        found = []
        with self._lock:
            heads = list(self.heads)
        for head in heads:
            if b"/stream" not in head.split(b"\r\n", 1)[0]:
                continue
            values = [
                line.split(b":", 1)[1].strip().decode()
                for line in head.split(b"\r\n")[1:]
                if line.lower().startswith(b"last-event-id:")
            ]
            found.append(values[0] if values else "")
        return found


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()


@contextlib.contextmanager
def cutting_proxy(target_port: int, cuts: Sequence[int]) -> Iterator[CuttingProxy]:
    proxy = CuttingProxy(target_port, cuts)
    try:
        yield proxy
    finally:
        proxy.close()
