"""The session manager: the one owner of live workers and of session state.

Life of a session, top to bottom in this file:

- ``create_session`` writes the row as ``starting``, spawns the worker, runs
  libraries and startup files, writes ``ready`` and starts a watcher.
- ``execute`` runs one execution at a time per session: the row is written as
  ``running`` before the worker sees the request, and finished (record and
  events in one transaction) before the answer leaves.
- The watcher notices the worker's death the moment it happens and writes
  ``crashed`` with the reason; ``restart`` gives a crashed (or ready) session a
  fresh worker; ``close_session`` stops the worker and writes ``closed``.
- ``aclose`` (daemon shutdown) stops every worker at once.

Every state change is written to the store before it is reported.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any, Literal

import msgspec

from vmctl.protocol import ExecLimits, ExecRepl, RunFile, RunStartup, RuntimeOptions
from vmctl.supervisor import recording
from vmctl.supervisor.config import DaemonConfig
from vmctl.supervisor.errors import ApiError, not_found
from vmctl.supervisor.forkserver import ForkServer
from vmctl.supervisor.models import Execution, Session, Settings, Template, new_id, utc_now
from vmctl.supervisor.outcome import Limits, Outcome, cancelled, crashed
from vmctl.supervisor.paths import clean_relative_path, resolve_in_worktree
from vmctl.supervisor.recorder import ExecutionRecorder
from vmctl.supervisor.store import Store
from vmctl.supervisor.worker_handle import SpawnSpec, WorkerHandle, WorkerStartError, open_worker

logger = logging.getLogger("vmctl.sessions")

# How long daemon shutdown waits for every worker's kill ladder together.
SHUTDOWN_TIMEOUT = 10.0
# How much of a dead worker's stderr goes into the session's last_error.
STDERR_IN_REASON = 2000


class LiveSession:
    """A session whose worker this daemon runs."""

    def __init__(self, session: Session, handle: WorkerHandle, mem_mb: int) -> None:
        self.session = session  # the row as last written
        self.handle = handle
        self.mem_mb = mem_mb  # applied at worker start; later changes wait for a restart
        self.running: str | None = None  # id of the execution in flight
        self.idle = asyncio.Event()
        self.idle.set()
        # Set once this worker's end is accounted for (closed, restarted or crashed).
        self.retired = False
        self.watcher: asyncio.Task[None] | None = None


class StartupFailed(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class SessionManager:
    """Sessions and their workers; built and closed by the app's lifespan."""

    def __init__(
        self, store: Store, config: DaemonConfig, forkserver: ForkServer | None = None
    ) -> None:
        self._store = store
        self._config = config
        self._forkserver = forkserver  # the lifespan's: it starts and closes it
        self._live: dict[str, LiveSession] = {}
        self._locks: collections.defaultdict[str, asyncio.Lock] = collections.defaultdict(
            asyncio.Lock
        )
        self._starting = 0
        self._accepting = True

    # -- queries -----------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        alive = sorted(sid for sid, live in self._live.items() if live.handle.alive)
        return {
            "active_sessions": len(alive),
            "active_session_ids": alive,
            "busy_sessions": sum(1 for live in self._live.values() if live.running),
            "starting_sessions": self._starting,
            "max_sessions": self._config.max_sessions,
            "workers": {sid: self._live[sid].handle.pid for sid in alive},
        }

    async def get_session(self, session_id: str) -> Session:
        session = await self._store.get_session(session_id)
        if session is None:
            raise not_found("session", session_id)
        return session

    # -- lifecycle ---------------------------------------------------------

    async def create_session(
        self, template_id: str, workspace_id: str, base_commit_oid: str, worktree_path: str
    ) -> Session:
        if not self._accepting:
            raise ApiError("CAPACITY_EXCEEDED", "The daemon is shutting down")
        template = await self._store.get_template(template_id)
        if template is None:
            raise not_found("template", template_id)
        with self._place():
            session = Session(
                id=new_id(),
                vm_id=template.id,
                workspace_id=workspace_id,
                base_commit_oid=base_commit_oid,
                worktree_path=worktree_path,
                status="starting",
                created_at=utc_now(),
            )
            await self._store.insert_session(session)
            async with self._locks[session.id]:
                return await self._start(session, template, restarts=0)

    async def restart_session(self, session_id: str) -> Session:
        if not self._accepting:
            raise ApiError("CAPACITY_EXCEEDED", "The daemon is shutting down")
        async with self._locks[session_id]:
            session = await self.get_session(session_id)
            if session.status == "closed":
                raise ApiError(
                    "SESSION_NOT_READY",
                    "A closed session cannot be restarted",
                    {"session_id": session_id, "status": session.status},
                )
            await self._retire(session_id)
            template = await self._store.get_template(session.vm_id)
            if template is None:
                raise not_found("template", session.vm_id)
            restarts = int((session.runtime_meta or {}).get("restarts", 0)) + 1
            with self._place():
                starting = msgspec.structs.replace(session, status="starting", last_error=None)
                await self._store.update_session(starting)
                return await self._start(starting, template, restarts)

    async def close_session(self, session_id: str) -> Session:
        async with self._locks[session_id]:
            session = await self.get_session(session_id)
            if session.status == "closed":
                return session
            await self._retire(session_id)
            closed = msgspec.structs.replace(session, status="closed", closed_at=utc_now())
            await self._store.update_session(closed)
            return closed

    async def aclose(self, reason: str = "the daemon shut down") -> None:
        """Stop every worker at once; their sessions become crashed (restartable).

        Called by the server before it drains requests, and again by the
        lifespan for anything that started in between.
        """
        self._accepting = False
        ids = list(self._live)
        if not ids:
            return
        logger.info("shutdown: closing %d session(s)", len(ids))
        try:
            async with asyncio.timeout(SHUTDOWN_TIMEOUT):
                await asyncio.gather(*(self._stop_for_shutdown(sid, reason) for sid in ids))
        except TimeoutError:
            logger.error("shutdown: sessions did not close within %ss", SHUTDOWN_TIMEOUT)
        logger.info("shutdown: all workers stopped")

    async def _stop_for_shutdown(self, session_id: str, reason: str) -> None:
        live = self._live.get(session_id)
        if live is None:
            return
        await self._retire(session_id)
        crashed = msgspec.structs.replace(live.session, status="crashed", last_error=reason)
        await self._store.update_session(crashed)

    @contextlib.contextmanager
    def _place(self) -> Iterator[None]:
        """Hold one of the ``max_sessions`` places while a worker starts (taken at once)."""
        if len(self._live) + self._starting >= self._config.max_sessions:
            raise ApiError(
                "CAPACITY_EXCEEDED",
                f"The daemon runs its maximum of {self._config.max_sessions} sessions",
                {"max_sessions": self._config.max_sessions},
            )
        self._starting += 1
        try:
            yield
        finally:
            self._starting -= 1

    async def _start(self, session: Session, template: Template, restarts: int) -> Session:
        """Spawn and initialise a worker for ``session`` (held lock); ready or raise."""
        settings = await self._settings(template.id)
        try:
            handle = await self._spawn_and_init(session, template, settings)
        except StartupFailed as exc:
            crashed = msgspec.structs.replace(session, status="crashed", last_error=exc.reason)
            await self._store.update_session(crashed)
            raise ApiError(exc.code, exc.reason, {"session_id": session.id}) from None
        hello = handle.hello
        meta: dict[str, Any] = {
            "pid": handle.pid,
            "engine": hello.engine,
            "engine_version": hello.engine_version,
            "protocol_version": hello.protocol,
            "soft_interrupt": hello.soft_interrupt,
            "mem_mb": settings.limits.mem_mb,
            "restarts": restarts,
        }
        ready = msgspec.structs.replace(session, status="ready", runtime_meta=meta)
        try:
            await self._store.update_session(ready)
        except BaseException:
            await handle.aclose()
            raise
        live = LiveSession(ready, handle, settings.limits.mem_mb)
        self._live[session.id] = live
        live.watcher = asyncio.create_task(self._watch(live), name=f"watch-{session.id}")
        return ready

    async def _spawn_and_init(
        self, session: Session, template: Template, settings: Settings
    ) -> WorkerHandle:
        argv = self._config.worker_command(template.engine)
        if argv is None:
            raise StartupFailed("STARTUP_FAILED", f"Unknown engine {template.engine!r}")
        startup = await self._store.list_startup_files(template.id)
        files = tuple(f.path for f in sorted(startup, key=lambda f: (f.order_index, f.path)))
        libraries = tuple(self._config.library_path(name) for name in template.libraries)
        await asyncio.to_thread(self._check_startup, session.worktree_path, files, libraries)
        log_path = self._config.worker_log_path(session.id)
        await asyncio.to_thread(os.makedirs, os.path.dirname(log_path), exist_ok=True)
        spec = SpawnSpec(
            argv=argv,
            cwd=session.worktree_path,
            mem_mb=settings.limits.mem_mb,
            stderr_log=log_path,
            handshake_timeout=self._config.handshake_timeout,
        )
        try:
            handle = await open_worker(spec, self._forkserver)
        except WorkerStartError as exc:
            raise StartupFailed("STARTUP_FAILED", f"Worker failed to start: {exc}") from None
        if not libraries and not files:
            return handle  # nothing to run: spare the round trip
        request = RunStartup(
            id=0,
            limits=_exec_limits(settings, settings.limits.mem_mb),
            libraries=libraries,
            files=files,
            runtime=_runtime_options(template, settings),
        )
        try:
            outcome = await handle.execute(request, _limits(settings, settings.limits.mem_mb))
        except BaseException:
            await handle.aclose()
            raise
        if outcome.status != "ok":
            await handle.aclose()
            code = "INVALID_PATH" if outcome.code == "INVALID_PATH" else "STARTUP_FAILED"
            raise StartupFailed(code, f"Startup failed: {outcome.message or outcome.status}")
        return handle

    @staticmethod
    def _check_startup(worktree: str, files: tuple[str, ...], libraries: tuple[str, ...]) -> None:
        """Refuse a startup path that leaves the worktree, or a missing library (sync)."""
        for path in files:
            try:
                resolve_in_worktree(worktree, path)
            except ApiError as exc:
                raise StartupFailed("INVALID_PATH", exc.message) from None
        for library in libraries:
            if not os.path.isfile(library):
                name = os.path.basename(library).removesuffix(".js")
                raise StartupFailed(
                    "STARTUP_FAILED", f"Library {name!r} not found (expected {library})"
                )

    async def _retire(self, session_id: str) -> None:
        """Stop this session's worker, if it runs, and wait for its execution to be recorded."""
        live = self._live.pop(session_id, None)
        if live is None:
            return
        live.retired = True
        await live.handle.aclose()
        await live.idle.wait()
        if live.watcher is not None:
            await live.watcher

    async def _watch(self, live: LiveSession) -> None:
        await live.handle.wait_exited()
        # Retired on purpose (close, restart, shutdown): whoever did it holds the
        # session lock and is waiting for this task, so it must not take the lock.
        if not live.retired:
            await self._mark_crashed(live)

    async def _mark_crashed(self, live: LiveSession) -> None:
        async with self._locks[live.session.id]:
            if live.retired:
                return
            live.retired = True
            self._live.pop(live.session.id, None)
            reason = live.handle.exit_reason or "the worker process exited"
            tail = live.handle.stderr_tail().strip()
            if tail:
                reason = f"{reason}; stderr: {tail[-STDERR_IN_REASON:]}"
            crashed = msgspec.structs.replace(live.session, status="crashed", last_error=reason)
            await self._store.update_session(crashed)
            logger.warning("session %s crashed: %s", live.session.id, reason)

    # -- executions --------------------------------------------------------

    async def execute_repl(self, session_id: str, code: str) -> Execution:
        live = await self._ready(session_id)
        return await self._execute(live, "repl", code=code)

    async def run_file(
        self, session_id: str, path: str, args: dict[str, Any], env: dict[str, Any]
    ) -> Execution:
        cleaned = clean_relative_path(path)
        live = await self._ready(session_id)
        real = await asyncio.to_thread(resolve_in_worktree, live.session.worktree_path, cleaned)
        if not await asyncio.to_thread(os.path.isfile, real):
            raise ApiError(
                "FILE_NOT_FOUND",
                f"File {cleaned!r} not found in the worktree",
                {"path": cleaned, "session_id": session_id},
            )
        return await self._execute(live, "run_file", path=cleaned, args=args, env=env)

    async def _ready(self, session_id: str) -> LiveSession:
        live = self._live.get(session_id)
        if live is not None and not live.retired:
            return live
        session = await self.get_session(session_id)
        raise ApiError(
            "SESSION_NOT_READY",
            f"Session is {session.status}",
            {"session_id": session_id, "status": session.status},
        )

    async def _execute(
        self,
        live: LiveSession,
        kind: Literal["repl", "run_file"],
        *,
        code: str | None = None,
        path: str | None = None,
        args: dict[str, Any] | None = None,
        env: dict[str, Any] | None = None,
    ) -> Execution:
        if live.running is not None:
            raise ApiError(
                "SESSION_BUSY",
                "Session is busy",
                {"session_id": live.session.id, "execution_id": live.running},
            )
        execution = Execution(
            id=new_id(),
            session_id=live.session.id,
            kind=kind,
            status="running",
            started_at=utc_now(),
            input=code,
            path=path,
            args=args or {},
            env=env or {},
        )
        live.running = execution.id
        live.idle.clear()
        try:
            finished, outcome = await self._run_recorded(live, execution)
        finally:
            live.running = None
            live.idle.set()
        if not live.handle.alive:
            await self._mark_crashed(live)
        failure = recording.failure_of(finished, outcome)
        if failure is not None:
            raise failure
        return finished

    async def _run_recorded(
        self, live: LiveSession, execution: Execution
    ) -> tuple[Execution, Outcome]:
        template = await self._store.get_template(live.session.vm_id)
        settings = await self._settings(live.session.vm_id)
        await self._store.insert_execution(execution)
        runtime = _runtime_options(template, settings) if template else RuntimeOptions()
        exec_limits = _exec_limits(settings, live.mem_mb)
        request: ExecRepl | RunFile
        if execution.kind == "repl":
            request = ExecRepl(
                id=0, code=execution.input or "", limits=exec_limits, runtime=runtime
            )
        else:
            request = RunFile(
                id=0,
                path=execution.path or "",
                limits=exec_limits,
                args=execution.args,
                env=execution.env,
                runtime=runtime,
            )
        echo = execution.input if execution.kind == "repl" else None
        limits = _limits(settings, live.mem_mb)
        try:
            if live.retired or not live.handle.alive:
                # Closed, or dead, while the row was written: the worker never sees it.
                outcome = _never_started(live, limits, echo)
            else:
                outcome = await live.handle.execute(request, limits, echo=echo)
        except BaseException:
            # Cancelled from outside (daemon shutdown): never leave a running record.
            await asyncio.shield(self._store.finish_execution(_cancelled(execution), []))
            raise
        finished, events = recording.finished_execution(execution, outcome)
        await asyncio.shield(self._store.finish_execution(finished, events))
        return finished, outcome

    async def _settings(self, template_id: str) -> Settings:
        settings = await self._store.get_settings(template_id)
        return settings if settings is not None else Settings(vm_id=template_id)


def _limits(settings: Settings, mem_mb: int) -> Limits:
    limits = settings.limits
    return Limits(
        cpu_ms=limits.cpu_ms,
        wall_ms=limits.wall_ms,
        mem_mb=mem_mb,
        max_events=limits.max_events,
        max_output_kb=limits.max_output_kb,
    )


def _exec_limits(settings: Settings, mem_mb: int) -> ExecLimits:
    return ExecLimits(cpu_ms=settings.limits.cpu_ms, wall_ms=settings.limits.wall_ms, mem_mb=mem_mb)


def _runtime_options(template: Template, settings: Settings) -> RuntimeOptions:
    return RuntimeOptions(
        esm=settings.runtime.esm,
        strict=settings.runtime.strict,
        extensions=tuple(settings.resolver.extensions),
        modules=tuple(template.exposed_modules),
    )


def _never_started(live: LiveSession, limits: Limits, echo: str | None) -> Outcome:
    """The outcome of an execution whose worker was gone before it could be sent."""
    recorder = ExecutionRecorder(limits)
    if echo is not None:
        recorder.record_echo(echo)
    if live.retired:
        recorder.end(cancelled("the session was closed before it started"))
    else:
        exit_reason = live.handle.exit_reason or "exited"
        recorder.end(crashed(exit_reason, live.handle.stderr_tail()))
    return recorder.outcome(0.0, 0.0)


def _cancelled(execution: Execution) -> Execution:
    return msgspec.structs.replace(
        execution,
        status="cancelled",
        ended_at=utc_now(),
        error={"code": "CANCELLED", "message": "The daemon stopped while it ran"},
    )
