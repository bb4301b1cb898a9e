"""The synchronous client: one method per endpoint, on one ``httpx.Client``.

Use it as a context manager so its connection pool is closed::

    with Client() as client:
        session = client.get_session(session_id)

What a call sends and how its answer decodes is :mod:`vmctl.client.routes`; this module
only sends. :class:`~vmctl.client.AsyncClient` has the same methods, awaited.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import deque
from collections.abc import Generator, Iterator
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from vmctl.api.models import (
    Capability,
    Deleted,
    Event,
    Execution,
    Health,
    Lifecycle,
    Limits,
    NamedItem,
    Runtime,
    RuntimeSummary,
    Session,
    Settings,
    StartupFile,
    Template,
    TemplateDetail,
)
from vmctl.client import routes
from vmctl.client.errors import (
    Conflict,
    ConnectionLost,
    DaemonUnreachable,
    error_from,
    transport_errors,
)
from vmctl.client.handles import SessionHandle
from vmctl.client.live import Resumption, StreamDecoder, check_event_stream
from vmctl.client.templates import DEFAULT_TEMPLATE, NAME_TAKEN, id_of_named, named, template_uuid

T = TypeVar("T")


class Client:
    """The vmctl API at ``base_url`` (else ``$VMCTL_URL``, else ``http://127.0.0.1:3210``),
    sending ``token`` (else ``$VMCTL_AUTH_TOKEN``, else ``$VMCTL_HOME/token``)."""

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = routes.base_url_of(base_url)
        options = routes.http_options(self.base_url, token)
        self._http = httpx.Client(transport=transport, **options)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool (the daemon's sessions stay as they are)."""
        self._http.close()

    def _send(self, call: routes.Call[T]) -> T:
        return self._exchange(call)[0]

    def _exchange(self, call: routes.Call[T]) -> tuple[T, httpx.Headers]:
        with transport_errors(self.base_url):
            response = self._http.request(
                call.method,
                call.path,
                json=call.body,
                params=call.params,
                headers=call.headers,
                timeout=call.timeout,
            )
        return routes.decode(call, response), response.headers

    # -- health and runtime -------------------------------------------------------------

    def health(self) -> Health:
        return self._send(routes.health())

    def runtime_summary(self) -> RuntimeSummary:
        return self._send(routes.runtime_summary())

    # -- templates ----------------------------------------------------------------------

    def create_template(self, name: str, engine: str | None = None) -> Template:
        return self._send(routes.create_template(name, engine))

    def list_templates(self) -> list[Template]:
        return self._send(routes.list_templates())

    def get_template(self, template_id: str) -> TemplateDetail:
        return self._send(routes.get_template(template_id))

    def template_id(self, ref: str) -> str:
        """The id of the template ``ref`` names: an id as is, a name looked up
        (:class:`~vmctl.client.NotFound` ``TEMPLATE_NOT_FOUND`` when none has it)."""
        return template_uuid(ref) or id_of_named(self.list_templates(), ref)

    def delete_template(self, template_id: str) -> Deleted:
        return self._send(routes.delete_template(template_id))

    def update_settings(
        self,
        template_id: str,
        *,
        limits: Limits | None = None,
        runtime: Runtime | None = None,
        lifecycle: Lifecycle | None = None,
    ) -> Settings:
        """PUT the given parts of the settings; each part replaces the current one whole."""
        return self._send(routes.update_settings(template_id, limits, runtime, lifecycle))

    def add_capability(
        self, template_id: str, kind: str, name: str, enabled: bool, config: dict[str, Any]
    ) -> Capability:
        return self._send(routes.add_capability(template_id, kind, name, enabled, config))

    def list_capabilities(self, template_id: str) -> list[Capability]:
        return self._send(routes.list_capabilities(template_id))

    def add_startup_file(
        self, template_id: str, path: str, order_index: int = 0, mode: str = "eval"
    ) -> StartupFile:
        return self._send(routes.add_startup_file(template_id, path, order_index, mode))

    def list_startup_files(self, template_id: str) -> list[StartupFile]:
        return self._send(routes.list_startup_files(template_id))

    def add_module(self, template_id: str, name: str) -> NamedItem:
        return self._send(routes.add_named(template_id, "modules", name))

    def remove_module(self, template_id: str, name: str) -> Deleted:
        return self._send(routes.remove_named(template_id, "modules", name))

    def list_modules(self, template_id: str) -> list[str]:
        return self._send(routes.list_named(template_id, "modules"))

    def add_library(self, template_id: str, name: str) -> NamedItem:
        return self._send(routes.add_named(template_id, "libraries", name))

    def remove_library(self, template_id: str, name: str) -> Deleted:
        return self._send(routes.remove_named(template_id, "libraries", name))

    def list_libraries(self, template_id: str) -> list[str]:
        return self._send(routes.list_named(template_id, "libraries"))

    # -- sessions -----------------------------------------------------------------------

    def create_session(
        self,
        template_id: str,
        worktree_path: str | os.PathLike[str],
        *,
        workspace_id: str = routes.DEFAULT_WORKSPACE,
        base_commit_oid: str = routes.DEFAULT_BASE_COMMIT,
    ) -> Session:
        """Start a session of the template on ``worktree_path`` (made absolute); the
        answer comes once its worker has run the startup files."""
        call = routes.create_session(template_id, worktree_path, workspace_id, base_commit_oid)
        return self._send(call)

    def list_sessions(self, status: str | None = None) -> list[Session]:
        return self._send(routes.list_sessions(status))

    def get_session(self, session_id: str) -> Session:
        return self._send(routes.get_session(session_id))

    def close_session(self, session_id: str) -> Session:
        return self._send(routes.close_session(session_id))

    def restart_session(self, session_id: str, *, replay: bool = False) -> Session:
        """A fresh worker; with ``replay``, the executions since the state started run again."""
        return self._send(routes.restart_session(session_id, replay))

    def open_session(
        self,
        template: str = DEFAULT_TEMPLATE,
        worktree: str | os.PathLike[str] | None = None,
        *,
        workspace_id: str = routes.DEFAULT_WORKSPACE,
        base_commit_oid: str = routes.DEFAULT_BASE_COMMIT,
    ) -> SessionHandle:
        """A new session of ``template`` (an id, or a name: created with the daemon's
        defaults when no template has it) on ``worktree`` (default: the current
        directory); close it with :meth:`SessionHandle.close`."""
        template_id = self._template_for_session(template)
        record = self.create_session(
            template_id,
            os.getcwd() if worktree is None else worktree,
            workspace_id=workspace_id,
            base_commit_oid=base_commit_oid,
        )
        return SessionHandle(self, record)

    @contextlib.contextmanager
    def session(
        self,
        template: str = DEFAULT_TEMPLATE,
        worktree: str | os.PathLike[str] | None = None,
        *,
        workspace_id: str = routes.DEFAULT_WORKSPACE,
        base_commit_oid: str = routes.DEFAULT_BASE_COMMIT,
    ) -> Iterator[SessionHandle]:
        """:meth:`open_session` as a context manager: the session is closed on the way
        out, whatever happened inside."""
        handle = self.open_session(
            template, worktree, workspace_id=workspace_id, base_commit_oid=base_commit_oid
        )
        with handle:
            yield handle

    def _template_for_session(self, ref: str) -> str:
        found = template_uuid(ref) or named(self.list_templates(), ref)
        if found is not None:
            return found
        try:
            return self.create_template(ref).id
        except Conflict as exc:
            if exc.code != NAME_TAKEN:
                raise
            return id_of_named(self.list_templates(), ref)  # another client made it first

    # -- executions ---------------------------------------------------------------------

    def repl(self, session_id: str, code: str, *, wait: bool = True) -> Execution:
        """Run ``code``; the ended record, or with ``wait=False`` the ``running`` one at once.

        Waiting, a limit that stops it raises :class:`~vmctl.client.LimitExceeded`; a
        JavaScript exception is a record with ``status: "error"``.
        """
        return self._send(routes.repl(session_id, code, wait))

    def run_file(
        self,
        session_id: str,
        path: str,
        args: dict[str, Any] | None = None,
        env: dict[str, Any] | None = None,
        *,
        wait: bool = True,
    ) -> Execution:
        """Run the file at ``path`` (relative to the worktree), as :meth:`repl` runs code."""
        return self._send(routes.run_file(session_id, path, args, env, wait))

    def cancel_execution(self, execution_id: str) -> Execution:
        """Stop a running execution; the answer is its record once it has ended."""
        return self._send(routes.cancel_execution(execution_id))

    def list_executions(self, session_id: str, limit: int | None = None) -> list[Execution]:
        return self._send(routes.list_executions(session_id, limit))

    def get_execution(self, execution_id: str) -> Execution:
        return self._send(routes.get_execution(execution_id))

    def list_events(
        self, execution_id: str, after_seq: int = 0, *, wait_ms: int = 0
    ) -> list[Event]:
        """Every event after ``after_seq``, page after page; with ``wait_ms``, when there is
        none yet and the execution runs, wait up to that long for one (or its end)."""
        call: routes.Call[list[Event]] | None = routes.events_page(execution_id, after_seq, wait_ms)
        events: list[Event] = []
        while call is not None:
            page, headers = self._exchange(call)
            events += page
            call = routes.next_page(call, page, headers)
        return events

    def stream_events(self, execution_id: str, after_seq: int = 0) -> EventStream:
        """The events after ``after_seq`` as they happen, to the execution's end, over the
        SSE stream, reconnecting after a dropped connection; see :class:`EventStream`."""
        return EventStream(self, execution_id, after_seq)

    def _connection(self, where: Resumption) -> Generator[list[Event] | Execution, None, None]:
        """One connection to the stream: batches of events as they arrive, then the ended
        record; a stream that closes before its end simply stops."""
        call = routes.stream(where.execution_id, where.last_seq, where.resuming)
        with transport_errors(self.base_url), self._http.stream(
            call.method, call.path, params=call.params, headers=call.headers,
            timeout=call.timeout,
        ) as response:  # fmt: skip
            if response.is_error:
                response.read()
                raise error_from(response)
            check_event_stream(response, call.path)
            decoder = StreamDecoder(call.path)
            for chunk in response.iter_bytes():
                batch = decoder.feed(chunk)
                if batch:
                    yield batch
                if decoder.record is not None:
                    yield decoder.record
                    return


class EventStream:
    """An execution's events as they happen: iterate it for each :class:`Event`, in order,
    each once, until the execution ends; :attr:`execution` is then its final record.

    A dropped connection is picked up again from the last event (a few tries, then
    :class:`~vmctl.client.StreamLost`). Use it as a context manager, or :meth:`close`
    it, when leaving before the end, so its connection is closed at once.
    """

    def __init__(self, client: Client, execution_id: str, after_seq: int) -> None:
        self.execution_id = execution_id
        self.execution: Execution | None = None  # the final record, once the stream ended
        self._client = client
        self._where = Resumption(execution_id, after_seq)
        self._pending: deque[Event] = deque()
        self._source = self._follow()

    @property
    def last_seq(self) -> int:
        """The seq of the last event received (the ``after_seq`` to resume from)."""
        return self._where.last_seq

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> Event:
        while not self._pending:
            self._pending.extend(next(self._source))
        return self._pending.popleft()

    def batches(self) -> Iterator[list[Event]]:
        """The events in the batches they arrived in (one per read from the connection)."""
        if self._pending:
            yield list(self._pending)
            self._pending.clear()
        yield from self._source

    def close(self) -> None:
        self._source.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _follow(self) -> Generator[list[Event], None, None]:
        while True:
            try:
                with contextlib.closing(self._client._connection(self._where)) as connection:
                    for item in connection:
                        if isinstance(item, Execution):
                            self.execution = item
                            return
                        fresh = self._where.fresh(item)
                        if fresh:
                            yield fresh
                reason = self._where.closed_early()
            except (ConnectionLost, DaemonUnreachable) as exc:
                reason = str(exc)
            time.sleep(self._where.retry_delay(reason))  # a pause between network tries
