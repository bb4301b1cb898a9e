"""What ``AsyncClient.session()`` gives: :mod:`vmctl.client.handles`, awaited."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Literal, Self, overload

from vmctl.api.models import Event, Execution, Session
from vmctl.client.errors import ClientError
from vmctl.client.runs import Run

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from vmctl.client.aio import AsyncClient


class AsyncSessionHandle:
    """One session the client opened; ``async with`` (or :meth:`close`) closes it."""

    def __init__(self, client: AsyncClient, record: Session) -> None:
        self.client = client
        self.record = record  # as it was created (or last closed)

    @property
    def id(self) -> str:
        return self.record.id

    def __repr__(self) -> str:
        return f"<AsyncSessionHandle {self.id} {self.record.status}>"

    @overload
    async def repl(self, code: str, *, wait: Literal[True] = True) -> Run: ...
    @overload
    async def repl(self, code: str, *, wait: Literal[False]) -> AsyncRunningExecution: ...

    async def repl(self, code: str, *, wait: bool = True) -> Run | AsyncRunningExecution:
        """Evaluate ``code``; its :class:`Run` once it ended, or with ``wait=False`` the
        :class:`AsyncRunningExecution` at once, to iterate, wait for or cancel."""
        started = await self.client.repl(self.id, code, wait=False)
        running = AsyncRunningExecution(self.client, started)
        return await running.wait() if wait else running

    @overload
    async def run_file(
        self,
        path: str,
        args: dict[str, Any] | None = None,
        env: dict[str, Any] | None = None,
        *,
        wait: Literal[True] = True,
    ) -> Run: ...
    @overload
    async def run_file(
        self,
        path: str,
        args: dict[str, Any] | None = None,
        env: dict[str, Any] | None = None,
        *,
        wait: Literal[False],
    ) -> AsyncRunningExecution: ...

    async def run_file(
        self,
        path: str,
        args: dict[str, Any] | None = None,
        env: dict[str, Any] | None = None,
        *,
        wait: bool = True,
    ) -> Run | AsyncRunningExecution:
        """Run the file at ``path`` (relative to the worktree), as :meth:`repl` runs code."""
        started = await self.client.run_file(self.id, path, args, env, wait=False)
        running = AsyncRunningExecution(self.client, started)
        return await running.wait() if wait else running

    async def refresh(self) -> Session:
        """The session's record now (its status, its worker)."""
        self.record = await self.client.get_session(self.id)
        return self.record

    async def close(self) -> Session:
        """Close the session (stops its worker; a no-op when it is closed already)."""
        self.record = await self.client.close_session(self.id)
        return self.record

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is None:
            await self.close()
            return
        # Leaving on an error: the session is still closed, but a failure to close it
        # must not hide the error that is leaving.
        with contextlib.suppress(ClientError):
            await self.close()


class AsyncRunningExecution:
    """An execution started without waiting: ``async for`` its events as they happen,
    :meth:`wait` for its :class:`Run`, or :meth:`cancel` it."""

    def __init__(self, client: AsyncClient, started: Execution) -> None:
        self.client = client
        self.started = started  # the record as it started (``running``, usually)
        self.events: list[Event] = []  # the events received so far
        self.execution: Execution | None = None  # the final record, once it ended

    @property
    def id(self) -> str:
        return self.started.id

    def __repr__(self) -> str:
        status = self.execution.status if self.execution else "running"
        return f"<AsyncRunningExecution {self.id} {status}, {len(self.events)} events>"

    async def __aiter__(self) -> AsyncIterator[Event]:
        """The events after the last one received, as they happen, to the end."""
        if self.execution is not None:
            return
        after = self.events[-1].seq if self.events else 0
        async with self.client.stream_events(self.id, after) as stream:
            async for event in stream:
                self.events.append(event)
                yield event
            self.execution = stream.execution

    async def wait(self) -> Run:
        """Follow the execution to its end; its record and every event."""
        async for _ in self:
            pass
        assert self.execution is not None, "a stream ends with the record or raises"
        return Run(self.execution, list(self.events))

    async def cancel(self) -> Run:
        """Stop the execution (the session keeps its state); its :class:`Run` once ended."""
        await self.client.cancel_execution(self.id)
        return await self.wait()
