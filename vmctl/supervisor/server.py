"""Running the daemon: command line, logging, uvicorn, and the order of shutdown.

``python -m vmctl.supervisor`` (what ``vmctl up`` runs) parses its command line
into a :class:`~vmctl.supervisor.config.DaemonConfig`, sets up logging, and
serves the app of http/app.py on uvicorn (uvloop, httptools) until SIGINT or
SIGTERM. Shutdown goes: stop every worker (their requests end as cancelled at
once), then drain the open requests, then the lifespan closes the store and the
fork server.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import uvicorn

from vmctl.supervisor.config import (
    DB_NAME,
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_LISTEN,
    DEFAULT_MAX_SESSIONS,
    GRACEFUL_SHUTDOWN_SECONDS,
    DaemonConfig,
    builtin_engines,
    default_home,
    parse_engine,
    parse_listen,
)
from vmctl.supervisor.http.app import build_app, stop_sessions

logger = logging.getLogger("vmctl.daemon")

T = TypeVar("T")


class DaemonServer(uvicorn.Server):
    """uvicorn's server, stopping the workers before it waits for open requests.

    uvicorn waits for in-flight requests before the lifespan shutdown runs. An
    execution could keep a request open for its whole ``wall_ms``, so the
    workers are stopped first: those requests end as ``cancelled`` at once.
    """

    def __init__(self, config: uvicorn.Config, before_drain: Callable[[], Awaitable[None]]) -> None:
        super().__init__(config)
        self._before_drain = before_drain

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn re-raises the signal once it has shut down, so the process dies
        # of it; a daemon that stopped cleanly on request exits 0 instead.
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self._before_drain()
        await super().shutdown(sockets)


def _argument(parse: Callable[[str], T]) -> Callable[[str], T]:
    """``parse`` as an argparse type: its ValueError is the usage error."""

    def convert(value: str) -> T:
        try:
            return parse(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def parse_args(argv: list[str] | None = None) -> DaemonConfig:
    home = default_home()
    parser = argparse.ArgumentParser(prog="vmctl up", description="Run the vmctl daemon.")
    parser.add_argument(
        "--listen", type=_argument(parse_listen), default=parse_listen(DEFAULT_LISTEN)
    )
    parser.add_argument("--db", default=os.path.join(home, DB_NAME))
    parser.add_argument(
        "--engine",
        type=_argument(parse_engine),
        action="append",
        default=[],
        metavar="NAME=COMMAND",
    )
    parser.add_argument("--max-sessions", type=int, default=DEFAULT_MAX_SESSIONS)
    parser.add_argument("--handshake-timeout", type=float, default=DEFAULT_HANDSHAKE_TIMEOUT)
    args = parser.parse_args(argv)
    engines = builtin_engines()
    engines.update(dict(args.engine))
    host, port = args.listen
    return DaemonConfig(
        home=home,
        db_path=os.path.abspath(args.db),
        host=host,
        port=port,
        engines=engines,
        max_sessions=args.max_sessions,
        auth_token=os.environ.get("VMCTL_AUTH_TOKEN") or None,
        handshake_timeout=args.handshake_timeout,
    )


def serve(config: DaemonConfig) -> None:
    """Run the daemon in the foreground until SIGINT or SIGTERM."""
    os.makedirs(config.home, exist_ok=True)
    os.makedirs(os.path.dirname(config.db_path), exist_ok=True)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    app = build_app(config)
    uv_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    print(f"vmctl listening on http://{config.host}:{config.port}", file=sys.stderr, flush=True)
    print(f"store: {config.db_path}", file=sys.stderr, flush=True)
    server = DaemonServer(uv_config, functools.partial(stop_sessions, app))
    server.run()
    if not server.started:
        sys.exit(1)


def main(argv: list[str] | None = None) -> None:
    serve(parse_args(argv))
