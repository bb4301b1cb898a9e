"""The daemon's ``/mcp``: the tools over streamable HTTP, started on the first request.

The daemon routes ``/mcp`` to an :class:`McpEndpoint` after its own middleware (Host and
Origin, the bearer token, JSON bodies, body size), and enters :meth:`McpEndpoint.running`
in its lifespan. Importing the MCP SDK costs about half a second, more than the rest of
the daemon, so nothing of it is imported until a request comes to ``/mcp``: the first
one imports it (on a thread), builds the server and starts the SDK's session manager as
a task of the group ``running`` owns, which cancels it when the daemon stops.

The tools reach the daemon as any client does, over loopback with its token
(:mod:`vmctl.mcp.adapter`), so they answer exactly as the REST API does.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskGroup, TaskStatus

if TYPE_CHECKING:
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

Scope = dict[str, Any]
Receive = Any
Send = Any


def loopback_url(host: str, port: int) -> str:
    """Where the daemon listening on ``host``:``port`` answers this machine."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class McpEndpoint:
    """An ASGI app serving MCP for the daemon at ``url``, once :meth:`running`; sessions
    its tools create work in ``worktree`` unless the model names another."""

    @classmethod
    def for_daemon(
        cls, host: str, port: int, token: str | None, worktree_roots: Sequence[str]
    ) -> McpEndpoint:
        """The endpoint of the daemon listening on ``host``:``port`` with ``token``; new
        sessions work in its first worktree root."""
        worktree = worktree_roots[0] if worktree_roots else os.path.expanduser("~")
        return cls(loopback_url(host, port), token, worktree)

    def __init__(self, url: str, token: str | None, worktree: str) -> None:
        self._url, self._token, self._worktree = url, token, worktree
        self._group: TaskGroup | None = None
        self._manager: StreamableHTTPSessionManager | None = None
        self._starting = anyio.Lock()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Serve requests while this is entered; stop the session manager on the way out."""
        async with anyio.create_task_group() as group:
            self._group = group
            try:
                yield
            finally:
                self._group = None
                group.cancel_scope.cancel()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        manager = self._manager or await self._start()
        await manager.handle_request(scope, receive, send)

    async def _start(self) -> StreamableHTTPSessionManager:
        async with self._starting:
            if self._manager is None:
                if self._group is None:
                    raise RuntimeError("the /mcp endpoint was called outside its running()")
                self._manager = await self._group.start(self._serve)
        return self._manager

    async def _serve(self, *, task_status: TaskStatus[StreamableHTTPSessionManager]) -> None:
        await anyio.to_thread.run_sync(importlib.import_module, "vmctl.mcp.tools")
        from mcp.server.transport_security import TransportSecuritySettings

        from vmctl.mcp.adapter import Defaults
        from vmctl.mcp.tools import build_server

        # The SDK logs every session it opens at INFO; the daemon's access log has them.
        logging.getLogger("mcp").setLevel(logging.WARNING)
        server = build_server(self._url, self._token, Defaults(self._worktree))
        # The daemon's Gate has checked Host and Origin, with the daemon's own
        # --allow-host and --allow-origin; the SDK's check would refuse those.
        server.streamable_http_app(
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False)
        )
        manager = server.session_manager
        async with manager.run():
            task_status.started(manager)
            await anyio.sleep_forever()
