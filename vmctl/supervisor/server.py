"""Running the daemon: command line, its home, logging, uvicorn, and the order of shutdown.

``python -m vmctl.supervisor`` (what ``vmctl up`` runs) parses its command line
into a :class:`~vmctl.supervisor.config.DaemonConfig`, makes its home its owner's
only and finds its token there (``vmctl/api_token.py``), sets up logging, and
serves the app of http/app.py on uvicorn (uvloop, httptools behind the bounds of
connections.py) until SIGINT or SIGTERM. Shutdown goes: stop every worker (their
requests end as cancelled at once), then drain the open requests, then the
lifespan closes the store and the fork server.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import functools
import gc
import logging
import logging.handlers
import os
import pwd
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import uvicorn

from vmctl.api_token import TOKEN_ENV, TOKEN_NAME, TokenError, daemon_token, token_path
from vmctl.daemon_options import (
    DEFAULT_RETAIN,
    DEFAULT_SANDBOX,
    DEFAULT_WORKER_USER,
    SANDBOX_MODES,
    default_worktree_roots,
    make_home,
    parse_host,
    parse_origin,
    parse_pool_size,
    parse_retain,
    parse_sandbox,
    parse_worker_user,
    parse_worktree_root,
)
from vmctl.supervisor.config import (
    BODY_TIMEOUT,
    DB_NAME,
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_LISTEN,
    DEFAULT_MAX_SESSIONS,
    DEFAULT_POOL_SIZE,
    GRACEFUL_SHUTDOWN_SECONDS,
    HEAD_TIMEOUT,
    HEARTBEAT_TIMEOUT,
    KEEP_ALIVE_TIMEOUT,
    MAX_BODY_BYTES,
    MAX_CONNECTIONS,
    MAX_HEAD_BYTES,
    DaemonConfig,
    builtin_engines,
    default_home,
    is_loopback,
    parse_engine,
    parse_listen,
)
from vmctl.supervisor.connections import BoundedHttpToolsProtocol
from vmctl.supervisor.http.app import build_app, stop_sessions

logger = logging.getLogger("vmctl.daemon")

LOG_BACKUPS = 2  # rotated daemon logs kept beside the current one
DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
LARGE_BUFFER_BYTES = 1024 * 1024
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Container allocations between two young-generation collections (CPython's default: 700).
GC_YOUNG_THRESHOLD = 20_000

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


_BOUNDS = (
    "Bounds, checked before any request is authenticated:\n"
    f"  {MAX_CONNECTIONS} connections open at once (one more is answered 503 and closed);\n"
    f"  a request line and headers of at most {MAX_HEAD_BYTES // 1024} KiB (else 400), delivered\n"
    f"  within {HEAD_TIMEOUT:g} s of the connection's opening or of the previous response\n"
    "  (else the connection is closed);\n"
    f"  a body of at most {MAX_BODY_BYTES // (1024 * 1024)} MiB (else 413), delivered within\n"
    f"  {BODY_TIMEOUT:g} s of the end of its head (else 400 and the connection is closed);\n"
    f"  {KEEP_ALIVE_TIMEOUT} s idle after a response."
)


def _parser(home: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vmctl up",
        description="Run the vmctl daemon.",
        epilog=_BOUNDS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--listen", type=_argument(parse_listen), default=parse_listen(DEFAULT_LISTEN))
    add("--db", default=os.path.join(home, DB_NAME))
    add("--engine", type=_argument(parse_engine), action="append", default=[], metavar="NAME=CMD")
    add("--max-sessions", type=int, default=DEFAULT_MAX_SESSIONS)
    add(
        "--pool-size",
        type=_argument(parse_pool_size),
        default=DEFAULT_POOL_SIZE,
        metavar="N",
        help="Keep N workers started and jailed ahead of need for each template and worktree "
        "in use, so a session create claims one (0: no warm pool; they never take a "
        f"--max-sessions place from a session). Default: {DEFAULT_POOL_SIZE}.",
    )
    add("--handshake-timeout", type=float, default=DEFAULT_HANDSHAKE_TIMEOUT)
    add(
        "--no-auth",
        action="store_true",
        help=f"Serve without the token (${TOKEN_ENV}, else {token_path(home)}); "
        "refused unless --listen is a loopback address.",
    )
    add(
        "--allow-host",
        type=_argument(parse_host),
        action="append",
        default=[],
        metavar="NAME",
        help="Also answer requests whose Host is NAME (repeatable); "
        "loopback names and the listen address always are.",
    )
    add(
        "--allow-origin",
        type=_argument(parse_origin),
        action="append",
        default=[],
        metavar="ORIGIN",
        help="Also answer browser requests from ORIGIN, e.g. https://ui.example.org (repeatable).",
    )
    add(
        "--worktree-root",
        type=_argument(parse_worktree_root),
        action="append",
        default=[],
        metavar="DIR",
        help="Sessions may work only in directories under DIR (repeatable). "
        f"Default: {' and '.join(default_worktree_roots())}.",
    )
    add(
        "--heartbeat-interval",
        type=_argument(_seconds),
        default=DEFAULT_HEARTBEAT_INTERVAL,
        metavar="SECONDS",
        help="Ping idle workers this often; one that does not answer within "
        f"{HEARTBEAT_TIMEOUT:g} s is killed and its session crashed (0: never). "
        f"Default: {DEFAULT_HEARTBEAT_INTERVAL:g}.",
    )
    add(
        "--log-file",
        metavar="PATH",
        help="Log to PATH, rotated by size (PATH.1, PATH.2 keep the older lines), "
        "instead of to stderr. `vmctl up --detach` logs to $VMCTL_HOME/daemon.log.",
    )
    add(
        "--log-max-bytes",
        type=_argument(_positive_int),
        default=DEFAULT_LOG_MAX_BYTES,
        metavar="N",
        help=f"Rotate the --log-file past N bytes. Default: {DEFAULT_LOG_MAX_BYTES}.",
    )
    add(
        "--retain",
        type=_argument(parse_retain),
        default=parse_retain(DEFAULT_RETAIN),
        metavar="AGE|COUNT",
        help="Keep ended executions (their events, and closed sessions) for AGE (30d, 12h, "
        f"90m) or the newest COUNT, or forever. Default: {DEFAULT_RETAIN}.",
    )
    add(
        "--sandbox",
        type=_argument(parse_sandbox),
        default=DEFAULT_SANDBOX,
        metavar="{" + ",".join(SANDBOX_MODES) + "}",
        help="strict: no worker without every jail layer; auto: the layers this host has; "
        f"off: none. Default: {DEFAULT_SANDBOX}.",
    )
    add(
        "--worker-user",
        type=_argument(parse_worker_user),
        default=DEFAULT_WORKER_USER,
        metavar="USER",
        help=f"Name or uid workers run as when the daemon runs as root. "
        f"Default: {DEFAULT_WORKER_USER}.",
    )
    return parser


def parse_args(argv: list[str] | None = None) -> DaemonConfig:
    """The command line as a config; makes the home (0700) and finds the token in it."""
    home = default_home()
    parser = _parser(home)
    args = parser.parse_args(argv)
    host, port = args.listen
    if args.no_auth and not is_loopback(host):
        parser.error(
            f"--no-auth is refused with --listen {host}: a daemon that other machines can "
            "reach always needs the token (listen on 127.0.0.1, ::1 or localhost instead)"
        )
    if os.geteuid() == 0 and not args.worker_user.isdigit():
        try:
            pwd.getpwnam(args.worker_user)
        except KeyError:
            parser.error(f"--worker-user: no user named {args.worker_user!r} on this host")
    db_path = os.path.abspath(args.db)
    try:
        _make_private(home, db_path)
        token = None if args.no_auth else daemon_token(home)
    except (OSError, TokenError) as exc:
        parser.error(f"cannot use {home}: {exc}")
    engines = builtin_engines()
    engines.update(dict(args.engine))
    return DaemonConfig(
        home=home,
        db_path=db_path,
        host=host,
        port=port,
        engines=engines,
        max_sessions=args.max_sessions,
        pool_size=args.pool_size,
        auth_token=token,
        handshake_timeout=args.handshake_timeout,
        allowed_hosts=tuple(args.allow_host),
        allowed_origins=tuple(args.allow_origin),
        worktree_roots=tuple(dict.fromkeys(args.worktree_root)) or default_worktree_roots(),
        sandbox=args.sandbox,
        worker_user=args.worker_user,
        retain=args.retain,
        log_file=os.path.abspath(args.log_file) if args.log_file else None,
        log_max_bytes=args.log_max_bytes,
        heartbeat_interval=args.heartbeat_interval,
    )


def _make_private(home: str, db_path: str) -> None:
    """Create the home 0700, and take group and other access from the daemon's files that
    may be there from before: what it creates from now on is private by its umask."""
    make_home(home)
    os.makedirs(os.path.dirname(db_path), mode=0o700, exist_ok=True)
    for name in (TOKEN_NAME, "daemon.json", "daemon.log"):  # the last two: vmctl up's
        _strip_group_and_other(os.path.join(home, name))
    for suffix in ("", "-wal", "-shm", "-journal"):
        _strip_group_and_other(db_path + suffix)
    for directory, _, files in os.walk(os.path.join(home, "sessions")):  # the worker logs
        _strip_group_and_other(directory)
        for name in files:
            _strip_group_and_other(os.path.join(directory, name))


def _strip_group_and_other(path: str) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if mode & 0o077 and not os.path.islink(path):
        os.chmod(path, mode & 0o7700)


def serve(config: DaemonConfig) -> None:
    """Run the daemon in the foreground until SIGINT or SIGTERM."""
    handler: logging.Handler = logging.StreamHandler(sys.stderr)
    if config.log_file is not None:
        # Rotated by size, so a busy daemon's log cannot fill the disk it needs for its
        # store, and the newest lines (the error of a moment ago) are always there to read.
        handler = logging.handlers.RotatingFileHandler(
            config.log_file, maxBytes=config.log_max_bytes, backupCount=LOG_BACKUPS
        )
    handler.setFormatter(_LineFormatter(LOG_FORMAT))
    _record_only_what_is_logged()
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    app = build_app(config)
    uv_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        loop="uvloop",
        http=BoundedHttpToolsProtocol,
        ws="none",  # no WebSocket routes: an upgrade request is plain HTTP, through every check
        lifespan="on",
        log_config=None,
        access_log=False,
        # No proxy stands before the daemon: a loopback client's X-Forwarded-* would only
        # rewrite what the app is told of the client, and its middleware is a layer more
        # on every request. Nor is the server's name anyone's business.
        proxy_headers=False,
        server_header=False,
        timeout_keep_alive=KEEP_ALIVE_TIMEOUT,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    for line in (
        f"vmctl listening on http://{config.host}:{config.port}",
        f"store: {config.db_path}",
        f"auth: {_auth_source(config)}",
        f"worktree roots: {', '.join(config.worktree_roots)}",
    ):
        print(line, file=sys.stderr, flush=True)
    server = DaemonServer(uv_config, functools.partial(stop_sessions, app))
    server.run()
    if not server.started:
        sys.exit(1)


class _LineFormatter(logging.Formatter):
    """The standard formatter, with each second's date and time made once, not per line:
    the access log writes a line per request, and ``strftime`` was most of its cost."""

    def __init__(self, fmt: str) -> None:
        super().__init__(fmt)
        self._second = -1
        self._second_text = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second:
            self._second, self._second_text = second, super().formatTime(record, datefmt)[:-4]
        return f"{self._second_text},{int(record.msecs):03d}"


def _record_only_what_is_logged() -> None:
    """Spare every log record what LOG_FORMAT never prints: the caller's file and line (a
    walk of the stack), the thread, the process (a system call) and its name, as the
    logging HOWTO's "Optimization" section says."""
    logging._srcfile = None  # the documented switch
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def _auth_source(config: DaemonConfig) -> str:
    if config.auth_token is None:
        return "off (--no-auth): anyone on this machine can drive the daemon"
    if os.environ.get(TOKEN_ENV):
        return f"bearer token from ${TOKEN_ENV}"
    return f"bearer token in {token_path(config.home)}"


def main(argv: list[str] | None = None) -> None:
    # Every file and directory the daemon creates (store, logs, token) is its owner's only.
    os.umask(0o077)
    _return_large_buffers()
    _collect_less()
    serve(parse_args(argv))


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"expected a number of seconds, got {value!r}") from None
    if not 0 <= seconds <= 86_400:
        raise ValueError(f"expected 0 to 86400 seconds, got {value!r}")
    return seconds


def _positive_int(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"expected a positive integer, got {value!r}")
    return int(value)


def _collect_less() -> None:
    """Keep the cyclic collector out of the request path.

    At CPython's default threshold the collector runs every 700 container allocations,
    each full pass walking every object the daemon imported: when a console flood still
    made a tuple per event, that was about a tenth of the daemon's time in a flood. What
    was imported is frozen (never walked again), and young collections come 30 times less
    often; the daemon's cycles are few, so what waits for them stays small.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def _return_large_buffers() -> None:
    """Have glibc map every allocation of 1 MiB or more on its own, and unmap it when freed.

    By default glibc raises that threshold to the size of each large block freed, so after
    one big answer (a page of 100,000 events is about 19 MB) the next ones come from the
    heap and their memory is never given back: the daemon kept about 50 MiB per page size
    it had served. Not glibc (musl): nothing to do.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except AttributeError:
        return
    mallopt(_M_MMAP_THRESHOLD, LARGE_BUFFER_BYTES)
