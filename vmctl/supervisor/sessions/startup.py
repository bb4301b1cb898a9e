"""A session's worker, started and initialised: its libraries and startup files run.

:func:`start_worker` returns a worker ready for the session's first execution,
or raises :class:`StartupFailed` with the reason the session's ``last_error``
will hold. Nothing is left running when it raises. Given the warm pool
(pool.py), it first claims a waiting worker for the same key; the libraries and
startup files then run in it exactly as in a fresh one, and a claimed worker
that turns out to be dead is replaced by a fresh start.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from vmctl.api.models import Limits, Session, Settings, StartupFile, Template
from vmctl.protocol import MAX_LINE_BYTES, Library, RunStartup
from vmctl.supervisor.config import DaemonConfig
from vmctl.supervisor.sessions.errors import Invalid, StartupFailed
from vmctl.supervisor.sessions.execution import runtime_options, worker_limits
from vmctl.supervisor.sessions.paths import resolve_in_worktree
from vmctl.supervisor.sessions.pool import Waiting, WarmPool
from vmctl.supervisor.workers import (
    Job,
    Launcher,
    SpawnSpec,
    WorkerHandle,
    WorkerStartError,
    open_worker,
)

MIB = 1024 * 1024
# Libraries travel in one request frame, whose lines are capped at MAX_LINE_BYTES.
MAX_LIBRARY_BYTES = MAX_LINE_BYTES // 2


async def _nothing() -> None:
    pass


async def start_worker(
    config: DaemonConfig,
    launcher: Launcher,
    session: Session,
    template: Template,
    settings: Settings,
    startup: Sequence[StartupFile],
    pool: WarmPool | None = None,
    starting: Callable[[], Awaitable[None]] = _nothing,
) -> WorkerHandle:
    """Start ``session``'s worker (or claim one of ``pool``) and run ``template``'s
    libraries and ``startup`` files; ``starting`` is awaited before anything that takes a
    while (a fresh worker's start, the startup's run), and only then."""
    argv = config.worker_command(template.engine)
    if argv is None:
        raise StartupFailed("STARTUP_FAILED", f"Unknown engine {template.engine!r}")
    files = tuple(f.path for f in sorted(startup, key=lambda f: (f.order_index, f.path)))
    libraries = tuple(config.library_path(name) for name in template.libraries)
    log_path = config.worker_log_path(session.id)
    spec = SpawnSpec(
        argv=argv,
        cwd=session.worktree_path,
        mem_mb=settings.limits.mem_mb,
        stderr_log=log_path,
        handshake_timeout=config.handshake_timeout,
    )
    claimed = pool.claim(template.id, spec) if pool is not None else None
    stands_in = functools.partial(pool.stands_in, claimed, spec) if claimed and pool else None
    try:
        sources, adopted = await asyncio.to_thread(
            _prepare, session.worktree_path, files, libraries, log_path, claimed, stands_in
        )
    except BaseException:
        if pool is not None and claimed is not None:
            pool.discard(claimed)
        raise
    job = functools.partial(
        RunStartup, libraries=sources, files=files, runtime=runtime_options(template, settings)
    )
    limits = worker_limits(settings, settings.limits.mem_mb)
    nothing_to_run = not libraries and not files
    if pool is not None:
        if claimed is not None and not adopted:
            pool.discard(claimed)
        elif claimed is not None:
            pool.adopted()
            if nothing_to_run and claimed.handle.alive:
                return claimed.handle
            try:
                await starting()
            except BaseException:
                pool.discard(claimed)
                raise
            if handle := await _initialised(claimed.handle, job, limits, claimed=True):
                return handle
        pool.make_room()  # a fresh worker needs a place: waiting ones give theirs up first
    await starting()
    try:
        handle = await open_worker(spec, launcher)
    except WorkerStartError as exc:
        raise StartupFailed("STARTUP_FAILED", f"Worker failed to start: {exc}") from None
    if nothing_to_run:
        return handle  # spare the round trip
    fresh = await _initialised(handle, job, limits, claimed=False)
    assert fresh is not None  # only a claimed worker's death is None
    return fresh


async def _initialised(
    handle: WorkerHandle, job: Job, limits: Limits, *, claimed: bool
) -> WorkerHandle | None:
    """``handle`` once its ``RunStartup`` ran; StartupFailed with the reason if it failed.

    A ``claimed`` worker that is dead, or dies or is killed in it, is None: a fresh
    worker then runs the startup and says how it ends.
    """
    if not handle.alive:
        await handle.aclose()
        return None
    try:
        outcome = await handle.execute(job, limits)
    except BaseException:
        await handle.aclose()
        raise
    if outcome.status == "ok":
        return handle
    alive = handle.alive
    await handle.aclose()
    if claimed and not alive:
        return None
    code = "INVALID_PATH" if outcome.code == "INVALID_PATH" else "STARTUP_FAILED"
    raise StartupFailed(code, f"Startup failed: {outcome.message or outcome.status}")


def runtime_meta(handle: WorkerHandle, settings: Settings, restarts: int) -> dict[str, Any]:
    """What a ready session's ``runtime_meta`` says of its worker."""
    hello = handle.hello
    return {
        "pid": handle.pid,
        "engine": hello.engine,
        "engine_version": hello.engine_version,
        "protocol_version": hello.protocol,
        "soft_interrupt": hello.soft_interrupt,
        "mem_mb": settings.limits.mem_mb,
        "restarts": restarts,
        "sandbox": list(handle.sandbox),
    }


def _prepare(
    worktree: str,
    files: tuple[str, ...],
    libraries: tuple[str, ...],
    log_path: str,
    claimed: Waiting | None,
    stands_in: Callable[[], bool] | None,
) -> tuple[tuple[Library, ...], bool]:
    """Check the startup files, read the libraries, make the log's directory (sync); and
    adopt a ``claimed`` worker: the libraries, and whether it was adopted.

    A claimed worker is adopted when it ``stands_in`` for a fresh one (the jail it has is
    the one a worker started now would get), its directory is still the one ``worktree``
    names (the path may be a symlink, changed since the worker was forked in its target)
    and its log could be made the session's.
    """
    sources = _check_startup(worktree, files, libraries)
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    if claimed is None or stands_in is None or not stands_in():
        return sources, False
    try:
        here, there = os.stat(worktree), os.stat(f"/proc/{claimed.handle.pid}/cwd")
        if (here.st_dev, here.st_ino) != (there.st_dev, there.st_ino):
            return sources, False
        os.rename(claimed.log_path, log_path)  # the daemon's open descriptor follows the file
    except OSError:
        return sources, False
    return sources, True


def _check_startup(
    worktree: str, files: tuple[str, ...], libraries: tuple[str, ...]
) -> tuple[Library, ...]:
    """Refuse a startup path that leaves the worktree; read the libraries (sync).

    The daemon reads them, not the worker: they live in its home, which the jailed
    worker can neither open (Landlock) nor, once it has dropped its uid, search.
    """
    for path in files:
        try:
            resolve_in_worktree(worktree, path)
        except Invalid as exc:
            raise StartupFailed("INVALID_PATH", exc.message) from None
    sources = []
    total = 0
    for library in libraries:
        name = os.path.basename(library).removesuffix(".js")
        try:
            with open(library, encoding="utf-8", errors="replace") as file:
                source = file.read(MAX_LIBRARY_BYTES + 1)
        except FileNotFoundError:
            raise StartupFailed(
                "STARTUP_FAILED", f"Library {name!r} not found (expected {library})"
            ) from None
        except OSError as exc:
            raise StartupFailed(
                "STARTUP_FAILED", f"Library {name!r} cannot be read: {exc.strerror}"
            ) from None
        total += len(source.encode())
        if total > MAX_LIBRARY_BYTES:
            raise StartupFailed(
                "STARTUP_FAILED",
                f"A template's libraries may total {MAX_LIBRARY_BYTES // MIB} MiB; "
                f"with {name!r} they are larger",
            )
        sources.append(Library(library, source))
    return tuple(sources)
