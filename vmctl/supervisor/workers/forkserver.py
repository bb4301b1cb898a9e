"""The fork server, as the supervisor sees it: a worker in a few milliseconds instead of ~80.

A fresh ``python -m vmctl.worker`` spends most of its start importing. The daemon starts
``python -m vmctl.worker.forkserver`` once (vmctl/worker/forkserver.py: it imports what a
worker imports, then forks one worker per request), and ``open_worker`` asks it for each
built-in quickjs worker (the launcher, launcher.py, decides). Other engines (the fixture
plugins) are spawned as before, and so is every worker when the fork server is not there.
The supervisor does not import the engine: it talks to the fork server in the records
of vmctl/protocol/forking.py.

- **fds.** For each worker the supervisor makes three pipes, sends the worker's ends
  (stdin's read end, stdout's and stderr's write ends) with the :class:`Fork` record over
  a Unix ``SOCK_SEQPACKET`` socket pair (``SCM_RIGHTS``), and closes its copies. It
  connects the other ends to the loop, as it does for a spawned worker's pipes.
- **death.** The fork server answers :class:`Forked` with a pidfd of the worker attached,
  opened before the worker could be reaped, so it names that process even if its pid is
  used again later. The loop watches it: readable means the worker has exited.
- **exit status.** The worker is the fork server's child, so only the fork server can
  reap it: it does, and reports :class:`Exited` with the wait status. That report is the
  reap the handle waits for. A fork server that has not sent it ``STATUS_WAIT`` (forked.py)
  after the pidfd turned readable is broken, and is killed (see below).
- **dying with the daemon.** The fork server runs in its own session with a parent-death
  signal (SIGKILL when the daemon's loop thread dies); each worker, after its ``setsid``,
  sets its own to SIGKILL when the fork server dies. So a SIGKILLed daemon takes the fork
  server down, and the fork server its workers. When the fork server is gone, each of its
  workers not yet reported is reported once its pidfd is readable, with its status
  unknown: nobody who could reap it is left to say (it was most likely the SIGKILL of
  its parent-death signal, but it may have died just before).
- **failing closed.** A fork server that does not start, dies, breaks the protocol or
  does not answer a request within :data:`FORK_TIMEOUT` is not used again (the loss is
  logged once); ``open_worker`` then spawns workers plainly. No session fails for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
import os
import signal
import socket
import subprocess
import sys
from typing import cast

from vmctl.lifeline import die_with_parent
from vmctl.protocol import ProtocolError
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
from vmctl.protocol.jail import JailSpec
from vmctl.supervisor.config import builtin_engines
from vmctl.supervisor.workers.forked import ForkedChild, close_all
from vmctl.supervisor.workers.spawn import SpawnSpec, worker_env, worker_rlimits
from vmctl.supervisor.workers.waiting import wait_set

logger = logging.getLogger(__name__)

FORKSERVER_ARGV = (sys.executable, "-m", "vmctl.worker.forkserver")
# The one worker command a forked worker stands in for.
WORKER_ARGV = builtin_engines()["quickjs"]

READY_TIMEOUT = 10.0  # start to Ready: its imports, on a loaded machine
FORK_TIMEOUT = 2.0  # a request to its answer (about a millisecond, when well)
CLOSE_WAIT = 5.0  # socket closed to the fork server's exit (it kills its workers first)


class ForkServerError(Exception):
    """The fork server cannot give this worker; the caller spawns it plainly."""


class ForkServerState(enum.Enum):
    STARTING = "starting"  # spawned, its Ready not yet received
    READY = "ready"  # forks workers on request
    GONE = "gone"  # exited, broken or closed: never asked again


async def open_forkserver(timeout: float = READY_TIMEOUT) -> ForkServer:
    """A started and ready fork server, or :class:`ForkServerError` (nothing is left running)."""
    server = ForkServer()
    try:
        await server.start()
        if await server.wait_ready(timeout):
            return server
    except BaseException:
        await server.aclose()
        raise
    await server.aclose()
    raise ForkServerError(f"the fork server did not start: it {server.lost_reason}")


class ForkServer:
    """The fork server's process and control socket.

    :meth:`start` it, :meth:`wait_ready` for it (or use :func:`open_forkserver`), and
    :meth:`aclose` it in any case. Neither start nor a later death raises: it is then
    gone, and :meth:`serves` says no.
    """

    def __init__(self, netns: bool = False) -> None:
        self._loop = asyncio.get_running_loop()
        # Asked to put itself (and so each worker) in an empty network namespace; and
        # whether its Ready says it did.
        self._want_netns = netns
        self.netns = False
        self._state = ForkServerState.STARTING
        self.pid = 0
        self.lost_reason: str | None = None
        self._control: socket.socket | None = None
        self._transport: asyncio.SubprocessTransport | None = None
        self._settled = asyncio.Event()  # Ready, or gone before it
        self._exited = asyncio.Event()  # its process is reaped
        self._last_id = 0
        self._pending: dict[int, ForkedChild] = {}  # request id -> awaiting its answer
        self._children: dict[int, ForkedChild] = {}  # pid -> forked, exit not yet reported

    @property
    def alive(self) -> bool:
        """It forks workers (it is ready, and has not closed its socket)."""
        return self._state is ForkServerState.READY and self._control is not None

    def serves(self, spec: SpawnSpec) -> bool:
        """Whether to ask for ``spec``'s worker here: the built-in worker, and the server is up.

        Not for a worker with variables of its own: what an interpreter reads from its
        environment at start is fixed in the fork server (``worker_env``'s variables).
        """
        return self.alive and spec.argv == WORKER_ARGV and not spec.env

    async def start(self) -> None:
        """Spawn the fork server; it imports, then says it is ready (see :meth:`wait_ready`)."""
        try:
            await self._spawn()
        except (OSError, subprocess.SubprocessError) as exc:
            self._lose(f"could not be started: {exc}")

    async def wait_ready(self, timeout: float = READY_TIMEOUT) -> bool:
        """Wait until it is ready (True) or gone (False); one not ready in time is killed."""
        if not await wait_set(self._settled, timeout):
            self._break(f"it was not ready within {timeout:g} s")
        return self.alive

    async def fork(
        self, spec: SpawnSpec, protocol: asyncio.SubprocessProtocol, jail: JailSpec
    ) -> ForkedChild:
        """Have ``spec``'s worker forked in ``jail``; its pipes and death then reach ``protocol``.

        Raises :class:`ForkServerError` when the fork server cannot (the caller spawns
        the worker instead). On any failure the child, if there is one, is killed.
        """
        if not self.alive:
            raise ForkServerError(f"the fork server is gone ({self.lost_reason})")
        self._last_id += 1
        request_id = self._last_id
        child = ForkedChild(protocol, on_unreported=self._break, on_close=self._forget)
        self._pending[request_id] = child
        try:
            self._send(
                Fork(
                    id=request_id,
                    cwd=spec.cwd,
                    env=worker_env(spec.cwd, {}),
                    rlimits=worker_rlimits(spec.mem_mb),
                    jail=jail,
                ),
                child,
            )
            async with asyncio.timeout(FORK_TIMEOUT):
                failure = await child.wait_forked()
            if failure is not None:
                raise ForkServerError(failure)
            await child.connect()
        except TimeoutError:
            child.close()
            self._break(f"it did not answer a fork request within {FORK_TIMEOUT:g} s")
            raise ForkServerError(f"the fork server is gone ({self.lost_reason})") from None
        except BaseException:
            child.close()
            raise
        finally:
            self._pending.pop(request_id, None)
        return child

    async def aclose(self) -> None:
        """Close its socket (it then kills its workers and exits) and wait for it. Idempotent."""
        self._lose("was closed")
        if self._transport is None:
            return
        if not await wait_set(self._exited, CLOSE_WAIT):
            logger.warning("fork server %d did not exit when closed: killing it", self.pid)
            self._kill()
            await wait_set(self._exited, CLOSE_WAIT)
        self._transport.close()

    def __repr__(self) -> str:
        return f"<ForkServer pid={self.pid} {self._state.value}>"

    # -- the process and its socket ----------------------------------------------

    async def _spawn(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            await self._loop.subprocess_exec(
                lambda: _ServerProcess(self),
                *FORKSERVER_ARGV,
                *(["--netns"] if self._want_netns else []),
                stdin=theirs.fileno(),  # its control socket
                stdout=subprocess.DEVNULL,
                stderr=None,  # the daemon's: a traceback of the fork server lands in its log
                cwd="/",
                env=worker_env("/", {}),  # the environment the workers start from
                start_new_session=True,  # a signal to the daemon's group does not reach it
                preexec_fn=functools.partial(die_with_parent, os.getpid()),
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        self._control = ours
        self._loop.add_reader(ours.fileno(), self._readable)

    def _send(self, request: Fork, child: ForkedChild) -> None:
        assert self._control is not None
        try:
            socket.send_fds(self._control, [encode_record(request)], child.child_ends)
        except OSError as exc:  # full (it does not read) or broken (it is gone)
            self._break(f"a fork request could not be sent: {exc}")
            raise ForkServerError(f"the fork server is gone ({self.lost_reason})") from exc
        finally:
            child.close_child_ends()  # the fork server has its own copies now

    def _readable(self) -> None:
        """Read every record the fork server has sent."""
        while self._control is not None:
            try:
                record, fds, flags, _ = socket.recv_fds(
                    self._control, MAX_RECORD_BYTES, 1, socket.MSG_CMSG_CLOEXEC
                )
            except BlockingIOError:
                return
            except OSError as exc:
                self._break(f"its control socket failed: {exc}")
                return
            if not record and not fds:
                # It is exiting (nothing else closes that socket): its exit, which the
                # loop reports next, ends it with the reason.
                self._close_control()
                return
            try:
                if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                    raise ProtocolError("a truncated record")
                self._dispatch(decode_fork_reply(record), fds)
            except ProtocolError as exc:
                close_all(fds)
                self._break(f"protocol violation: {exc}")
                return

    def _dispatch(self, frame: ForkReply, fds: list[int]) -> None:
        """Act on one frame; takes ``fds`` unless it raises ``ProtocolError``."""
        if len(fds) != (1 if isinstance(frame, Forked) else 0):
            raise ProtocolError(f"a {type(frame).__name__} frame with {len(fds)} fds")
        match frame:
            case Ready():
                if self._state is not ForkServerState.STARTING:
                    raise ProtocolError("a second ready frame")
                self._state = ForkServerState.READY
                self.netns = frame.netns
                self._settled.set()
                logger.info("fork server %d ready", self.pid)
            case Forked():
                self._forked(frame, fds[0])
            case ForkFailed():
                if (child := self._pending.get(frame.id)) is not None:
                    child.fork_failed(frame.message)
            case Exited():
                try:
                    returncode = os.waitstatus_to_exitcode(frame.status)
                except ValueError:
                    raise ProtocolError(f"the wait status {frame.status} of an exit") from None
                if (child := self._children.pop(frame.pid, None)) is not None:
                    child.exited(returncode)

    def _forked(self, frame: Forked, pidfd: int) -> None:
        child = self._pending.get(frame.id)
        if child is None:  # its fork() gave up waiting (timed out, cancelled)
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            os.close(pidfd)
            return
        self._children[frame.pid] = child
        child.forked(frame.pid, pidfd)

    def _forget(self, child: ForkedChild) -> None:
        self._children.pop(child.get_pid(), None)

    # -- its end -----------------------------------------------------------------

    def _process_exited(self) -> None:
        self._exited.set()
        self._readable()  # what it sent before it died (Exited reports) is still in the socket
        assert self._transport is not None
        code = cast(int, self._transport.get_returncode())
        self._lose(f"exited with code {code}" if code >= 0 else f"was killed by signal {-code}")

    def _break(self, reason: str) -> None:
        """It cannot be trusted any more: kill it."""
        self._kill()
        self._lose(f"was killed: {reason}")

    def _kill(self) -> None:
        if self._transport is not None and not self._exited.is_set():
            with contextlib.suppress(ProcessLookupError):  # already exited: its reap is coming
                self._transport.kill()

    def _lose(self, reason: str) -> None:
        """Never fork here again: fail what is pending; report each worker as it dies."""
        if self._state is ForkServerState.GONE:
            return
        if reason != "was closed":
            logger.warning(
                "the fork server (pid %d) %s; workers are spawned without it", self.pid, reason
            )
        self._state = ForkServerState.GONE
        self.lost_reason = reason
        self._close_control()  # end of input: the fork server kills its workers and exits
        self._settled.set()
        for child in self._pending.values():
            child.fork_failed(f"the fork server {reason}")
        children, self._children = self._children, {}
        for child in children.values():
            child.orphaned(f"its fork server {reason}")

    def _close_control(self) -> None:
        if self._control is not None:
            self._loop.remove_reader(self._control.fileno())
            self._control.close()
            self._control = None


class _ServerProcess(asyncio.SubprocessProtocol):
    def __init__(self, server: ForkServer) -> None:
        self._server = server

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._server._transport = cast(asyncio.SubprocessTransport, transport)
        self._server.pid = self._server._transport.get_pid()

    def process_exited(self) -> None:
        self._server._process_exited()
