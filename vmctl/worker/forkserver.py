"""``python -m vmctl.worker.forkserver``: workers forked from a process that has imported them.

A fresh ``python -m vmctl.worker`` spends most of its start importing (the interpreter's
own modules, msgspec, quickjs, tree-sitter and its grammar, the worker). This program
does that once; the supervisor (``vmctl/supervisor/workers/forkserver.py``) starts it with the
end of a Unix ``SOCK_SEQPACKET`` socket pair as its stdin and asks it for workers over
the control protocol of ``vmctl/protocol/forking.py``.

Before it serves, it makes one session ahead (:meth:`JsSession.ahead`: a context with the
prelude loaded and warmed up, bound to no worktree) that it never runs again: each child
adopts its copy of it, so the workers share those pages with the server until they write
them, instead of each building a context of its own. It is a single-threaded poll loop, and
holds no thread when it forks (a fork copies only the calling thread: a lock another thread
held would stay held in the child forever). It watches:

- **the control socket.** A :class:`Fork` record brings the worker's stdin, stdout and
  stderr; the server forks, answers :class:`Forked` with a pidfd of the child attached
  (so the supervisor can watch a process that is not its own child, without a pid race),
  and closes its copies of the three fds. End of input (the supervisor closed the socket,
  or died) ends the server: it SIGKILLs each worker's process group, reaps, exits 0.
- **one pidfd per live worker.** When one is readable the worker has exited: the server
  reaps it (it is the parent, so only it can) and reports :class:`Exited` with the wait
  status.

The child becomes what ``python -m vmctl.worker`` would have been: its own session and
process group, a parent-death signal (SIGKILL when this server dies, which itself dies
with the daemon: see the supervisor's module), the three fds as 0, 1 and 2 and nothing
else open, the worktree as cwd, the resource limits and the environment the supervisor
computed, then the worker's ``main`` (which adopts the session made ahead), and
``os._exit`` with its status: it never returns into this loop.
"""

from __future__ import annotations

# First, as in ``python -m vmctl.worker``: what it does before its own imports (keeping
# typing_extensions out of msgspec) must come before msgspec is imported here too.
from vmctl.worker.__main__ import main as worker_main

# isort: split
import contextlib
import ctypes
import gc
import os
import resource
import select
import signal
import socket
import sys
import traceback
from typing import NoReturn

from vmctl.lifeline import die_with_parent
from vmctl.protocol import ProtocolError
from vmctl.protocol.forking import (
    FDS_PER_FORK,
    MAX_RECORD_BYTES,
    Exited,
    Fork,
    Forked,
    ForkFailed,
    ForkReply,
    Ready,
    decode_fork_request,
    encode_record,
)
from vmctl.sandbox import jail
from vmctl.worker.repl import load_parser
from vmctl.worker.session import JsSession

# The child closes every fd above 2 (close_range: one system call whatever the bound).
_MAX_FD = 1 << 20
# Exit status of a child that could not become a worker (the reason is on its stderr).
CHILD_SETUP_FAILED = 127


class Server:
    """The loop: fork on request, reap and report the workers, kill them all at the end."""

    def __init__(self, control: socket.socket, netns: bool, ahead: JsSession | None) -> None:
        self._control = control
        self._netns = netns
        self._ahead = ahead
        self._jail = jail.prepare()
        self._poll = select.poll()  # not epoll: a poll object holds no fd a child could inherit
        self._poll.register(control, select.POLLIN)
        self._children: dict[int, int] = {}  # pidfd -> pid
        self._pid = os.getpid()

    def serve(self) -> None:
        """Until the control socket ends (or breaks); then no worker of ours is left."""
        try:
            self._send(Ready(pid=self._pid, netns=self._netns))
            while self._step():
                pass
        except (ConnectionError, BrokenPipeError):
            pass  # the supervisor is gone
        finally:
            self._kill_all()

    def _step(self) -> bool:
        for fd, _ in self._poll.poll():
            if fd == self._control.fileno():
                if not self._answer():
                    return False
            else:
                self._reap(fd)
        return True

    def _answer(self) -> bool:
        """Serve one record of the control socket; False at its end.

        A record that is not a request is a bug of the supervisor's: ``ProtocolError``
        ends the server (which fails closed: the supervisor then spawns workers).
        """
        record, fds, flags, _ = socket.recv_fds(
            self._control, MAX_RECORD_BYTES, FDS_PER_FORK, socket.MSG_CMSG_CLOEXEC
        )
        if not record and not fds:
            return False
        try:
            if flags & socket.MSG_TRUNC:
                raise ProtocolError(f"a record longer than {MAX_RECORD_BYTES} bytes")
            request = decode_fork_request(record)
            if flags & socket.MSG_CTRUNC or len(fds) != FDS_PER_FORK:
                # Some fds were dropped on the way (no room for them here, say).
                message = f"{len(fds)} of its {FDS_PER_FORK} fds arrived"
                self._send(ForkFailed(id=request.id, message=message))
            else:
                self._fork(request, fds)
        finally:
            for fd in fds:
                os.close(fd)
        return True

    def _fork(self, request: Fork, fds: list[int]) -> None:
        sys.stderr.flush()  # or the child would write what is buffered once more
        try:
            pid = os.fork()
        except OSError as exc:
            self._send(ForkFailed(id=request.id, message=f"fork failed: {exc}"))
            return
        if pid == 0:
            _become_worker(request, fds, self._control, self._pid, self._jail, self._ahead)
        try:
            # Opened before the child can be reaped (only we reap it), so it is that child.
            pidfd = os.pidfd_open(pid)
        except OSError as exc:  # out of fds: a child we cannot watch must not run
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            self._send(ForkFailed(id=request.id, message=f"cannot watch the worker: {exc}"))
            return
        self._children[pidfd] = pid
        self._poll.register(pidfd, select.POLLIN)
        self._send(Forked(id=request.id, pid=pid), [pidfd])

    def _reap(self, pidfd: int) -> None:
        pid = self._children.pop(pidfd)
        self._poll.unregister(pidfd)
        os.close(pidfd)
        _, status = os.waitpid(pid, 0)  # it has exited: this does not block
        self._send(Exited(pid=pid, status=status))

    def _send(self, frame: ForkReply, fds: list[int] | None = None) -> None:
        socket.send_fds(self._control, [encode_record(frame)], fds or [])

    def _kill_all(self) -> None:
        for pid in self._children.values():
            # The group first (the worker and anything it started), then the worker in case
            # it has not yet made its group. "No such process": already gone.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pidfd, pid in self._children.items():
            os.waitpid(pid, 0)
            os.close(pidfd)
        self._children.clear()


def _become_worker(
    request: Fork,
    fds: list[int],
    control: socket.socket,
    server: int,
    ready: jail.Preparation,
    ahead: JsSession | None,
) -> NoReturn:
    """In the child: set up as a spawned worker would be, run the worker, exit. Never returns."""
    code = CHILD_SETUP_FAILED
    try:
        try:
            _set_up(request, fds, control, server)
            jail.apply(request.jail, ready)
        except (OSError, jail.JailError) as exc:
            print(f"vmctl worker: cannot start: {exc}", file=sys.stderr)
        else:
            code = 1  # for an uncaught exception, as ``python -m vmctl.worker`` would
            code = worker_main(ahead)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc(file=sys.stderr)
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _set_up(request: Fork, fds: list[int], control: socket.socket, server: int) -> None:
    """What ``vmctl/supervisor/workers/spawn.py`` does for a spawned worker, in the forked child.

    ``server`` is the fork server's pid, read before the fork: read after it, it could
    already be the pid of whoever adopted us.
    """
    os.setsid()  # its own session and process group: killpg reaches all of it
    die_with_parent(server)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)  # inheritable, as a spawned process's stdio is
    control.detach()  # its fd is closed below; the object must not close a reused number
    os.closerange(3, _MAX_FD)
    for which, value in request.rlimits:
        resource.setrlimit(which, (value, value))  # hard too: the worker cannot raise them
    os.chdir(request.cwd)
    os.environ.clear()
    os.environ.update(request.env)


def _trim_heap() -> None:
    """Give back to the system the heap the set-up freed (the throwaway session's context,
    the imports' temporaries): every worker maps the server's pages, and each one still
    resident adds to what each worker is charged for (PSS). Not glibc: nothing to do."""
    try:
        malloc_trim = ctypes.CDLL(None).malloc_trim
    except AttributeError:
        return
    malloc_trim(0)


def main(argv: list[str] | None = None) -> int:
    # With --netns, the server (and so every worker it forks) has no network at all: a
    # new namespace holds only a loopback interface, and that is down. It fails closed:
    # a server that cannot enter it exits, and the supervisor spawns workers instead.
    netns = "--netns" in (sys.argv[1:] if argv is None else argv)
    if netns:
        try:
            jail.enter_empty_network()
        except OSError as exc:
            print(f"vmctl fork server: cannot enter a network namespace: {exc}", file=sys.stderr)
            return 1
    # Only stdio is ours: a spawn may pass more on (uvloop's does), which no worker may get.
    os.closerange(3, _MAX_FD)
    # One pidfd per live worker: as many as the hard limit allows (workers set their own).
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # The control socket arrives as stdin; move it off fd 0 (to a close-on-exec fd) and
    # put /dev/null there, so that nothing reading stdin could consume a request.
    control = socket.socket(fileno=os.dup(0))
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    # Every worker reads the runtime's scripts as bytecode compiled here, and has its REPL
    # parser made; the throwaway session that compiled them is collected before any fork.
    JsSession.precompile()
    load_parser()
    # The context each worker adopts: made after the throwaway session of precompile() is
    # gone, so it is the one a fresh worker would have made.
    gc.collect()
    ahead = JsSession.ahead()
    gc.collect()
    _trim_heap()
    # What is imported stays shared with every worker: the collector need not look at it
    # again, nor touch (and so copy) its pages.
    gc.freeze()
    Server(control, netns, ahead).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
