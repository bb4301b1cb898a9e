"""``vmctl up``, ``down``, ``status`` and ``logs``: the daemon's lifetime on this machine.

One daemon per ``$VMCTL_HOME``, known through ``$VMCTL_HOME/daemon.json``.
"""

from __future__ import annotations

import datetime
import os
import sys
import time
import uuid
from pathlib import Path

import click
import psutil

from vmctl.api_token import TOKEN_ENV
from vmctl.cli import format as fmt
from vmctl.cli.context import EXIT_ERROR, CliContext, pass_cli
from vmctl.cli.daemon import (
    DaemonStartError,
    daemon_argv,
    resolve_home,
    start_detached,
    stop,
    url_of,
)
from vmctl.cli.daemon_record import (
    LOG_NAME,
    DaemonRecord,
    DaemonStatus,
    find_daemon,
    read_record,
    remove_record,
    running_record,
    vmctl_home,
    write_record,
)
from vmctl.cli.logfile import follow, print_file
from vmctl.cli.up_options import (
    access_argv,
    access_options,
    check_listen,
    check_retain,
    checked_by,
    refuse_open_no_auth,
)
from vmctl.client import Client, ClientError
from vmctl.daemon_options import (
    DB_NAME,
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_LISTEN,
    DEFAULT_MAX_SESSIONS,
    DEFAULT_POOL_SIZE,
    DEFAULT_RETAIN,
    MAX_POOL_SIZE,
    parse_engine,
)

LISTEN_HELP = "Address to serve the API on (a fixed port; 0 is not supported)."


def utc_now() -> str:
    now = datetime.datetime.now(datetime.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


@click.command("up")
@click.option(
    "--listen", default=DEFAULT_LISTEN, show_default=True, callback=check_listen, help=LISTEN_HELP
)
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    help="SQLite store.  [default: $VMCTL_HOME/vmctl.db]",
)
@click.option(
    "--engine",
    "engines",
    multiple=True,
    callback=checked_by(parse_engine),
    metavar="NAME=COMMAND",
    help="Run COMMAND as the worker of templates with engine NAME (repeatable).",
)
@click.option(
    "--detach", "-d", is_flag=True, help="Run in the background, logging to $VMCTL_HOME/daemon.log."
)
@click.option(
    "--max-sessions",
    type=click.IntRange(min=1),
    help=f"Live sessions at most.  [default: {DEFAULT_MAX_SESSIONS}]",
)
@click.option(
    "--pool-size",
    type=click.IntRange(min=0, max=MAX_POOL_SIZE),
    help="Workers kept started and jailed ahead of need per template and worktree in use "
    f"(0: none).  [default: {DEFAULT_POOL_SIZE}]",
)
@click.option(
    "--handshake-timeout",
    type=click.FloatRange(min=0, min_open=True),
    help=f"Seconds a new worker has to say hello.  [default: {DEFAULT_HANDSHAKE_TIMEOUT:g}]",
)
@access_options
@click.option(
    "--retain",
    callback=check_retain,
    metavar="AGE|COUNT",
    help="Keep ended executions for AGE (30d, 12h) or the newest COUNT, or forever.  "
    f"[default: {DEFAULT_RETAIN}]",
)
@pass_cli
def up(
    cli: CliContext,
    listen: str,
    db: Path | None,
    engines: tuple[str, ...],
    detach: bool,
    max_sessions: int | None,
    pool_size: int | None,
    handshake_timeout: float | None,
    no_auth: bool,
    allow_hosts: tuple[str, ...],
    allow_origins: tuple[str, ...],
    worktree_roots: tuple[Path, ...],
    sandbox: str | None,
    worker_user: str | None,
    retain: str | None,
) -> None:
    """Start the daemon, in the foreground unless --detach.

    Every request but the health check needs the API token: $VMCTL_AUTH_TOKEN
    (or --token before the command), else $VMCTL_HOME/token, which the daemon
    creates when it is missing. Every `vmctl` command finds it the same way.

    If the daemon recorded in $VMCTL_HOME already runs, say so and exit 0.
    """
    refuse_open_no_auth(listen, no_auth)
    home = resolve_home()
    running = running_record(home)
    if running is not None:
        cli.show(running, f"vmctl daemon already running at {running.url} (pid {running.pid})")
        return
    db_path = (db or home / DB_NAME).absolute()
    options: list[str] = []
    for name, value in (
        ("--max-sessions", max_sessions),
        ("--pool-size", pool_size),
        ("--handshake-timeout", handshake_timeout),
    ):
        if value is not None:
            options += [name, f"{value:g}"]
    options += access_argv(
        no_auth, allow_hosts, allow_origins, worktree_roots, sandbox, worker_user
    )
    options += ["--retain", retain] if retain is not None else []
    argv = daemon_argv(listen, db_path, engines, options)
    # --token before `up` is the daemon's token too; in its environment, not its argv,
    # which every local user can read.
    env = {TOKEN_ENV: cli.token_given} if cli.token_given else {}
    if not detach:
        exec_foreground(home, new_record(os.getpid(), listen, db_path), argv, env)
    try:
        pid, log_path = start_detached(home, url_of(listen), argv, env)
    except DaemonStartError as exc:
        if exc.log_tail:
            cli.echo(f"--- last lines of {home / LOG_NAME} ---\n{exc.log_tail}", err=True)
        raise click.ClickException(str(exc)) from exc
    record = new_record(pid, listen, db_path, log_path)
    write_record(home, record)
    cli.show(record, f"vmctl daemon running at {record.url} (pid {pid})\nlog: {log_path}")


def new_record(pid: int, listen: str, db_path: Path, log_path: Path | None = None) -> DaemonRecord:
    return DaemonRecord(
        pid=pid,
        url=url_of(listen),
        started_at=utc_now(),
        create_time=psutil.Process(pid).create_time(),
        db_path=str(db_path),
        log_path=str(log_path) if log_path is not None else None,
    )


def exec_foreground(home: Path, record: DaemonRecord, argv: list[str], env: dict[str, str]) -> None:
    """Become the daemon (``env`` added to its environment); the record names this pid,
    which exec keeps."""
    write_record(home, record)
    os.environ.update(env)
    os.environ["VMCTL_HOME"] = str(home)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(argv[0], argv)
    except OSError as exc:
        remove_record(home)
        raise click.ClickException(f"cannot run the daemon: {exc}") from exc


@click.command("down")
@pass_cli
def down(cli: CliContext) -> None:
    """Stop the recorded daemon.

    SIGTERM first; SIGKILL if it has not exited after 10 seconds.
    """
    home = vmctl_home()
    record = read_record(home)
    if record is None:
        cli.echo(f"vmctl daemon not running (no record in {home})")
        return
    if find_daemon(record) is None:
        remove_record(home)
        cli.echo(f"vmctl daemon not running (removed the stale record of pid {record.pid})")
        return
    outcome = stop(record.pid)
    remove_record(home)
    how = "killed after it ignored SIGTERM" if outcome == "killed" else "stopped"
    cli.echo(f"vmctl daemon {how} (pid {record.pid})")


@click.command("status")
@pass_cli
def status(cli: CliContext) -> None:
    """Show whether the daemon runs.

    With its URL, pid, uptime and live session count. A record whose pid is gone
    or now belongs to another program is reported as stale. Exits 0 when the
    daemon runs and answers, 1 otherwise.
    """
    found = daemon_status(vmctl_home(), cli.token)
    cli.show(found, fmt.daemon_status(found))
    if not found.running or found.problem:
        click.get_current_context().exit(EXIT_ERROR)


def daemon_status(home: Path, token: str | None) -> DaemonStatus:
    record = read_record(home)
    if record is None:
        return DaemonStatus(running=False, home=str(home))
    proc = find_daemon(record)
    if proc is None:
        return DaemonStatus(running=False, home=str(home), record=record, stale=True)
    found = DaemonStatus(
        running=True, home=str(home), record=record, uptime_s=time.time() - record.create_time
    )
    try:
        with Client(record.url, token) as client:
            found.active_sessions = client.runtime_summary().active_sessions
    except ClientError as exc:
        found.problem = str(exc)
    return found


@click.command("logs")
@click.option("--follow", "-f", "follow_", is_flag=True, help="Keep printing what is appended.")
@click.option(
    "--session", "session_id", metavar="ID", help="Show this session's worker log (its stderr)."
)
@click.option("--tail", "-n", "lines", type=click.IntRange(min=0), help="Only the last N lines.")
def logs(follow_: bool, session_id: str | None, lines: int | None) -> None:
    """Print the daemon's log (or a session worker's).

    --session ID prints $VMCTL_HOME/sessions/ID/worker.log, the worker's stderr.

    With --follow, keep printing what is appended until Ctrl-C (which exits 0).
    """
    path = log_path(vmctl_home(), session_id)
    try:
        offset = print_file(path, lines)
        if follow_:
            follow(path, offset)
    except KeyboardInterrupt:
        if not follow_:
            raise
        # Ctrl-C is how one stops following, so it is not an error. The try
        # covers the first print too: the signal may come before following starts.


def log_path(home: Path, session_id: str | None) -> Path:
    if session_id is not None:
        try:
            session_id = str(uuid.UUID(session_id))
        except ValueError:
            raise click.BadParameter("not a session id", param_hint="--session") from None
        path = home / "sessions" / session_id / "worker.log"
        if not path.exists():
            raise click.ClickException(f"no worker log for session {session_id} at {path}")
        return path
    record = read_record(home)
    if record is not None:
        if record.log_path is not None:
            return Path(record.log_path)
        if find_daemon(record) is not None:
            raise click.ClickException("the daemon runs in the foreground; its log is its terminal")
    path = home / LOG_NAME
    if not path.exists():
        raise click.ClickException(f"no daemon log at {path} (start one with `vmctl up --detach`)")
    return path
