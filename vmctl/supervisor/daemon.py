"""Running the daemon: command line, logging, uvicorn, and the order of shutdown."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shlex
import signal
import socket
import sys
from collections.abc import Iterator

import uvicorn
from starlette.applications import Starlette

from vmctl.supervisor.app import build_app
from vmctl.supervisor.config import DEFAULT_LISTEN, DaemonConfig, builtin_engines, default_home
from vmctl.supervisor.manager import SessionManager

logger = logging.getLogger("vmctl.daemon")

# How long uvicorn waits for in-flight requests once the workers are stopped.
GRACEFUL_SHUTDOWN_SECONDS = 5


class DaemonServer(uvicorn.Server):
    """uvicorn's server, stopping the workers before it waits for open requests.

    uvicorn waits for in-flight requests before the lifespan shutdown runs. An
    execution could keep a request open for its whole ``wall_ms``, so the
    workers are stopped first: those requests end as ``cancelled`` at once.
    """

    def __init__(self, config: uvicorn.Config, app: Starlette) -> None:
        super().__init__(config)
        self._app = app

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
        manager: SessionManager | None = getattr(self._app.state, "manager", None)
        if manager is not None:
            await manager.aclose()
        await super().shutdown(sockets)


def _parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def _parse_engine(value: str) -> tuple[str, tuple[str, ...]]:
    name, sep, command = value.partition("=")
    argv = tuple(shlex.split(command))
    if not sep or not name or not argv:
        raise argparse.ArgumentTypeError(f"expected NAME=COMMAND, got {value!r}")
    return name, argv


def parse_args(argv: list[str] | None = None) -> DaemonConfig:
    home = default_home()
    parser = argparse.ArgumentParser(prog="vmctl up", description="Run the vmctl daemon.")
    parser.add_argument("--listen", type=_parse_listen, default=_parse_listen(DEFAULT_LISTEN))
    parser.add_argument("--db", default=os.path.join(home, "vmctl.db"))
    parser.add_argument(
        "--engine", type=_parse_engine, action="append", default=[], metavar="NAME=COMMAND"
    )
    parser.add_argument("--max-sessions", type=int, default=64)
    parser.add_argument("--handshake-timeout", type=float, default=10.0)
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
    server = DaemonServer(uv_config, app)
    server.run()
    if not server.started:
        sys.exit(1)


def main(argv: list[str] | None = None) -> None:
    serve(parse_args(argv))
