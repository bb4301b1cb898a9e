"""What ``Client.session()`` gives: a session to run code in, and executions to follow.

These are conveniences over the client's flat methods, for programs that run code and
read what it did: :meth:`SessionHandle.repl` returns a :class:`~vmctl.client.Run`
(record, events, value, console lines) whatever the JavaScript did, and raises only
when the request itself fails (a busy session, a transport error).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Literal, Self, overload

from vmctl.api.models import Event, Execution, Session
from vmctl.client.errors import ClientError
from vmctl.client.runs import Run

if TYPE_CHECKING:
    from collections.abc import Iterator

    from vmctl.client.sync import Client


class SessionHandle:
    """One session the client opened; ``with`` (or :meth:`close`) closes it."""

    def __init__(self, client: Client, record: Session) -> None:
        self.client = client
        self.record = record  # as it was created (or last closed)

    @property
    def id(self) -> str:
        return self.record.id

    def __repr__(self) -> str:
        return f"<SessionHandle {self.id} {self.record.status}>"

    @overload
    def repl(self, code: str, *, wait: Literal[True] = True) -> Run: ...
    @overload
    def repl(self, code: str, *, wait: Literal[False]) -> RunningExecution: ...

    def repl(self, code: str, *, wait: bool = True) -> Run | RunningExecution:
        """Evaluate ``code``; its :class:`Run` once it ended, or with ``wait=False`` the
        :class:`RunningExecution` at once, to iterate, wait for or cancel."""
        running = RunningExecution(self.client, self.client.repl(self.id, code, wait=False))
        return running.wait() if wait else running

    @overload
    def run_file(
        self,
        path: str,
        args: dict[str, Any] | None = None,
        env: dict[str, Any] | None = None,
        *,
        wait: Literal[True] = True,
    ) -> Run: ...
    @overload
    def run_file(
        self,
        path: str,
        args: dict[str, Any] | None = None,
        env: dict[str, Any] | None = None,
        *,
        wait: Literal[False],
    ) -> RunningExecution: ...

    def run_file(
        self,
        path: str,
        args: dict[str, Any] | None = None,
        env: dict[str, Any] | None = None,
        *,
        wait: bool = True,
    ) -> Run | RunningExecution:
        """Run the file at ``path`` (relative to the worktree) with ``__ARGS__`` and
        ``__ENV__``, as :meth:`repl` runs code."""
        started = self.client.run_file(self.id, path, args, env, wait=False)
        running = RunningExecution(self.client, started)
        return running.wait() if wait else running

    def refresh(self) -> Session:
        """The session's record now (its status, its worker)."""
        self.record = self.client.get_session(self.id)
        return self.record

    def close(self) -> Session:
        """Close the session (stops its worker; a no-op when it is closed already)."""
        self.record = self.client.close_session(self.id)
        return self.record

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is None:
            self.close()
            return
        # Leaving on an error: the session is still closed, but a failure to close it
        # must not hide the error that is leaving.
        with contextlib.suppress(ClientError):
            self.close()


class RunningExecution:
    """An execution started without waiting: iterate it for its events as they happen,
    :meth:`wait` for its :class:`Run`, or :meth:`cancel` it."""

    def __init__(self, client: Client, started: Execution) -> None:
        self.client = client
        self.started = started  # the record as it started (``running``, usually)
        self.events: list[Event] = []  # the events received so far
        self.execution: Execution | None = None  # the final record, once it ended

    @property
    def id(self) -> str:
        return self.started.id

    def __repr__(self) -> str:
        status = self.execution.status if self.execution else "running"
        return f"<RunningExecution {self.id} {status}, {len(self.events)} events>"

    def __iter__(self) -> Iterator[Event]:
        """The events after the last one received, as they happen, to the end."""
        if self.execution is not None:
            return
        after = self.events[-1].seq if self.events else 0
        with self.client.stream_events(self.id, after) as stream:
            for event in stream:
                self.events.append(event)
                yield event
            self.execution = stream.execution

    def wait(self) -> Run:
        """Follow the execution to its end; its record and every event."""
        for _ in self:
            pass
        assert self.execution is not None, "a stream ends with the record or raises"
        return Run(self.execution, list(self.events))

    def cancel(self) -> Run:
        """Stop the execution (the session keeps its state); its :class:`Run` once ended."""
        self.client.cancel_execution(self.id)
        return self.wait()
