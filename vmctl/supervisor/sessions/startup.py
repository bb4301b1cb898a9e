"""A session's worker, started and initialised: its libraries and startup files run.

:func:`start_worker` returns a worker ready for the session's first execution,
or raises :class:`StartupFailed` with the reason the session's ``last_error``
will hold. Nothing is left running when it raises.
"""

from __future__ import annotations

import asyncio
import functools
import os
from typing import Any

from vmctl.api.models import Session, Settings, StartupFile, Template
from vmctl.protocol import MAX_LINE_BYTES, Library, RunStartup
from vmctl.supervisor.config import DaemonConfig
from vmctl.supervisor.sessions.errors import Invalid, StartupFailed
from vmctl.supervisor.sessions.execution import runtime_options, worker_limits
from vmctl.supervisor.sessions.paths import resolve_in_worktree
from vmctl.supervisor.workers import (
    Launcher,
    SpawnSpec,
    WorkerHandle,
    WorkerStartError,
    open_worker,
)

MIB = 1024 * 1024
# Libraries travel in one request frame, whose lines are capped at MAX_LINE_BYTES.
MAX_LIBRARY_BYTES = MAX_LINE_BYTES // 2


async def start_worker(
    config: DaemonConfig,
    launcher: Launcher,
    session: Session,
    template: Template,
    settings: Settings,
    startup: list[StartupFile],
) -> WorkerHandle:
    """Start ``session``'s worker and run ``template``'s libraries and ``startup`` files."""
    argv = config.worker_command(template.engine)
    if argv is None:
        raise StartupFailed("STARTUP_FAILED", f"Unknown engine {template.engine!r}")
    files = tuple(f.path for f in sorted(startup, key=lambda f: (f.order_index, f.path)))
    libraries = tuple(config.library_path(name) for name in template.libraries)
    sources = await asyncio.to_thread(_check_startup, session.worktree_path, files, libraries)
    log_path = config.worker_log_path(session.id)
    await asyncio.to_thread(os.makedirs, os.path.dirname(log_path), exist_ok=True)
    spec = SpawnSpec(
        argv=argv,
        cwd=session.worktree_path,
        mem_mb=settings.limits.mem_mb,
        stderr_log=log_path,
        handshake_timeout=config.handshake_timeout,
    )
    try:
        handle = await open_worker(spec, launcher)
    except WorkerStartError as exc:
        raise StartupFailed("STARTUP_FAILED", f"Worker failed to start: {exc}") from None
    if not libraries and not files:
        return handle  # nothing to run: spare the round trip
    job = functools.partial(
        RunStartup,
        libraries=sources,
        files=files,
        runtime=runtime_options(template, settings),
    )
    try:
        outcome = await handle.execute(job, worker_limits(settings, settings.limits.mem_mb))
    except BaseException:
        await handle.aclose()
        raise
    if outcome.status != "ok":
        await handle.aclose()
        code = "INVALID_PATH" if outcome.code == "INVALID_PATH" else "STARTUP_FAILED"
        raise StartupFailed(code, f"Startup failed: {outcome.message or outcome.status}")
    return handle


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
