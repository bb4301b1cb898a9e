"""``python -m vmctl.worker.forkserver`` spoken to directly over its control socket.

Every process is reaped: the fork server by its context manager, its workers by the
fork server (or, once it is dead, by the leak check of tests/conftest.py, whose process
is their subreaper).
"""

from __future__ import annotations

import contextlib
import os
import resource
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from vmctl.protocol import ExecRepl, Hello, Ok, RunFile, decode_reply, encode
from vmctl.protocol.forking import (
    MAX_RECORD_BYTES,
    Exited,
    Fork,
    Forked,
    ForkFailed,
    ForkReply,
    Ready,
    decode_fork_reply,
    encode_record,
)
from vmctl.worker import capi
from vmctl.worker.channel import FrameWriter
from vmctl.worker.engine import ImportRefused
from vmctl.worker.session import JsSession
from vmctl.worker.worktree import PathRefused

from .jsworker import LIMITS, TIMEOUT

MIB = 1024 * 1024
RLIMITS = (
    (resource.RLIMIT_AS, 700 * MIB),
    (resource.RLIMIT_NOFILE, 128),
    (resource.RLIMIT_FSIZE, 2 * MIB),
    (resource.RLIMIT_CORE, 0),
)


def readable(fd: int, timeout: float = TIMEOUT) -> bool:
    return bool(select.select([fd], [], [], timeout)[0])


class Forked_:
    """Our ends of one forked worker's pipes, and its pidfd."""

    def __init__(self, pid: int, pidfd: int, ends: list[int]) -> None:
        self.pid, self.pidfd = pid, pidfd
        self.stdin, self.stdout, self.stderr = ends
        self._buffer = b""

    def line(self) -> bytes:
        """The next line of its stdout; every read is bounded."""
        while b"\n" not in self._buffer:
            assert readable(self.stdout), "no frame from the worker"
            chunk = os.read(self.stdout, 65536)
            assert chunk, "the worker closed its stdout"
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def stderr_text(self) -> str:
        return os.read(self.stderr, 65536).decode() if readable(self.stderr) else ""

    def close(self) -> None:
        for fd in (self.stdin, self.stdout, self.stderr, self.pidfd):
            with contextlib.suppress(OSError):
                os.close(fd)


class ServerProcess:
    """The fork server with our end of its socket; every read has a timeout."""

    def __init__(self) -> None:
        self.control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.control.settimeout(TIMEOUT)
        with theirs:
            self.proc: subprocess.Popen[bytes] = subprocess.Popen(
                [sys.executable, "-m", "vmctl.worker.forkserver"],
                stdin=theirs.fileno(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                cwd="/",
            )
        self.workers: list[Forked_] = []
        self._last_id = 0

    def reply(self) -> tuple[ForkReply, list[int]]:
        record, fds, _, _ = socket.recv_fds(self.control, MAX_RECORD_BYTES, 1)
        return decode_fork_reply(record), fds

    def fork(self, cwd: Path | str) -> Forked_:
        """Ask for a worker in ``cwd``; return it once the fork server said it forked."""
        stdin = os.pipe()
        stdout = os.pipe()
        stderr = os.pipe()
        self._last_id += 1
        request = Fork(id=self._last_id, cwd=str(cwd), env={"HOME": str(cwd)}, rlimits=RLIMITS)
        theirs = [stdin[0], stdout[1], stderr[1]]
        socket.send_fds(self.control, [encode_record(request)], theirs)
        for fd in theirs:
            os.close(fd)
        frame, fds = self.reply()
        assert isinstance(frame, Forked) and frame.id == self._last_id and len(fds) == 1
        worker = Forked_(frame.pid, fds[0], [stdin[1], stdout[0], stderr[0]])
        self.workers.append(worker)
        return worker

    def wait(self) -> int:
        try:
            return self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(TIMEOUT)
            raise

    def stderr_text(self) -> str:
        assert self.proc.stderr is not None
        return self.proc.stderr.read().decode()

    def close(self) -> None:
        self.control.close()  # end of input: it kills its workers and exits
        if self.proc.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(TIMEOUT)
        self.proc.kill()
        self.proc.wait(TIMEOUT)
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        for worker in self.workers:
            worker.close()


@contextlib.contextmanager
def running_server() -> Iterator[ServerProcess]:
    """A fork server whose Ready has been read; closed and reaped on exit."""
    server = ServerProcess()
    try:
        frame, fds = server.reply()
        assert frame == Ready(pid=server.proc.pid) and not fds
        yield server
    finally:
        server.close()


def test_a_forked_worker_is_set_up_as_a_spawned_one_and_its_exit_is_reported(
    worktree: Path,
) -> None:
    with running_server() as server:
        worker = server.fork(worktree)
        hello = decode_reply(worker.line())
        assert isinstance(hello, Hello) and hello.pid == worker.pid
        process = psutil.Process(worker.pid)
        assert process.ppid() == server.proc.pid
        assert os.getsid(worker.pid) == worker.pid == os.getpgid(worker.pid)
        assert process.cwd() == str(worktree)
        for which, value in RLIMITS:
            assert process.rlimit(which) == (value, value)
        # stdin, stdout (pointed at stderr), stderr and the frame fd: nothing else.
        assert sorted(int(fd) for fd in os.listdir(f"/proc/{worker.pid}/fd")) == [0, 1, 2, 3]

        os.write(worker.stdin, encode(ExecRepl(id=1, code="6 * 7", limits=LIMITS)))
        assert b'"json":42' in worker.line()
        assert isinstance(decode_reply(worker.line()), Ok)

        os.close(worker.stdin)  # end of input: the worker exits by itself
        assert readable(worker.pidfd)
        assert server.reply() == (Exited(pid=worker.pid, status=0), [])


def _answer(worker: Forked_, request: ExecRepl | RunFile) -> bytes:
    """The frames ``request`` sent before its Ok (console lines, its value), as read."""
    os.write(worker.stdin, encode(request))
    lines = [worker.line()]
    while not isinstance(decode_reply(lines[-1]), Ok):
        lines.append(worker.line())
    return b"\n".join(lines[:-1])


def test_each_forked_worker_makes_the_server_context_its_own(tmp_path: Path) -> None:
    # Every worker starts from a copy of one context the server made before forking;
    # each copy must read its own worktree and draw its own random numbers.
    trees = [tmp_path / "a", tmp_path / "b"]
    for tree in trees:
        tree.mkdir()
        (tree / "main.js").write_text(f"console.log('I am {tree.name}')")
    with running_server() as server:
        workers = [server.fork(tree) for tree in trees]
        for worker in workers:
            assert isinstance(decode_reply(worker.line()), Hello)
        ran = [_answer(w, RunFile(id=1, path="main.js", limits=LIMITS)) for w in workers]
        assert [b"I am a" in ran[0], b"I am b" in ran[1]] == [True, True]
        draw = "globalThis.mine = [Math.random(), Math.random()]"
        randoms = [_answer(w, ExecRepl(id=2, code=draw, limits=LIMITS)) for w in workers]
        assert randoms[0] != randoms[1]
        # What one worker defines is its own: the other's copy never sees it.
        seen = _answer(workers[1], ExecRepl(id=3, code="String(globalThis.mine)", limits=LIMITS))
        assert seen != randoms[0] and seen != b""


def test_the_session_made_ahead_reaches_no_file_until_a_worker_adopts_it(
    worktree: Path,
) -> None:
    (worktree / "a.js").write_text("1")
    session = JsSession.ahead()
    assert session is not None
    sink = os.open(os.devnull, os.O_WRONLY)
    try:
        before = session._worktree
        assert before.root == os.devnull
        with pytest.raises(PathRefused):
            before.locate("etc/passwd")
        for specifier in ("/etc/passwd", "etc/passwd", "../etc/passwd"):
            with pytest.raises(ImportRefused):
                before.resolve("<repl:1>", specifier, (".js",))
        session.adopt(str(worktree), FrameWriter(sink))
        assert session._worktree.locate("a.js") == "a.js"
    finally:
        session.close()
        os.close(sink)


def test_no_session_is_made_ahead_for_a_degraded_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    # A degraded engine cannot reseed its copies' Math.random: each worker then makes its own.
    monkeypatch.setattr(capi, "ENGINE_VERSION", "0.0.0")
    assert JsSession.ahead() is None


def test_an_unusable_worktree_fails_that_child_not_the_server(tmp_path: Path) -> None:
    with running_server() as server:
        worker = server.fork(tmp_path / "missing")
        frame, _ = server.reply()
        assert isinstance(frame, Exited) and frame.pid == worker.pid
        assert os.waitstatus_to_exitcode(frame.status) == 127
        assert "cannot start: [Errno 2] No such file or directory" in worker.stderr_text()
        another = server.fork(tmp_path)
        assert isinstance(decode_reply(another.line()), Hello)


def test_a_request_without_its_fds_is_refused_and_the_server_serves_on(worktree: Path) -> None:
    with running_server() as server:
        request = Fork(id=7, cwd=str(worktree), env={}, rlimits=RLIMITS)
        server.control.send(encode_record(request))
        assert server.reply() == (ForkFailed(id=7, message="0 of its 3 fds arrived"), [])
        assert isinstance(decode_reply(server.fork(worktree).line()), Hello)


def test_closing_the_socket_kills_the_workers_and_ends_the_server(worktree: Path) -> None:
    server = ServerProcess()
    try:
        assert isinstance(server.reply()[0], Ready)
        worker = server.fork(worktree)
        assert isinstance(decode_reply(worker.line()), Hello)
        server.control.close()
        assert server.wait() == 0
        assert readable(worker.pidfd)  # dead (and reaped by the fork server)
        with pytest.raises(psutil.NoSuchProcess):
            psutil.Process(worker.pid)
    finally:
        server.close()


def test_a_bad_request_ends_the_server_and_its_workers(worktree: Path) -> None:
    with running_server() as server:
        worker = server.fork(worktree)
        socket.send_fds(server.control, [b'{"type": "fork", "id": 2}'], [0, 1, 2])
        assert server.wait() == 1
        assert "bad fork request" in server.stderr_text()
        assert readable(worker.pidfd)


def test_workers_die_with_their_fork_server(worktree: Path) -> None:
    with running_server() as server:
        workers = [server.fork(worktree) for _ in range(2)]
        for worker in workers:
            assert isinstance(decode_reply(worker.line()), Hello)
        server.proc.send_signal(signal.SIGKILL)
        assert server.wait() == -signal.SIGKILL
        # The parent-death signal: each worker is killed at once (and reaped by our subreaper).
        for worker in workers:
            assert readable(worker.pidfd)
