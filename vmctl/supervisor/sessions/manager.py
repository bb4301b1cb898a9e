"""The session manager: the one owner of live workers and of session state.

Life of a session, top to bottom in this file:

- ``create_session`` writes the row as ``starting``, starts the worker and runs
  its libraries and startup files (startup.py), writes ``ready`` and starts a
  watcher.
- ``execute_repl`` and ``run_file`` run one execution at a time per session
  (execution.py: the ``running`` row goes with the first group commit of its
  events, before the worker's request when the client does not wait; the final
  record is committed with or after its events, before the answer leaves).
- The watcher notices the worker's death the moment it happens and writes
  ``crashed`` with the reason; ``restart_session`` gives a crashed (or ready)
  session a fresh worker; ``close_session`` stops the worker and writes
  ``closed``.
- ``aclose`` (daemon shutdown) stops every worker at once.

Every state change is written to the store before it is reported.
:func:`open_session_manager` builds the manager with what it runs on (the
store, the launcher and its fork server) and closes them in order.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec

from vmctl.api.models import (
    Execution,
    Lifecycle,
    Session,
    SessionStatus,
    Settings,
    StartupFile,
    Template,
)
from vmctl.supervisor.config import (
    FLAP_LIMIT,
    FLAP_WINDOW,
    HEARTBEAT_TIMEOUT,
    RESTART_BACKOFF,
    RESTART_BACKOFF_MAX,
    SHUTDOWN_TIMEOUT,
    DaemonConfig,
)
from vmctl.supervisor.metrics import DaemonState, Metrics
from vmctl.supervisor.sessions import execution as executions
from vmctl.supervisor.sessions import retention, worker_logs
from vmctl.supervisor.sessions.background import repeated
from vmctl.supervisor.sessions.errors import (
    Conflict,
    StartupFailed,
    Unavailable,
    VmctlError,
    not_found,
    store_call,
)
from vmctl.supervisor.sessions.expiry import Expiry, due, has_timeouts
from vmctl.supervisor.sessions.live import WORKER_DIED, LiveSession, SessionLocks
from vmctl.supervisor.sessions.paths import (
    check_in_roots,
    clean_relative_path,
    existing_file,
    worktree_in_roots,
)
from vmctl.supervisor.sessions.pool import WarmPool, clear_pool_dir
from vmctl.supervisor.sessions.replay import replay_outcome, replayed
from vmctl.supervisor.sessions.startup import runtime_meta, start_worker
from vmctl.supervisor.sessions.templates import Templates
from vmctl.supervisor.store import EventPage, Store, StoreFull, open_store
from vmctl.supervisor.store.models import new_id, utc_now
from vmctl.supervisor.workers import Launcher, Outcome, WorkerHandle
from vmctl.supervisor.workers.forkserver import ForkServer
from vmctl.supervisor.workers.sandboxing import open_sandbox, sandbox_summary

logger = logging.getLogger("vmctl.sessions")

RECOVERY_RETRY_SECONDS = 5.0  # a recovery the full store refused, tried again
# How much of a dead worker's stderr goes into the session's last_error.
STDERR_IN_REASON = 2000


@contextlib.asynccontextmanager
async def open_session_manager(
    config: DaemonConfig, metrics: Metrics
) -> AsyncIterator[SessionManager]:
    """The manager on its store and launcher, all counting in ``metrics``; at the end every
    session is closed, then the store, then the fork server."""
    # The fork server imports while the store opens. It is only a speed-up: if it does
    # not start, or dies later, workers are spawned.
    sandbox = await open_sandbox(config.sandbox, config.worker_user)
    launcher = Launcher(ForkServer(netns=sandbox.wants_netns), sandbox, metrics)
    await launcher.start()
    try:
        async with (
            _opened_store(config, metrics) as store,
            worker_logs.swept(store, config),
            retention.pruned(store, config),
        ):
            await launcher.wait_ready()
            await asyncio.to_thread(clear_pool_dir, config)  # what a killed daemon's pool left
            manager = SessionManager(store, config, launcher, metrics)
            try:
                async with manager.heartbeat(), manager.expiring():
                    yield manager
            finally:
                await manager.aclose()
    finally:
        await launcher.aclose()


@contextlib.asynccontextmanager
async def _opened_store(config: DaemonConfig, metrics: Metrics) -> AsyncIterator[Store]:
    """The store, with what a previous daemon left behind marked; closed at the end.

    On a full disk the daemon starts all the same, to serve reads: the recovery is
    tried again every :data:`RECOVERY_RETRY_SECONDS` until the store takes it.
    """
    store = await open_store(config.db_path, metrics)
    retrying: asyncio.Task[None] | None = None
    try:
        if not await _recover(store):
            retrying = asyncio.create_task(_recover_later(store), name="recover-store")
        yield store
    finally:
        if retrying is not None:
            retrying.cancel()
            await asyncio.wait([retrying])
        await store.aclose()
        logger.info("store closed")


async def _recover(store: Store, *, first: bool = True) -> bool:
    """Mark what a previous daemon left; False when the store has no room for it yet."""
    try:
        sessions, runs = await store.recover_abandoned(
            "the daemon stopped without closing this session"
        )
    except StoreFull:
        if first:
            logger.error(
                "the store's disk is full: the daemon serves reads, and marks what the "
                "previous daemon left once it can write (it tries every %g s)",
                RECOVERY_RETRY_SECONDS,
            )
        return False
    if sessions or runs:
        logger.warning(
            "recovered %d session(s) and %d execution(s) left by a previous daemon",
            sessions,
            runs,
        )
    return True


async def _recover_later(store: Store) -> None:
    while True:
        await asyncio.sleep(RECOVERY_RETRY_SECONDS)
        if await _recover(store, first=False):
            return


def _closed(session: Session, why: str | None = None) -> Session:
    """``session`` closed now, with ``why`` as its last error if given."""
    last_error = why if why is not None else session.last_error
    return msgspec.structs.replace(
        session, status="closed", closed_at=utc_now(), last_error=last_error
    )


class SessionManager:
    """Sessions and their workers; opened and closed by :func:`open_session_manager`."""

    def __init__(
        self, store: Store, config: DaemonConfig, launcher: Launcher, metrics: Metrics
    ) -> None:
        self._store = store
        self._config = config
        self._launcher = launcher
        self._metrics = metrics
        # Workers started ahead of need (pool.py); in the places no session holds.
        self._pool = WarmPool(config, launcher, metrics, self._free_places)
        self.templates = Templates(store, config, changed=self._template_changed)
        self._live: dict[str, LiveSession] = {}
        # lifecycle.idle_timeout_ms and max_lifetime_ms.
        self._expiry = Expiry(self._live.values, self._lifecycle, self._expire)
        self._locks = SessionLocks()
        self._starting = 0
        self._accepting = True
        # Executions this daemon runs now -> their session; and the runs nobody waits for.
        self._running: dict[str, LiveSession] = {}
        self._detached: set[asyncio.Task[None]] = set()
        # lifecycle.restart: the restarts waiting out their backoff, and recent deaths.
        self._restarts: set[asyncio.Task[None]] = set()
        self._deaths: dict[str, collections.deque[float]] = {}

    @contextlib.asynccontextmanager
    async def heartbeat(self) -> AsyncIterator[None]:
        """Ping every idle worker each ``heartbeat_interval`` until the block ends: one that
        does not answer within ``HEARTBEAT_TIMEOUT`` is killed, and its session becomes
        crashed with that reason (through its watcher, as any death). Busy workers are left
        alone: their execution's deadlines watch them, and an execution never waits for a
        ping."""
        interval = self._config.heartbeat_interval
        if interval <= 0:
            yield
            return
        async with repeated(self._beat, interval, "heartbeat", at_once=False):
            yield

    def expiring(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Close the sessions whose lifecycle timeouts run out, until the block ends."""
        return self._expiry.running()

    def _template_changed(self, template_id: str) -> None:
        self._pool.drain(template_id)
        self._expiry.changed()  # its timeouts may be shorter now

    async def _lifecycle(self, template_id: str) -> Lifecycle:
        return (await self.templates.settings(template_id)).lifecycle

    async def _beat(self) -> None:
        idle = [live.handle for live in self._live.values() if not live.busy]
        pinged = (handle.heartbeat(HEARTBEAT_TIMEOUT) for handle in idle)
        await asyncio.gather(*pinged, self._pool.heartbeat(HEARTBEAT_TIMEOUT))

    # -- queries -----------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        alive = sorted(sid for sid, live in self._live.items() if live.handle.alive)
        return {
            "active_sessions": len(alive),
            "active_session_ids": alive,
            "busy_sessions": sum(1 for live in self._live.values() if live.busy),
            "starting_sessions": self._starting,
            "max_sessions": self._config.max_sessions,
            "workers": {sid: self._live[sid].handle.pid for sid in alive},
            "pooled_workers": self._pool.waiting,
            "sandbox": sandbox_summary(self._launcher.sandbox),
        }

    async def daemon_state(self) -> DaemonState:
        """What /metrics reports of the daemon now: sessions by status (from the store,
        the truth for those of earlier daemons too), and the workers up."""
        sessions = await self._store.count_sessions()
        alive = [live for live in self._live.values() if live.handle.alive]
        return DaemonState(
            sessions=sessions,
            live_workers=len(alive),
            busy_workers=sum(1 for live in alive if live.busy),
            forkserver_up=self._launcher.forkserver_alive(),
            pooled_workers=self._pool.waiting,
        )

    async def get_session(self, session_id: str) -> Session:
        session = await self._store.get_session(session_id)
        if session is None:
            raise not_found("session", session_id)
        return session

    async def list_sessions(self, status: SessionStatus | None) -> list[Session]:
        return await self._store.list_sessions(status)

    async def get_execution(self, execution_id: str) -> Execution:
        log = self._store.events.get(execution_id)
        if log is not None:
            # What the store has not taken yet is told from memory: an ended record the
            # full store refused, or a running one whose row goes with its first commit.
            unstored = log.unwritten_final or log.uncommitted_running
            if unstored is not None:
                return unstored
        execution = await self._store.get_execution(execution_id)
        if execution is None:
            raise not_found("execution", execution_id)
        return execution

    async def list_executions(self, session_id: str, limit: int) -> list[Execution]:
        await self.get_session(session_id)
        # Taken before the read: a row committed meanwhile is in what the store answers.
        unstored = self._uncommitted_running(session_id)
        listed = await self._store.list_executions(session_id, limit)
        stored = {execution.id for execution in listed}
        return ([e for e in unstored if e.id not in stored] + listed)[:limit]

    def _uncommitted_running(self, session_id: str) -> list[Execution]:
        """The session's running execution (at most one), if its row is not stored yet."""
        found = []
        for execution_id, live in self._running.items():
            log = self._store.events.get(execution_id)
            if live.session.id == session_id and log is not None and log.uncommitted_running:
                found.append(log.running)
        return found

    async def list_events(
        self, execution_id: str, after_seq: int, limit: int, wait_ms: int = 0
    ) -> EventPage:
        """At most ``limit`` events after ``after_seq`` (encoded), and whether more follow.

        With ``wait_ms``, when none is there yet and the execution runs, first wait up
        to that long for one to be committed, or for the end.
        """
        await self.get_execution(execution_id)
        page = await self._store.events_page(execution_id, after_seq, limit)
        if page.last_seq is None and wait_ms > 0:
            await self.wait_for_events(execution_id, after_seq, wait_ms / 1000)
            page = await self._store.events_page(execution_id, after_seq, limit)
        return page

    async def wait_for_events(self, execution_id: str, after_seq: int, timeout: float) -> bool:
        """Until an event after ``after_seq`` is committed, the execution ended, or ``timeout``.

        False at once for an execution this daemon does not run (it has ended, or is
        just committing its end).
        """
        log = self._store.events.get(execution_id)
        if log is None:
            return False
        await log.wait(after_seq, timeout)
        return True

    async def events_after(
        self, execution_id: str, after_seq: int, limit: int
    ) -> list[tuple[int, str, bytes]]:
        """Committed events after ``after_seq``, each as (seq, type, its JSON)."""
        return await self._store.events_after(execution_id, after_seq, limit)

    async def cancel_execution(self, execution_id: str) -> Execution:
        """Stop a running execution the way a cancel does (a soft interrupt, then the kill
        after the grace) and return its record once it has ended; an ended one as it is."""
        execution = await self.get_execution(execution_id)
        log = self._store.events.get(execution_id)
        if execution.status != "running" or log is None:
            return execution
        live = self._running.get(execution_id)
        if live is not None:
            await live.handle.cancel()
        await log.wait_ended()
        return await self.get_execution(execution_id)

    # -- lifecycle ---------------------------------------------------------

    async def create_session(
        self, template_id: str, workspace_id: str, base_commit_oid: str, worktree_path: str
    ) -> Session:
        worktree, outside = await asyncio.to_thread(
            worktree_in_roots, worktree_path, self._config.worktree_roots
        )
        self._check_accepting()
        template = await self.templates.get(template_id)
        if outside is not None:
            raise outside
        with self._place():
            session = Session(
                id=new_id(),
                vm_id=template.id,
                workspace_id=workspace_id,
                base_commit_oid=base_commit_oid,
                worktree_path=worktree,
                status="starting",
                created_at=utc_now(),
            )
            try:
                async with self._locks.hold(session.id):
                    return await self._start(session, template, restarts=0, stored=False)
            finally:
                self._pool.refill()  # once the create is answered: it did not wait for forks

    async def restart_session(self, session_id: str, replay: bool = False) -> Session:
        """A fresh worker for the session; with ``replay``, its executions since its state
        last started fresh run again on it (replay.py)."""
        self._check_accepting()
        async with self._locks.hold(session_id):
            session = await self.get_session(session_id)
            if session.status == "closed":
                raise Conflict(
                    "SESSION_NOT_READY",
                    "A closed session cannot be restarted",
                    {"session_id": session_id, "status": session.status},
                )
            # Again: the roots may have changed since, or the worktree become a symlink.
            await asyncio.to_thread(
                check_in_roots, session.worktree_path, self._config.worktree_roots
            )
            template = await self.templates.get(session.vm_id)
            meta = session.runtime_meta or {}
            restarts = int(meta.get("restarts", 0)) + 1
            starting = msgspec.structs.replace(session, status="starting", last_error=None)
            await self._store_then_retire(starting, "the session was restarted")
            with self._place():
                if not replay:
                    return await self._start(starting, template, restarts)
                since = meta.get("state_since")  # none for a session of an earlier vmctl
                since = since if isinstance(since, str) else ""
                return await self._start(starting, template, restarts, replay_since=since)

    async def close_session(self, session_id: str) -> Session:
        async with self._locks.hold(session_id):
            session = await self.get_session(session_id)
            if session.status == "closed":
                return session
            closed = _closed(session)
            await self._store_then_retire(closed, "the session was closed")
            return closed

    async def _expire(self, session_id: str, lifecycle: Lifecycle) -> None:
        """Close a session whose lifecycle timeout ran out, if it still has: an execution
        may have begun while this waited for the session's lock. If the store refuses the
        write, the session goes on as it was and the expiry is tried again later."""
        async with self._locks.hold(session_id):
            live = self._live.get(session_id)
            if live is None or live.retired or not self._accepting:
                return
            _, expired = due(live, lifecycle, time.monotonic())
            if expired is None:
                return
            # No await since the check: no execution starts from here, so an idle session
            # is closed idle.
            closed = _closed(live.session, expired.reason)
            await self._store_then_retire(closed, expired.reason)
        self._metrics.sessions_expired.labels(expired.timeout).inc()
        logger.info("session %s %s", session_id, expired.reason)

    async def _store_then_retire(self, state: Session, why: str) -> None:
        """Store ``state`` of a session, then stop its worker (lock held).

        From the first step (before any await) no execution starts on it. If the store
        refuses the write (a full disk), the session goes on as it was: not a row that
        says ready with no worker behind it.
        """
        live = self._live.get(state.id)
        if live is not None and live.retired:
            live = None  # being retired already: not ours to mark
        if live is not None:
            live.retired_because = why
        try:
            await self._store.update_session(state)
        except BaseException:
            if live is not None:
                live.retired_because = None
            raise
        await self._retire(state.id, why)

    async def aclose(self, reason: str = "the daemon shut down") -> None:
        """Stop every worker at once; their sessions become crashed (restartable).

        Called by the server before it drains requests, and again by
        :func:`open_session_manager` for anything that started in between.
        """
        self._accepting = False
        for task in list(self._restarts):
            task.cancel()
        await self._pool.aclose()
        ids = list(self._live)
        if not ids:
            return
        logger.info("shutdown: closing %d session(s)", len(ids))
        try:
            async with asyncio.timeout(SHUTDOWN_TIMEOUT):
                stops = (self._stop_for_shutdown(sid, reason) for sid in ids)
                # Every session is stopped even when writing one's state fails (a full disk).
                for failed in await asyncio.gather(*stops, return_exceptions=True):
                    if isinstance(failed, Exception):
                        logger.error("shutdown: a session's state was not written: %s", failed)
        except TimeoutError:
            logger.error("shutdown: sessions did not close within %ss", SHUTDOWN_TIMEOUT)
        # Runs nobody waited for have recorded their end with their worker's: let them return.
        if self._detached:
            await asyncio.wait(set(self._detached), timeout=SHUTDOWN_TIMEOUT)
        logger.info("shutdown: all workers stopped")

    async def _stop_for_shutdown(self, session_id: str, reason: str) -> None:
        live = self._live.get(session_id)
        if live is None:
            return
        await self._retire(session_id, reason)
        crashed = msgspec.structs.replace(live.session, status="crashed", last_error=reason)
        await self._store.update_session(crashed)

    def _check_accepting(self) -> None:
        if not self._accepting:
            raise Unavailable("CAPACITY_EXCEEDED", "The daemon is shutting down")

    def _free_places(self) -> int:
        """The ``max_sessions`` places no live or starting session holds (the pool's room)."""
        return self._config.max_sessions - len(self._live) - self._starting

    @contextlib.contextmanager
    def _place(self) -> Iterator[None]:
        """Hold one of the ``max_sessions`` places while a worker starts (taken at once)."""
        if len(self._live) + self._starting >= self._config.max_sessions:
            raise Unavailable(
                "CAPACITY_EXCEEDED",
                f"The daemon runs its maximum of {self._config.max_sessions} sessions",
                {"max_sessions": self._config.max_sessions},
            )
        self._starting += 1
        try:
            yield
        finally:
            self._starting -= 1

    async def _start(
        self,
        session: Session,
        template: Template,
        restarts: int,
        *,
        stored: bool = True,
        replay_since: str | None = None,
    ) -> Session:
        """Start and initialise a worker for ``session`` (lock held); ready or raise.

        With ``replay_since`` (a restart that replays), the session's executions since
        that moment run again on the new worker first ("" for a moment not known).

        A session not yet ``stored`` is written as it starts only if that takes a while (a
        fresh worker, startup files to run); a waiting worker claimed with nothing to run
        makes it ready at once, and it is written once, as ready. Either way a session
        that fails to start is stored crashed, and one whose template is gone not at all.
        """
        if restarts:  # no worker of the session runs now: what earlier ones logged can be cut
            await asyncio.to_thread(worker_logs.trim, self._config.worker_log_path(session.id))
        settings = await self.templates.settings(template.id)
        startup = await self.templates.startup_files(template.id)
        written = stored

        async def write(state: Session) -> None:
            nonlocal written
            if written:
                await self._store.update_session(state)
            else:
                await store_call(self._store.insert_session(state))  # the template may be gone
                written = True

        async def starting() -> None:
            if not written:
                await write(session)

        # A new session may claim a waiting worker: its log becomes the session's, which
        # is why a restart (whose log has its earlier workers' lines) starts a fresh one.
        pool = self._pool if restarts == 0 else None
        if pool is None:
            self._pool.make_room()  # a fresh worker needs a place: waiting ones give theirs up
        state_since = utc_now()  # before the worker runs anything of the new state
        report = None
        try:
            handle = await start_worker(
                self._config, self._launcher, session, template, settings, startup, pool, starting
            )
            if replay_since is not None:
                handle, report, state_since = await self._replay_on(
                    handle, session, template, settings, startup, replay_since
                )
        except StartupFailed as exc:
            crashed = msgspec.structs.replace(session, status="crashed", last_error=exc.message)
            await write(crashed)
            exc.details = {"session_id": session.id}
            raise
        meta = runtime_meta(handle, settings, restarts)
        meta["state_since"] = state_since
        if report is not None:
            meta["replay"] = report
        ready = msgspec.structs.replace(session, status="ready", runtime_meta=meta)
        try:
            await write(ready)
        except BaseException:
            await handle.aclose()
            raise
        live = LiveSession(ready, handle, settings.limits.mem_mb)
        self._live[session.id] = live
        live.watcher = asyncio.create_task(self._watch(live), name=f"watch-{session.id}")
        if has_timeouts(settings.lifecycle):
            self._expiry.changed()
        return ready

    async def _replay_on(
        self,
        handle: WorkerHandle,
        session: Session,
        template: Template,
        settings: Settings,
        startup: tuple[StartupFile, ...],
        since: str,
    ) -> tuple[WorkerHandle, dict[str, Any], str]:
        """The session's executions since ``since`` run again on its new worker (replay.py)."""

        async def fresh() -> WorkerHandle:
            self._check_accepting()  # a worker started in a shutdown would be missed
            return await start_worker(
                self._config, self._launcher, session, template, settings, startup
            )

        limits = executions.worker_limits(settings, settings.limits.mem_mb)
        runtime = executions.runtime_options(template, settings)
        handle, report, state_since = await replayed(
            self._store, handle, session.id, since, runtime, limits, fresh
        )
        self._metrics.replays.labels(replay_outcome(report)).inc()
        return handle, report, state_since

    async def _retire(self, session_id: str, why: str) -> None:
        """Stop this session's worker, if it runs, and wait for its execution to be recorded."""
        live = self._live.pop(session_id, None)
        if live is None:
            return
        died_first = not live.handle.alive  # dead, or being killed, before this retire
        live.retired_because = why
        # The execution in flight ends as a cancel ends it: a soft interrupt, then the kill.
        await live.handle.cancel(why)
        await live.wait_idle()
        await live.handle.aclose()
        if live.watcher is not None:
            # A watcher that saw the death before the session was retired waits for the
            # session's lock, which our caller may hold (a restart, a close): waiting for it
            # would wait for ever. It has nothing left to do: the session is retired.
            live.watcher.cancel()
            await asyncio.wait([live.watcher])
        if died_first:
            # The session's state is the retire's, but the death was a crash all the same.
            reason = self._crashed(live)
            logger.warning("session %s crashed as %s: %r", session_id, why, reason)

    def _crashed(self, live: LiveSession) -> str:
        """Count the death of ``live``'s worker as a crash; why it died, for the record."""
        self._metrics.worker_crashes.labels(live.handle.death_cause).inc()
        reason = live.handle.exit_reason or "the worker process exited"
        tail = live.handle.stderr_tail().strip()
        if tail:
            reason = f"{reason}; stderr: {tail[-STDERR_IN_REASON:]}"
        return reason

    async def _watch(self, live: LiveSession) -> None:
        await live.handle.wait_exited()
        # Retired on purpose (close, restart, shutdown): not a crash. A session retired
        # while this waits for its lock in _mark_crashed is not either: _retire cancels it.
        if not live.retired:
            await self._mark_crashed(live)
            if self._accepting:
                task = asyncio.create_task(self._restart_if_wanted(live.session))
                self._restarts.add(task)
                task.add_done_callback(self._restarts.discard)

    async def _restart_if_wanted(self, session: Session) -> None:
        """lifecycle.restart "on-crash": restart a crashed session after a backoff, unless
        its worker died FLAP_LIMIT times within FLAP_WINDOW (then it stays crashed)."""
        settings = await self.templates.settings(session.vm_id)
        if settings.lifecycle.restart != "on-crash":
            return
        now = time.monotonic()
        deaths = self._deaths.setdefault(session.id, collections.deque())
        deaths.append(now)
        while deaths and deaths[0] < now - FLAP_WINDOW:
            deaths.popleft()
        if len(deaths) >= FLAP_LIMIT:
            del self._deaths[session.id]
            note = (
                f"; left crashed: its worker died {len(deaths)} times within "
                f"{FLAP_WINDOW:g} s (the flap limit of lifecycle.restart on-crash)"
            )
            async with self._locks.hold(session.id):
                current = await self.get_session(session.id)
                if current.status == "crashed":
                    flapped = msgspec.structs.replace(
                        current, last_error=(current.last_error or "") + note
                    )
                    await self._store.update_session(flapped)
            logger.warning("session %s%s", session.id, note)
            return
        await asyncio.sleep(min(RESTART_BACKOFF * 2 ** (len(deaths) - 1), RESTART_BACKOFF_MAX))
        try:
            await self.restart_session(session.id)
        except VmctlError as exc:  # closed meanwhile, or its worker cannot start
            logger.warning("session %s was not restarted after its crash: %s", session.id, exc)
        else:
            logger.info("session %s restarted after its crash (lifecycle.restart)", session.id)

    async def _mark_crashed(self, live: LiveSession) -> None:
        async with self._locks.hold(live.session.id):
            if live.retired:
                return
            live.retired_because = WORKER_DIED
            self._live.pop(live.session.id, None)
            reason = self._crashed(live)
            crashed = msgspec.structs.replace(live.session, status="crashed", last_error=reason)
            await self._store.update_session(crashed)
            # %r: the reason carries the worker's stderr, one log line whatever it holds.
            logger.warning("session %s crashed: %r", live.session.id, reason)

    # -- executions --------------------------------------------------------

    async def execute_repl(self, session_id: str, code: str, wait: bool = True) -> Execution:
        live = await self._ready(session_id)
        execution = executions.new_execution(session_id, "repl", code=code)
        return await self._execute(live, execution, wait)

    async def run_file(
        self,
        session_id: str,
        path: str,
        args: dict[str, Any],
        env: dict[str, Any],
        wait: bool = True,
    ) -> Execution:
        cleaned = clean_relative_path(path)
        live = await self._ready(session_id)
        await asyncio.to_thread(existing_file, live.session.worktree_path, cleaned, session_id)
        execution = executions.new_execution(
            session_id, "run_file", path=cleaned, args=args, env=env
        )
        return await self._execute(live, execution, wait)

    async def _ready(self, session_id: str) -> LiveSession:
        live = self._live.get(session_id)
        if live is not None and not live.retired:
            return live
        # A change may be under way (a crash not yet written, a restart): its outcome.
        async with self._locks.hold(session_id):
            live = self._live.get(session_id)
            if live is not None and not live.retired:
                return live
            session = await self.get_session(session_id)
        raise Conflict(
            "SESSION_NOT_READY",
            f"Session is {session.status}",
            {"session_id": session_id, "status": session.status},
        )

    async def _execute(self, live: LiveSession, execution: Execution, wait: bool) -> Execution:
        """Run ``execution``; its final record, or (not ``wait``) its running one at once.

        Every error a waiting client would get before the code runs (busy, a store
        fault) a client that does not wait gets too; after that, the record says it.
        """
        if wait:
            finished, outcome = await self._run(live, execution, None)
            executions.raise_failure(finished, outcome)
            return finished
        accepted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(self._run_detached(live, execution, accepted))
        self._detached.add(task)
        task.add_done_callback(self._detached.discard)
        await accepted
        return execution

    async def _run_detached(
        self, live: LiveSession, execution: Execution, accepted: asyncio.Future[None]
    ) -> None:
        try:
            await self._run(live, execution, accepted)
        except Exception as exc:
            if not accepted.done():
                accepted.set_exception(exc)
            else:
                logger.exception("execution %s failed after it was accepted", execution.id)

    async def _run(
        self, live: LiveSession, execution: Execution, accepted: asyncio.Future[None] | None
    ) -> tuple[Execution, Outcome]:
        async with live.turn(execution.id):
            # From memory once read: Templates forgets an entry on every change of it.
            entry = await self.templates.catalog.entry(live.session.vm_id)
            template = entry.template if entry is not None else None
            settings = await self.templates.settings(live.session.vm_id)
            if accepted is None:  # the client is told only how it ended
                log = executions.start_recorded(self._store, execution)
            else:  # the client is answered the running record: it is stored first
                log = await executions.start_committed(self._store, execution)
                accepted.set_result(None)
            self._running[execution.id] = live
            try:
                finished, outcome = await executions.run_recorded(
                    log,
                    live,
                    execution,
                    executions.runtime_options(template, settings),
                    executions.worker_limits(settings, live.mem_mb),
                    self._metrics,
                )
            finally:
                del self._running[execution.id]
        if not live.handle.alive:
            await self._mark_crashed(live)
        return finished, outcome
