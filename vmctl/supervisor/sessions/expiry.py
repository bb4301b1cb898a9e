"""lifecycle.idle_timeout_ms and max_lifetime_ms: closing the sessions whose time is up.

One task sleeps until the earliest moment a live session could be due and looks again.
What can make that moment earlier (a session that became ready, a template's settings
written) wakes it. An execution only moves its session's moment later, so nothing on
the execution's path has to tell it: woken at the old moment, it finds the new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import NamedTuple

from vmctl.api.models import Lifecycle
from vmctl.supervisor.metrics import LifecycleTimeout
from vmctl.supervisor.sessions.live import LiveSession

logger = logging.getLogger("vmctl.sessions")

# After a sweep or a close failed (the store could not read or write): the next try.
RETRY_SECONDS = 1.0


class Expired(NamedTuple):
    timeout: LifecycleTimeout  # which one ran out
    reason: str  # the closed session's last_error


def due(live: LiveSession, lifecycle: Lifecycle, now: float) -> tuple[float | None, Expired | None]:
    """Why ``live`` is to be closed at ``now`` (monotonic), or else the earliest moment
    it could be (``None``: never, as the settings stand).

    A running execution keeps its session from being idle: it may be idle for the whole
    timeout at the earliest once it ends, so that is the moment to look again.
    """
    moments = []
    if lifecycle.max_lifetime_ms is not None:
        end = live.born + lifecycle.max_lifetime_ms / 1000
        if now >= end:
            reason = (
                f"closed at the end of its lifetime of {lifecycle.max_lifetime_ms} ms"
                " (lifecycle.max_lifetime_ms)"
            )
            return None, Expired("max_lifetime", reason)
        moments.append(end)
    if lifecycle.idle_timeout_ms is not None:
        timeout = lifecycle.idle_timeout_ms / 1000
        if live.busy:
            moments.append(now + timeout)
        elif now >= live.idle_since + timeout:
            reason = (
                f"closed after {lifecycle.idle_timeout_ms} ms without an execution"
                " (lifecycle.idle_timeout_ms)"
            )
            return None, Expired("idle_timeout", reason)
        else:
            moments.append(live.idle_since + timeout)
    return min(moments, default=None), None


def has_timeouts(lifecycle: Lifecycle) -> bool:
    return lifecycle.idle_timeout_ms is not None or lifecycle.max_lifetime_ms is not None


class Expiry:
    """Hands each live session that is due to ``close`` (which checks again, under the
    session's lock, and closes it), one close per session at a time.

    ``sessions`` lists the live sessions; ``lifecycle`` reads a template's lifecycle.
    """

    def __init__(
        self,
        sessions: Callable[[], Iterable[LiveSession]],
        lifecycle: Callable[[str], Awaitable[Lifecycle]],
        close: Callable[[str, Lifecycle], Awaitable[None]],
    ) -> None:
        self._sessions = sessions
        self._lifecycle = lifecycle
        self._close = close
        self._changed = asyncio.Event()
        self._closing: dict[str, asyncio.Task[None]] = {}
        # Sessions whose close failed (the store refused it) -> when to try again.
        self._retry_at: dict[str, float] = {}

    def changed(self) -> None:
        """A moment may have come earlier: look again now."""
        self._changed.set()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Close sessions as they are due until the block ends; then wait for the closes
        under way (each ends once its worker is stopped and its state written)."""
        task = asyncio.create_task(self._run(), name="expiry")
        try:
            yield
        finally:
            task.cancel()
            await asyncio.wait([task])
            if self._closing:
                await asyncio.wait(list(self._closing.values()))

    async def _run(self) -> None:
        while True:
            self._changed.clear()
            try:
                wake = await self._sweep()
            except Exception:
                logger.exception("lifecycle timeouts: a sweep failed; again in %ss", RETRY_SECONDS)
                wake = time.monotonic() + RETRY_SECONDS
            timeout = None if wake is None else max(0.0, wake - time.monotonic())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._changed.wait()

    async def _sweep(self) -> float | None:
        """Start the closes that are due; the earliest moment one of the others could be."""
        moments: list[float] = []
        sessions = list(self._sessions())
        for gone in self._retry_at.keys() - {live.session.id for live in sessions}:
            del self._retry_at[gone]
        for live in sessions:
            session_id = live.session.id
            if session_id in self._closing:
                continue
            retry_at = self._retry_at.get(session_id, 0.0)
            if retry_at > time.monotonic():
                moments.append(retry_at)
                continue
            lifecycle = await self._lifecycle(live.session.vm_id)
            at, expired = due(live, lifecycle, time.monotonic())
            if expired is not None:
                task = asyncio.create_task(self._closed(session_id, lifecycle))
                self._closing[session_id] = task
            elif at is not None:
                moments.append(at)
        return min(moments, default=None)

    async def _closed(self, session_id: str, lifecycle: Lifecycle) -> None:
        try:
            await self._close(session_id, lifecycle)
        except Exception as exc:
            self._retry_at[session_id] = time.monotonic() + RETRY_SECONDS
            logger.error(
                "lifecycle timeouts: session %s was not closed (again in %ss): %s",
                session_id,
                RETRY_SECONDS,
                exc,
            )
        else:
            self._retry_at.pop(session_id, None)
        finally:
            del self._closing[session_id]
            # It may still be live (an execution began before the close took the lock):
            # its next moment is to be found.
            self.changed()
