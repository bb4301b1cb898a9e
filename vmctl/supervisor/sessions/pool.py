"""The warm pool: workers started ahead of need, so that a session create claims one.

For each key in use a few workers wait (``--pool-size``, default 2): forked by the fork
server, jailed, handshaken (their prelude loaded), each appending its stderr to a file
of its own under ``$VMCTL_HOME/pool/``. A key is everything that shapes a worker before
its first request, so that a claimed worker is the one a fresh start would have made:

- the template (a change to it drains exactly its workers);
- the worktree (the working directory, Landlock's read grant, and whether the worker
  user can read it, which decides the uid layer);
- the worker command (the engine);
- ``mem_mb`` (the address-space limit set at the fork).

No code of the template runs in a waiting worker: its libraries and startup files are
the template's users' code, and run when a session claims the worker (startup.py), in
the one ``RunStartup`` request a fresh worker gets too. A worker's first request, that
one or its first execution, is the origin of the context's ``performance.now()``, in a
claimed worker as in a fresh one. At the claim the worker's jail is
checked against the one a worker started now would get (the uid layer depends on the
worktree's permissions, which may have changed), its directory against the one the
worktree's path names now (it may be a symlink, changed since), and its log file is
renamed to the session's (the daemon's open descriptor follows the file). A worker that
died is closed and the next one taken; one that differs is closed and a fresh worker
started (the others of its key were made alike, so they would differ too).

The rules, each where it is enforced:

- A key gets a pool once a session is created with it (:meth:`WarmPool.claim`), refilled
  in the background after each create (:meth:`WarmPool.refill`, which the manager calls
  once the create is done; unless the key has no worker left, the forks start
  ``POOL_REFILL_DELAY`` later, so they slow neither the create nor the new session's
  first execution); a key on which no session was created for ``POOL_IDLE_SECONDS`` is
  dropped.
- Waiting workers never take a session's place: the pool fills only the ``max_sessions``
  places that no live or starting session holds (``places``), and a session that needs a
  fresh worker first closes waiting workers past the free places (:meth:`make_room`),
  those of the key claimed longest ago first.
- A waiting worker that dies is reaped and replaced, never handed out; after
  ``POOL_DEATHS_BEFORE_PAUSE`` deaths in a row a key is not refilled until its next create.
- Any write to a template drains its keys (:meth:`drain`, the templates' hook); so does
  the daemon's shutdown (:meth:`aclose`): no waiting worker outlives the daemon.
- Only workers the fork server forks are pooled: plugin engines (the operator's program,
  spawned) and every worker while the fork server is gone start as before.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import os
import time
import uuid
from collections.abc import Callable
from typing import NamedTuple

from vmctl.supervisor.config import (
    POOL_DEATHS_BEFORE_PAUSE,
    POOL_IDLE_SECONDS,
    POOL_REFILL_DELAY,
    DaemonConfig,
)
from vmctl.supervisor.metrics import Metrics
from vmctl.supervisor.workers import (
    Launcher,
    SpawnSpec,
    WorkerHandle,
    WorkerStartError,
    open_worker,
)
from vmctl.supervisor.workers.sandboxing import SandboxRefused

logger = logging.getLogger("vmctl.sessions")


class PoolKey(NamedTuple):
    """What a waiting worker was started for (see the module docstring)."""

    template_id: str
    worktree: str  # as the session names it (normalised); its directory is checked at a claim
    argv: tuple[str, ...]
    mem_mb: int

    @classmethod
    def of(cls, template_id: str, spec: SpawnSpec) -> PoolKey:
        return cls(template_id, spec.cwd, spec.argv, spec.mem_mb)


@dataclasses.dataclass(eq=False)
class Waiting:
    """One worker of the pool, and the file its stderr goes to until a session claims it."""

    handle: WorkerHandle
    log_path: str
    watcher: asyncio.Task[None] | None = None


class _KeyPool:
    """The waiting workers of one key, the ones being started, and when it was last used."""

    def __init__(self) -> None:
        self.ready: collections.deque[Waiting] = collections.deque()
        self.starting = 0
        self.filler: asyncio.Task[None] | None = None
        self.expiry: asyncio.TimerHandle | None = None
        self.last_claim = time.monotonic()
        self.deaths = 0  # waiting workers that died in a row, unclaimed


class WarmPool:
    """The daemon's waiting workers, at most ``config.pool_size`` per key; ``places`` says
    how many ``max_sessions`` places no session holds now (the pool's room)."""

    def __init__(
        self,
        config: DaemonConfig,
        launcher: Launcher,
        metrics: Metrics,
        places: Callable[[], int],
    ) -> None:
        self._config = config
        self._launcher = launcher
        self._metrics = metrics
        self._places = places
        self._size = config.pool_size
        self._keys: dict[PoolKey, _KeyPool] = {}
        self._wanted: set[PoolKey] = set()  # claimed from since the last refill
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def waiting(self) -> int:
        """Workers ready to be claimed now."""
        return sum(len(pool.ready) for pool in self._keys.values())

    def _held(self) -> int:
        return sum(len(pool.ready) + pool.starting for pool in self._keys.values())

    # -- claim and refill --------------------------------------------------------------

    def claim(self, template_id: str, spec: SpawnSpec) -> Waiting | None:
        """A live waiting worker for ``spec``'s key, or None (start one then). The caller
        adopts it only if it :meth:`stands_in` (checked off the loop, with the worktree), and
        says so (:meth:`adopted`); else it is to be discarded (:meth:`discard`).

        Either way the key is in use from now on: :meth:`refill` fills its pool.
        """
        if self._closed or self._size <= 0 or not self._launcher.forks(spec):
            return None
        key = PoolKey.of(template_id, spec)
        pool = self._use(key)
        while pool.ready:
            waiting = pool.ready.popleft()
            if waiting.watcher is not None:
                waiting.watcher.cancel()
            if waiting.handle.alive:
                return waiting
            self.discard(waiting)
        return None

    def stands_in(self, waiting: Waiting, spec: SpawnSpec) -> bool:
        """Whether a worker of ``spec`` started now would get the jail ``waiting`` has.
        Sync: it stats the worktree, so it runs off the loop."""
        try:
            jail = self._launcher.jail_for_here(spec)
        except SandboxRefused:
            return False  # a fresh start says why
        return jail.layers == waiting.handle.sandbox

    def adopted(self) -> None:
        """A claimed worker became a session's."""
        self._metrics.pool_claims.inc()

    def refill(self) -> None:
        """Fill, in the background, the pools of the keys claimed from since the last call:
        at once when one has no worker left, else ``POOL_REFILL_DELAY`` from now."""
        wanted, self._wanted = self._wanted, set()
        loop = asyncio.get_running_loop()
        for key in wanted:
            pool = self._keys.get(key)
            if pool is not None and pool.ready:
                loop.call_later(POOL_REFILL_DELAY, self._fill, key)
            else:
                self._fill(key)

    def make_room(self) -> None:
        """Close waiting workers past the free places (a session needs a fresh worker),
        those of the key claimed longest ago first."""
        excess = self._held() - max(0, self._places())
        for pool in sorted(self._keys.values(), key=lambda pool: pool.last_claim):
            while excess > 0 and pool.ready:
                self.discard(pool.ready.pop())
                excess -= 1
            if excess > 0 and pool.filler is not None:
                pool.filler.cancel()  # its worker being started is killed
                excess -= pool.starting
        if excess > 0:
            logger.debug("warm pool: %d worker(s) still starting past the free places", excess)

    async def heartbeat(self, timeout: float) -> None:
        """Ping every waiting worker as the manager pings idle sessions: one that does not
        answer is killed (then reaped and replaced), so none stopped is handed out."""
        handles = [w.handle for pool in self._keys.values() for w in pool.ready]
        await asyncio.gather(*(handle.heartbeat(timeout) for handle in handles))

    def discard(self, waiting: Waiting) -> None:
        """Close ``waiting`` in the background and remove its log."""
        if waiting.watcher is not None:
            waiting.watcher.cancel()
        task = asyncio.create_task(self._close(waiting), name=f"pool-close-{waiting.handle.pid}")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _use(self, key: PoolKey) -> _KeyPool:
        pool = self._keys.get(key)
        if pool is None:
            pool = self._keys[key] = _KeyPool()
        pool.last_claim = time.monotonic()
        pool.deaths = 0
        if pool.expiry is not None:
            pool.expiry.cancel()
        loop = asyncio.get_running_loop()
        pool.expiry = loop.call_later(POOL_IDLE_SECONDS, self._drop, key, "idle")
        self._wanted.add(key)
        return pool

    def _fill(self, key: PoolKey) -> None:
        pool = self._keys.get(key)
        if pool is not None and pool.filler is None and not self._closed:
            pool.filler = asyncio.create_task(self._filled(key, pool), name="pool-fill")

    async def _filled(self, key: PoolKey, pool: _KeyPool) -> None:
        """Start workers for ``key`` one at a time until its pool is full or has no room."""
        try:
            while (
                self._keys.get(key) is pool
                and len(pool.ready) + pool.starting < self._size
                and self._held() < self._places()
            ):
                pool.starting += 1
                try:
                    waiting = await self._start(key)
                finally:
                    pool.starting -= 1
                if waiting is None:
                    return
                if self._keys.get(key) is not pool:  # drained while it started
                    self.discard(waiting)
                    return
                pool.ready.append(waiting)
                waiting.watcher = asyncio.create_task(
                    self._watch(key, pool, waiting), name=f"pool-watch-{waiting.handle.pid}"
                )
        finally:
            pool.filler = None

    async def _start(self, key: PoolKey) -> Waiting | None:
        """A new waiting worker for ``key``; None when the fork server would not fork it
        (it is gone: a spawned worker could never be claimed) or it did not start."""
        log_path = os.path.join(self._config.pool_dir(), f"{uuid.uuid4().hex}.log")
        spec = SpawnSpec(
            argv=key.argv,
            cwd=key.worktree,
            mem_mb=key.mem_mb,
            stderr_log=log_path,
            handshake_timeout=self._config.handshake_timeout,
        )
        if not self._launcher.forks(spec):
            return None
        try:
            await asyncio.to_thread(os.makedirs, self._config.pool_dir(), exist_ok=True)
            handle = await open_worker(spec, self._launcher)
        except (WorkerStartError, OSError) as exc:
            logger.warning("warm pool: no worker for template %s in %s: %s",
                           key.template_id, key.worktree, exc)  # fmt: skip
            await asyncio.to_thread(_remove, log_path)
            return None
        except BaseException:
            _remove(log_path)  # cancelled (a drain, the shutdown): the worker is gone
            raise
        return Waiting(handle, log_path)

    async def _watch(self, key: PoolKey, pool: _KeyPool, waiting: Waiting) -> None:
        """A waiting worker died unclaimed: forget it and start another."""
        await waiting.handle.wait_exited()
        if waiting not in pool.ready:
            return
        pool.ready.remove(waiting)
        tail = waiting.handle.stderr_tail().strip()[-500:]
        logger.warning("warm pool: waiting worker %d %s; stderr: %r",
                       waiting.handle.pid, waiting.handle.exit_reason, tail)  # fmt: skip
        self.discard(waiting)
        pool.deaths += 1
        if pool.deaths < POOL_DEATHS_BEFORE_PAUSE:
            self._fill(key)

    # -- drain and close ---------------------------------------------------------------

    def drain(self, template_id: str) -> None:
        """Close every waiting worker of ``template_id`` (it was changed or deleted)."""
        for key in [key for key in self._keys if key.template_id == template_id]:
            self._drop(key, "drained")

    def _drop(self, key: PoolKey, why: str) -> None:
        pool = self._keys.pop(key, None)
        if pool is None:
            return
        self._wanted.discard(key)
        if pool.expiry is not None:
            pool.expiry.cancel()
        if pool.filler is not None:
            pool.filler.cancel()
        if pool.ready:
            logger.debug("warm pool: %d worker(s) of template %s %s",
                         len(pool.ready), key.template_id, why)  # fmt: skip
        while pool.ready:
            self.discard(pool.ready.popleft())

    async def aclose(self) -> None:
        """Close every waiting worker and stop filling; idempotent. Nothing is pooled after."""
        self._closed = True
        fillers = [pool.filler for pool in self._keys.values() if pool.filler is not None]
        for key in list(self._keys):
            self._drop(key, "closed: the daemon shuts down")
        if fillers:
            await asyncio.wait(fillers)
        if self._closing:
            await asyncio.wait(set(self._closing))

    async def _close(self, waiting: Waiting) -> None:
        await waiting.handle.aclose()
        await asyncio.to_thread(_remove, waiting.log_path)


def clear_pool_dir(config: DaemonConfig) -> None:
    """Remove the logs of waiting workers a previous daemon left (blocking: in a thread)."""
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(config.pool_dir()):
            _remove(os.path.join(config.pool_dir(), name))


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)
