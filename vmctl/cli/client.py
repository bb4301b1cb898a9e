"""A thin synchronous client for the vmctl REST API: one method per endpoint.

Every answer is decoded into the Structs of :mod:`vmctl.cli.models`. Failures
travel as exceptions of one small hierarchy::

    ClientError
     ├── ApiError            the daemon answered with the error envelope (or garbage)
     ├── DaemonUnreachable   nothing accepted the connection at the URL
     └── ConnectionLost      the connection broke or timed out mid-request (or mid-stream)

Use it as a context manager so its connection pool is closed. It sends the API token
given, else the one the CLI would find (``$VMCTL_AUTH_TOKEN``, else
``$VMCTL_HOME/token``: ``vmctl/api_token.py``)::

    with Client("http://127.0.0.1:3210") as client:
        session = client.get_session(session_id)
"""

from __future__ import annotations

from collections.abc import Generator
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from vmctl.api_token import client_token
from vmctl.cli import sse
from vmctl.cli.models import (
    Capability,
    Deleted,
    Event,
    Execution,
    Health,
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
from vmctl.daemon_options import default_home

T = TypeVar("T")

API = "/api/v1"
# Executions and session starts block until the JavaScript ends, which the
# template's limits bound on the daemon's side; the client must not cut them short.
SHORT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
LONG_TIMEOUT = httpx.Timeout(None, connect=5.0)
# A stream is silent while its execution is; the daemon sends a keep-alive comment at
# least every 15 s, so a read that waits three times that is a connection gone dead.
STREAM_TIMEOUT = httpx.Timeout(30.0, connect=5.0, read=45.0)
# The header of an events page that more events follow: the after_seq of the next page.
NEXT_AFTER_SEQ = "X-Next-After-Seq"
# The stream's last message: its data is the ended execution's record.
END_MESSAGE = "end"


class ClientError(Exception):
    """Base of everything the client raises."""


class ApiError(ClientError):
    """The daemon refused a request; ``code`` is the contract's stable error code."""

    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{message.rstrip()} ({code})")
        self.status = status
        self.code = code
        self.message = message
        self.details: dict[str, Any] = details or {}


class DaemonUnreachable(ClientError):
    def __init__(self, url: str) -> None:
        super().__init__(f"cannot reach the vmctl daemon at {url} — start it with `vmctl up`")
        self.url = url


class ConnectionLost(ClientError):
    def __init__(self, url: str, cause: httpx.TransportError) -> None:
        reason = str(cause) or type(cause).__name__
        super().__init__(f"lost the connection to the vmctl daemon at {url}: {reason}")
        self.url = url


class _Envelope(msgspec.Struct):
    code: str
    message: str
    details: dict[str, Any] | None = None


class _ErrorBody(msgspec.Struct):
    error: _Envelope


def _api_error(response: httpx.Response) -> ApiError:
    try:
        envelope = msgspec.json.decode(response.content, type=_ErrorBody).error
    except msgspec.DecodeError:
        text = response.text.strip()[:200] or response.reason_phrase
        return ApiError(response.status_code, f"HTTP_{response.status_code}", text)
    return ApiError(response.status_code, envelope.code, envelope.message, envelope.details)


def _seg(value: str) -> str:
    """One path segment: an id or a name typed by a user must not become ``/`` or ``..``."""
    if value in {".", ".."}:
        return value.replace(".", "%2E")  # httpx would resolve a literal dot segment
    return quote(value, safe="")


class Client:
    """The vmctl API at ``base_url``; one ``httpx.Client`` per instance."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        if token is None:
            token = client_token(default_home())
        headers = {"Authorization": f"Bearer {token}"} if token else None
        self._http = httpx.Client(
            base_url=self.base_url + API,
            timeout=SHORT_TIMEOUT,
            transport=transport,
            headers=headers,
        )

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
        self._http.close()

    def _request(
        self,
        method: str,
        path: str,
        into: type[T],
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        timeout: httpx.Timeout = SHORT_TIMEOUT,
    ) -> T:
        return self._answer(method, path, into, body=body, params=params, timeout=timeout)[0]

    def _answer(
        self,
        method: str,
        path: str,
        into: type[T],
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        timeout: httpx.Timeout = SHORT_TIMEOUT,
    ) -> tuple[T, httpx.Headers]:
        """The decoded answer, and its headers (for the few routes that say more in them)."""
        try:
            response = self._http.request(method, path, json=body, params=params, timeout=timeout)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise DaemonUnreachable(self.base_url) from exc
        except httpx.TransportError as exc:
            raise ConnectionLost(self.base_url, exc) from exc
        if response.is_error:
            raise _api_error(response)
        try:
            return msgspec.json.decode(response.content, type=into), response.headers
        except msgspec.DecodeError as exc:
            raise ApiError(
                response.status_code,
                "INVALID_RESPONSE",
                f"unexpected answer to {method} {path}: {exc}",
            ) from exc

    # -- health and runtime -------------------------------------------------

    def health(self) -> Health:
        return self._request("GET", "/health", Health)

    def runtime_summary(self) -> RuntimeSummary:
        return self._request("GET", "/runtime/summary", RuntimeSummary)

    # -- templates ------------------------------------------------------------

    def create_template(self, name: str, engine: str | None = None) -> Template:
        body: dict[str, Any] = {"name": name}
        if engine is not None:
            body["engine"] = engine
        return self._request("POST", "/templates", Template, body=body)

    def list_templates(self) -> list[Template]:
        return self._request("GET", "/templates", list[Template])

    def get_template(self, template_id: str) -> TemplateDetail:
        return self._request("GET", f"/templates/{_seg(template_id)}", TemplateDetail)

    def delete_template(self, template_id: str) -> Deleted:
        return self._request("DELETE", f"/templates/{_seg(template_id)}", Deleted)

    def update_settings(
        self, template_id: str, *, limits: Limits | None = None, runtime: Runtime | None = None
    ) -> Settings:
        """PUT the given parts of the settings; each part replaces the current one whole."""
        body: dict[str, Any] = {}
        if limits is not None:
            body["limits"] = msgspec.to_builtins(limits)
        if runtime is not None:
            body["runtime"] = msgspec.to_builtins(runtime)
        return self._request("PUT", f"/templates/{_seg(template_id)}/settings", Settings, body=body)

    def add_capability(
        self, template_id: str, kind: str, name: str, enabled: bool, config: dict[str, Any]
    ) -> Capability:
        body = {"kind": kind, "name": name, "enabled": enabled, "config": config}
        path = f"/templates/{_seg(template_id)}/capabilities"
        return self._request("POST", path, Capability, body=body)

    def list_capabilities(self, template_id: str) -> list[Capability]:
        return self._request(
            "GET", f"/templates/{_seg(template_id)}/capabilities", list[Capability]
        )

    def add_startup_file(
        self, template_id: str, path: str, order_index: int, mode: str
    ) -> StartupFile:
        body = {"path": path, "order_index": order_index, "mode": mode}
        route = f"/templates/{_seg(template_id)}/startup-files"
        return self._request("POST", route, StartupFile, body=body)

    def list_startup_files(self, template_id: str) -> list[StartupFile]:
        route = f"/templates/{_seg(template_id)}/startup-files"
        return self._request("GET", route, list[StartupFile])

    def add_module(self, template_id: str, name: str) -> NamedItem:
        route = f"/templates/{_seg(template_id)}/modules"
        return self._request("POST", route, NamedItem, body={"name": name})

    def remove_module(self, template_id: str, name: str) -> Deleted:
        return self._request(
            "DELETE", f"/templates/{_seg(template_id)}/modules/{_seg(name)}", Deleted
        )

    def list_modules(self, template_id: str) -> list[str]:
        return self._request("GET", f"/templates/{_seg(template_id)}/modules", list[str])

    def add_library(self, template_id: str, name: str) -> NamedItem:
        route = f"/templates/{_seg(template_id)}/libraries"
        return self._request("POST", route, NamedItem, body={"name": name})

    def remove_library(self, template_id: str, name: str) -> Deleted:
        return self._request(
            "DELETE", f"/templates/{_seg(template_id)}/libraries/{_seg(name)}", Deleted
        )

    def list_libraries(self, template_id: str) -> list[str]:
        return self._request("GET", f"/templates/{_seg(template_id)}/libraries", list[str])

    # -- sessions -------------------------------------------------------------

    def create_session(
        self, template_id: str, workspace_id: str, base_commit_oid: str, worktree_path: str
    ) -> Session:
        body = {
            "template_id": template_id,
            "workspace_id": workspace_id,
            "base_commit_oid": base_commit_oid,
            "worktree_path": worktree_path,
        }
        return self._request("POST", "/sessions", Session, body=body, timeout=LONG_TIMEOUT)

    def list_sessions(self, status: str | None = None) -> list[Session]:
        params = {"status": status} if status else None
        return self._request("GET", "/sessions", list[Session], params=params)

    def get_session(self, session_id: str) -> Session:
        return self._request("GET", f"/sessions/{_seg(session_id)}", Session)

    def close_session(self, session_id: str) -> Session:
        return self._request("POST", f"/sessions/{_seg(session_id)}/close", Session)

    def restart_session(self, session_id: str) -> Session:
        route = f"/sessions/{_seg(session_id)}/restart"
        return self._request("POST", route, Session, timeout=LONG_TIMEOUT)

    # -- executions -----------------------------------------------------------

    def repl(self, session_id: str, code: str, *, wait: bool = True) -> Execution:
        """Run ``code``; with ``wait=False`` the answer is the ``running`` record at once."""
        body: dict[str, Any] = {"session_id": session_id, "input": code}
        return self._start("/executions/repl", body, wait)

    def run_file(
        self,
        session_id: str,
        path: str,
        args: dict[str, Any] | None = None,
        env: dict[str, Any] | None = None,
        *,
        wait: bool = True,
    ) -> Execution:
        body = {"session_id": session_id, "path": path, "args": args or {}, "env": env or {}}
        return self._start("/executions/run-file", body, wait)

    def _start(self, route: str, body: dict[str, Any], wait: bool) -> Execution:
        if wait:
            # Sent only when false: a v1 daemon refuses the unknown field, and waits anyway.
            return self._request("POST", route, Execution, body=body, timeout=LONG_TIMEOUT)
        return self._request("POST", route, Execution, body={**body, "wait": False})

    def cancel_execution(self, execution_id: str) -> Execution:
        """Stop a running execution; the answer is its record once it has ended."""
        route = f"/executions/{_seg(execution_id)}/cancel"
        return self._request("POST", route, Execution, timeout=LONG_TIMEOUT)

    def list_executions(self, session_id: str, limit: int | None = None) -> list[Execution]:
        params: dict[str, Any] = {"session_id": session_id}
        if limit is not None:
            params["limit"] = limit
        return self._request("GET", "/executions", list[Execution], params=params)

    def get_execution(self, execution_id: str) -> Execution:
        return self._request("GET", f"/executions/{_seg(execution_id)}", Execution)

    def list_events(self, execution_id: str, after_seq: int = 0) -> list[Event]:
        """Every event after ``after_seq``, page after page while ``X-Next-After-Seq`` says
        more follow."""
        route = f"/executions/{_seg(execution_id)}/events"
        events: list[Event] = []
        while True:
            page, headers = self._answer("GET", route, list[Event], params={"after_seq": after_seq})
            events += page
            following = headers.get(NEXT_AFTER_SEQ)
            if following is None:
                return events
            if not page or not following.isdigit() or int(following) <= after_seq:
                message = f"unexpected {NEXT_AFTER_SEQ} {following!r} from {route}"
                raise ApiError(200, "INVALID_RESPONSE", message)
            after_seq = int(following)

    def stream_events(
        self, execution_id: str, after_seq: int = 0, *, resume: bool = False
    ) -> Generator[list[Event] | Execution, None, None]:
        """The execution's events after ``after_seq`` from its SSE stream, in batches as they
        arrive, then its record once it has ended; ``resume`` asks with ``Last-Event-ID``, as
        a reconnecting EventSource does.

        A stream that closes before its ``end`` message simply stops: the caller tells
        that from an ended one by the record it did not get.
        """
        route = f"/executions/{_seg(execution_id)}/stream"
        headers = {"Accept": "text/event-stream"}
        if resume:
            headers["Last-Event-ID"] = str(after_seq)
        params = {"after_seq": after_seq}
        try:
            with self._http.stream(
                "GET", route, params=params, headers=headers, timeout=STREAM_TIMEOUT
            ) as response:
                if response.is_error:
                    response.read()
                    raise _api_error(response)
                kind = response.headers.get("Content-Type", "").partition(";")[0].strip()
                if kind != "text/event-stream":
                    problem = f"expected an event stream from {route}, got {kind or 'no type'!r}"
                    raise ApiError(response.status_code, "INVALID_RESPONSE", problem)
                parser = sse.Parser()
                for chunk in response.iter_bytes():
                    batch: list[Event] = []
                    for message in parser.feed(chunk):
                        if message.event == END_MESSAGE:
                            if batch:
                                yield batch
                            yield _decoded(message.data, Execution, route)
                            return
                        batch.append(_decoded(message.data, Event, route))
                    if batch:
                        yield batch
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise DaemonUnreachable(self.base_url) from exc
        except httpx.TransportError as exc:
            raise ConnectionLost(self.base_url, exc) from exc
        except sse.SSEError as exc:
            raise ApiError(200, "INVALID_RESPONSE", f"{route}: {exc}") from exc


def _decoded(data: str, into: type[T], route: str) -> T:
    try:
        return msgspec.json.decode(data, type=into)
    except msgspec.DecodeError as exc:
        raise ApiError(200, "INVALID_RESPONSE", f"unexpected message from {route}: {exc}") from exc
