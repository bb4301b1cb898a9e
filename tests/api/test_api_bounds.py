"""What a client without the token can cost the daemon: bounded, and given back.

Each attack runs against a daemon of its own module, whose resident memory is read
before and after: it must stay within ``RSS_MARGIN`` of where it was, and the daemon
must answer afterwards. (config.py: MAX_CONNECTIONS, MAX_HEAD_BYTES, HEAD_TIMEOUT,
BODY_TIMEOUT.)
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from real_daemon import Daemon, error_code, running_daemon, session_body, wait_until
from vmctl.supervisor.config import BODY_TIMEOUT, HEAD_TIMEOUT, MAX_CONNECTIONS, MAX_HEAD_BYTES

MIB = 1024 * 1024
RSS_MARGIN = 4 * MIB
# How late after HEAD_TIMEOUT a cut may come on a loaded machine.
CUT_GRACE = 3.0
HALF_SENT = 800
PARTIAL_HEAD = b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
HALF_SENT_BODIES = 300
# Descriptors the daemon may open meanwhile for its own reasons (the store, a log).
FD_MARGIN = 10


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A daemon for these attacks alone, so that nothing else moves its memory."""
    with running_daemon(tmp_path_factory.mktemp("home")) as running:
        _warm_up(running)
        yield running


def _warm_up(daemon: Daemon) -> None:
    # Every path an attack takes runs once first (refusals, timers, the 503), so the
    # memory compared is not the first use of a code path or of an allocator's arena.
    with daemon.client() as client:
        client.get("/health", headers={"X-Big": "a" * (MAX_HEAD_BYTES + 1)})
    with open_connections(daemon, MAX_CONNECTIONS + 10) as socks:
        wait_all_closed(socks[MAX_CONNECTIONS:], 5.0)
    assert answers(daemon)


def rss(daemon: Daemon) -> int:
    rss_bytes: int = psutil.Process(daemon.proc.pid).memory_info().rss
    return rss_bytes


def answers(daemon: Daemon) -> bool:
    with daemon.client() as client:
        return client.get("/templates").status_code == 200


@contextlib.contextmanager
def open_connections(daemon: Daemon, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections that each sent the start of a request head, closed at the end."""
    with contextlib.ExitStack() as stack:
        socks = []
        for _ in range(count):
            sock = stack.enter_context(socket.create_connection(("127.0.0.1", daemon.port), 10))
            with contextlib.suppress(ConnectionError):
                sock.sendall(PARTIAL_HEAD)
            socks.append(sock)
        yield socks


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """What the daemon sent until it closed ``sock``; fails if it has not within ``timeout``."""
    deadline = time.monotonic() + timeout
    received = b""
    while True:
        readable, _, _ = select.select([sock], [], [], max(0.0, deadline - time.monotonic()))
        if not readable:
            raise AssertionError(f"the daemon kept the connection open for {timeout}s")
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk


def wait_all_closed(socks: list[socket.socket], timeout: float) -> list[bytes]:
    deadline = time.monotonic() + timeout
    return [read_until_closed(sock, max(0.0, deadline - time.monotonic())) for sock in socks]


def test_an_endless_header_line_is_cut_off_at_once(target: Daemon) -> None:
    before = rss(target)
    sent = 0
    with socket.create_connection(("127.0.0.1", target.port), 10) as sock:
        sock.sendall(PARTIAL_HEAD + b"X-Endless: ")
        chunk = b"a" * 65536
        with contextlib.suppress(ConnectionError):  # reset once refused: what we wait for
            while sent < 256 * MIB:
                sock.sendall(chunk)
                sent += len(chunk)
    # What was sent after the refusal went into the kernel's socket buffers, not the daemon.
    assert sent < 32 * MIB
    assert rss(target) - before < RSS_MARGIN
    assert answers(target)


def test_a_head_over_the_limit_is_refused_in_the_envelope(target: Daemon) -> None:
    with target.client() as client:
        just_under = client.get("/health", headers={"X-Big": "a" * (MAX_HEAD_BYTES // 2)})
        assert just_under.status_code == 200
        response = client.get("/health", headers={"X-Big": "a" * MAX_HEAD_BYTES})
    assert response.status_code == 400 and error_code(response) == "INVALID_REQUEST"
    assert response.json()["error"]["details"] == {"max_head_bytes": MAX_HEAD_BYTES}


def test_half_sent_requests_are_capped_then_cut_off(target: Daemon) -> None:
    before = rss(target)
    started = time.monotonic()
    with open_connections(target, HALF_SENT) as socks:
        # Past the cap, each is answered 503 and closed at once, long before its head's
        # time is up. (A reset may overtake the answer: the daemon closes unread.)
        over = wait_all_closed(socks[MAX_CONNECTIONS:], HEAD_TIMEOUT / 2)
        assert all(answer.startswith(b"HTTP/1.1 503 ") for answer in over if answer)
        assert any(b'"CAPACITY_EXCEEDED"' in answer for answer in over)
        during = rss(target)
        # The others, whose heads never end, when their time is up.
        held = wait_all_closed(socks[:MAX_CONNECTIONS], HEAD_TIMEOUT + CUT_GRACE)
        assert set(held) == {b""}
        assert time.monotonic() - started >= HEAD_TIMEOUT - 0.5
    assert during - before < RSS_MARGIN
    assert rss(target) - before < RSS_MARGIN
    assert answers(target)


def test_a_trickling_client_is_cut_off(target: Daemon) -> None:
    before = rss(target)
    with socket.create_connection(("127.0.0.1", target.port), 10) as sock:
        started = time.monotonic()
        for byte in PARTIAL_HEAD + b"X-Slow: " + b"a" * 1000:
            sock.sendall(bytes([byte]))
            # One byte every 0.2 s, until the daemon closes the connection.
            if select.select([sock], [], [], 0.2)[0]:
                break
        assert read_until_closed(sock, CUT_GRACE) == b""
        took = time.monotonic() - started
    assert HEAD_TIMEOUT - 0.5 <= took <= HEAD_TIMEOUT + CUT_GRACE
    assert rss(target) - before < RSS_MARGIN
    assert answers(target)


def test_an_idle_connection_is_closed_and_a_keep_alive_one_too(target: Daemon) -> None:
    with (
        socket.create_connection(("127.0.0.1", target.port), 10) as idle,
        socket.create_connection(("127.0.0.1", target.port), 10) as kept,
    ):
        kept.sendall(PARTIAL_HEAD + b"\r\n")
        nothing, one_answer = wait_all_closed([idle, kept], HEAD_TIMEOUT + CUT_GRACE)
    assert nothing == b""
    assert one_answer.startswith(b"HTTP/1.1 200 ") and one_answer.endswith(b'{"status":"ok"}')


def test_the_head_clock_never_cuts_a_request_being_served(
    daemon: Daemon, make_template: Callable[..., dict[str, Any]], worktree: Path
) -> None:
    # The "hangs" engine never answers: the daemon ends the execution at wall_ms, after
    # the head clock would have run out if it counted a request being served.
    wall_ms = int((HEAD_TIMEOUT + 1.5) * 1000)
    template = make_template("hangs", wall_ms=wall_ms, cpu_ms=wall_ms)
    with daemon.client() as client:
        body = {"template_id": template["id"], "workspace_id": "w", "base_commit_oid": "c"}
        session = client.post("/sessions", json={**body, "worktree_path": str(worktree)}).json()
        response = client.post(
            "/executions/repl",
            json={"session_id": session["id"], "input": "1"},
            timeout=httpx.Timeout(wall_ms / 1000 + 30),
        )
    assert response.status_code == 422 and error_code(response) == "EXECUTION_TIMEOUT"


def _post_head(daemon: Daemon, path: str, length: int, *extra: str) -> bytes:
    lines = [
        f"POST /api/v1{path} HTTP/1.1",
        "Host: 127.0.0.1",
        f"Authorization: Bearer {daemon.token}",
        "Content-Type: application/json",
        f"Content-Length: {length}",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_half_sent_bodies_are_answered_then_closed_and_their_fds_given_back(
    target: Daemon,
) -> None:
    # Authenticated, so each reaches a handler that waits for the rest of its body.
    daemon = psutil.Process(target.proc.pid)
    fds_before = daemon.num_fds()
    half_sent = _post_head(target, "/templates", 100) + b"{"
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        socks = []
        for _ in range(HALF_SENT_BODIES):
            sock = stack.enter_context(socket.create_connection(("127.0.0.1", target.port), 10))
            with contextlib.suppress(ConnectionError):  # past the cap: refused at once
                sock.sendall(half_sent)
            socks.append(sock)
        # Held: a descriptor each (at the cap), until their time is up.
        wait_until(lambda: daemon.num_fds() >= fds_before + MAX_CONNECTIONS - FD_MARGIN)
        replies = wait_all_closed(socks, BODY_TIMEOUT + CUT_GRACE)
        took = time.monotonic() - started
    timed_out = [reply for reply in replies if reply.startswith(b"HTTP/1.1 400 ")]
    assert len(timed_out) >= MAX_CONNECTIONS - FD_MARGIN
    assert {reply[:13] for reply in replies} <= {b"HTTP/1.1 400 ", b"HTTP/1.1 503 ", b""}
    for reply in timed_out:
        head, _, body = reply.partition(b"\r\n\r\n")
        assert b"content-type: application/json" in head
        assert json.loads(body)["error"] == {
            "code": "INVALID_REQUEST",
            "message": f"The request body did not arrive within {BODY_TIMEOUT:g} s of its head",
            "details": {"body_timeout_s": BODY_TIMEOUT},
        }
    assert BODY_TIMEOUT - 0.5 <= took <= BODY_TIMEOUT + CUT_GRACE
    wait_until(lambda: daemon.num_fds() <= fds_before + FD_MARGIN)
    assert answers(target)


MALFORMED_REQUESTS = {
    "not http": b"\x00\x01\x02 hello\r\n\r\n",
    "bad method": b"G@T / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    "unknown version": b"GET / HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n",
    "http/2 preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "space before colon": b"GET / HTTP/1.1\r\nHost : 127.0.0.1\r\n\r\n",
    "control byte in a value": b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\x01b\r\n\r\n",
    "folded header": b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\r\n b\r\n\r\n",
    "non-ascii url": b"GET /api/v1/h\xc3\xa9alth HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    "CONNECT": b"CONNECT 127.0.0.1:80 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    "length not a number": b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: x\r\n\r\n",
    "two lengths": (
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"
    ),
    "length and chunked": (
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "bad chunk size": (
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    ),
    "bad second request": b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nBAD\x00\r\n\r\n",
}


@pytest.mark.parametrize("raw", MALFORMED_REQUESTS.values(), ids=MALFORMED_REQUESTS.keys())
def test_malformed_http_is_answered_in_the_envelope(target: Daemon, raw: bytes) -> None:
    with socket.create_connection(("127.0.0.1", target.port), 10) as sock:
        sock.sendall(raw)
        answer = read_until_closed(sock, HEAD_TIMEOUT)
    # A pipelined good request before the bad one is answered first.
    refusal = answer[answer.rfind(b"HTTP/1.1 ") :]
    head, _, body = refusal.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") and b"content-type: application/json" in head
    assert json.loads(body)["error"]["code"] == "INVALID_REQUEST"


def _read_until(sock: socket.socket, timeout: float, done: Callable[[bytes], bool]) -> bytes:
    """Bytes from ``sock`` until they are ``done``; fails if it is closed first, or late."""
    deadline = time.monotonic() + timeout
    received = b""
    while not done(received):
        if not select.select([sock], [], [], max(0.0, deadline - time.monotonic()))[0]:
            raise AssertionError(f"not done within {timeout}s; got {received[-300:]!r}")
        chunk = sock.recv(65536)
        assert chunk, f"the daemon closed the connection; got {received[-300:]!r}"
        received += chunk
    return received


def _whole_answer(received: bytes) -> bool:
    head, ended, body = received.partition(b"\r\n\r\n")
    length = head.lower().partition(b"content-length: ")[2].partition(b"\r\n")[0]
    return bool(ended) and len(body) >= int(length)


def _read_answer(sock: socket.socket, timeout: float) -> tuple[bytes, Any]:
    """One answer with a Content-Length: its head and its JSON body."""
    head, _, body = _read_until(sock, timeout, _whole_answer).partition(b"\r\n\r\n")
    return head, json.loads(body)


def _send_body_after_continue(sock: socket.socket, head: bytes, body: bytes) -> None:
    # The head alone first, the body once the handler asks for it: the daemon has
    # read a head whose body is missing, so the body's clock runs until it comes.
    sock.sendall(head)
    interim = _read_until(sock, 10, lambda received: b"\r\n\r\n" in received)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    sock.sendall(body)


def test_the_body_clock_never_cuts_a_long_run_or_a_stream(
    daemon: Daemon, make_template: Callable[..., dict[str, Any]], worktree: Path
) -> None:
    # The "hangs" engine never answers: each execution ends at its wall_ms, after the
    # body's clock would have run out if it counted anything but the body.
    wall_ms = int((BODY_TIMEOUT + 1.5) * 1000)
    template = make_template("hangs", wall_ms=wall_ms, cpu_ms=wall_ms)
    with daemon.client() as client:
        sessions = [
            client.post("/sessions", json=session_body(template["id"], worktree)).json()
            for _ in range(2)
        ]
    with (
        socket.create_connection(("127.0.0.1", daemon.port), 10) as waits,
        socket.create_connection(("127.0.0.1", daemon.port), 10) as streams,
    ):
        started = time.monotonic()
        for sock, session, wait in [(waits, sessions[0], True), (streams, sessions[1], False)]:
            body = json.dumps({"session_id": session["id"], "input": "1", "wait": wait}).encode()
            head = _post_head(daemon, "/executions/repl", len(body), "Expect: 100-continue")
            _send_body_after_continue(sock, head, body)
        accepted, record = _read_answer(streams, 10)
        assert accepted.startswith(b"HTTP/1.1 202 ")
        streams.sendall(
            f"GET /api/v1/executions/{record['id']}/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {daemon.token}\r\n\r\n".encode()
        )
        limit = wall_ms / 1000 + 30
        answered, refusal = _read_answer(waits, limit)
        # A chunked answer that ended, rather than a connection that was cut.
        streamed = _read_until(streams, limit, lambda got: got.endswith(b"\r\n0\r\n\r\n"))
        assert time.monotonic() - started >= BODY_TIMEOUT
    assert answered.startswith(b"HTTP/1.1 422 ")
    assert refusal["error"]["code"] == "EXECUTION_TIMEOUT"
    assert streamed.startswith(b"HTTP/1.1 200 ") and b"event: end" in streamed
