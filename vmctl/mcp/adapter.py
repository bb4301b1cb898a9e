"""Every call the MCP tools make to the daemon: the one module that knows ``vmctl.client``.

Both transports run the same tools against the REST API through an
:class:`~vmctl.client.AsyncClient`: ``vmctl mcp`` (stdio) to the local daemon, the
daemon's ``/mcp`` to itself over loopback. So validation, auth, limits and error codes
are exactly the API's. The client's failures leave this module as one exception,
:class:`DaemonError`, which carries the contract's code (or ``DAEMON_UNREACHABLE``)::

    ClientError ── ApiError (code, message, details) ──┐
               └── DaemonUnreachable, ConnectionLost, ─┴──> DaemonError(code, message, details)
                   StreamLost
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import anyio

from vmctl.api.models import Event, Execution, Session
from vmctl.client import ApiError, AsyncClient, ClientError

# The code of a tool error when the daemon could not be reached or the connection broke.
UNREACHABLE = "DAEMON_UNREACHABLE"
# How long a cancel the tool makes on its way out (its caller gave up) may take: the
# daemon's own grace to stop a worker is a second, its kill ladder a few more.
CANCEL_TIMEOUT = 10.0


class DaemonError(Exception):
    """The daemon refused a call (``code`` is the contract's) or could not be reached."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details or {}


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except ApiError as exc:
        raise DaemonError(exc.code, exc.message, exc.details) from exc
    except ClientError as exc:
        raise DaemonError(UNREACHABLE, str(exc)) from exc


@dataclass(frozen=True)
class Defaults:
    """What a tool uses when the model does not say."""

    worktree: str  # the worktree of a session a tool creates
    template: str | None = None  # None: the client's default template ("default")


class Vmctl:
    """The daemon as the tools see it: a few calls, each a call of the REST client."""

    def __init__(self, client: AsyncClient, defaults: Defaults) -> None:
        self._client = client
        self.defaults = defaults

    async def create_session(self, template: str | None, worktree: str | None) -> Session:
        """A new session of ``template`` (an id or a name; the default one is created with
        the daemon's defaults when missing) on ``worktree``."""
        template = template or self.defaults.template
        worktree = worktree or self.defaults.worktree
        with _translated():
            if template is None:
                handle = await self._client.open_session(worktree=worktree)
            else:
                handle = await self._client.open_session(template, worktree)
        return handle.record

    async def list_sessions(self, status: str | None) -> list[Session]:
        with _translated():
            return await self._client.list_sessions(status)

    async def close_session(self, session_id: str) -> Session:
        with _translated():
            return await self._client.close_session(session_id)

    async def restart_session(self, session_id: str, replay: bool) -> Session:
        with _translated():
            return await self._client.restart_session(session_id, replay=replay)

    async def start_repl(self, session_id: str, code: str) -> Execution:
        """Start ``code`` in the session; the ``running`` record, at once."""
        with _translated():
            return await self._client.repl(session_id, code, wait=False)

    async def start_file(
        self, session_id: str, path: str, args: dict[str, Any], env: dict[str, Any]
    ) -> Execution:
        with _translated():
            return await self._client.run_file(session_id, path, args, env, wait=False)

    async def execution(self, execution_id: str) -> Execution:
        with _translated():
            return await self._client.get_execution(execution_id)

    async def events(self, execution_id: str, after_seq: int, wait_ms: int) -> list[Event]:
        with _translated():
            return await self._client.list_events(execution_id, after_seq, wait_ms=wait_ms)

    async def cancel(self, execution_id: str) -> Execution:
        with _translated():
            return await self._client.cancel_execution(execution_id)

    async def cancel_shielded(self, execution_id: str) -> None:
        """Cancel on the way out of a call that was itself cancelled, bounded."""
        with (
            anyio.CancelScope(shield=True),
            anyio.move_on_after(CANCEL_TIMEOUT),
            contextlib.suppress(DaemonError),
        ):
            await self.cancel(execution_id)

    async def follow(
        self, execution_id: str, after_seq: int, on_events: Callable[[list[Event]], None]
    ) -> Execution:
        """Hand the execution's events after ``after_seq`` to ``on_events`` in batches as
        they happen (its SSE stream), and return its record once it has ended."""
        stream = self._client.stream_events(execution_id, after_seq)
        try:
            with _translated():
                async for batch in stream.batches():
                    on_events(batch)
        finally:
            with anyio.CancelScope(shield=True):
                await stream.aclose()
        if stream.execution is None:  # the stream ends only with the record
            return await self.execution(execution_id)
        return stream.execution


@contextlib.asynccontextmanager
async def open_vmctl(url: str, token: str | None, defaults: Defaults) -> AsyncIterator[Vmctl]:
    """The daemon at ``url`` (sending ``token``, else the one the CLI would find)."""
    async with AsyncClient(url, token) as client:
        yield Vmctl(client, defaults)
