"""The store's schema: its migrations, and how a connection to the file is opened.

Migration n brings ``PRAGMA user_version`` from n-1 to n, each in its own
transaction; the writer runs them when it opens the file. Every connection is
in WAL mode with ``synchronous=NORMAL``: a commit survives a crash of the
daemon; after a power cut the file is consistent but may lack the last commits.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from vmctl.supervisor.store.errors import StoreError
from vmctl.supervisor.store.thread import transaction

BUSY_TIMEOUT_MS = 5000  # another process holding the write lock (a second daemon, sqlite3 CLI)
# Each connection's page cache (negative: KiB). SQLite's default, 2 MiB a connection, is
# what a flood fills and the daemon then keeps; appends and paged event reads need little
# (make bench: the daemon +6.5 -> +5.1..5.8 MiB after a flood, the store rows unchanged).
CACHE_KIB = -512

# Migration n brings user_version from n-1 to n; each runs in its own transaction.
# Append new migrations; never edit one that has shipped.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE templates (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            engine TEXT NOT NULL,
            is_active INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL)""",
        """CREATE TABLE settings (
            vm_id TEXT PRIMARY KEY REFERENCES templates (id) ON DELETE CASCADE,
            limits TEXT NOT NULL,
            resolver TEXT NOT NULL,
            runtime TEXT NOT NULL) WITHOUT ROWID""",
        """CREATE TABLE capabilities (
            id TEXT PRIMARY KEY,
            vm_id TEXT NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            name TEXT NOT NULL,
            enabled INTEGER NOT NULL,
            config TEXT NOT NULL,
            UNIQUE (vm_id, kind, name))""",
        """CREATE TABLE startup_files (
            id TEXT PRIMARY KEY,
            vm_id TEXT NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
            path TEXT NOT NULL,
            order_index INTEGER NOT NULL,
            mode TEXT NOT NULL,
            UNIQUE (vm_id, path))""",
        """CREATE TABLE template_modules (
            vm_id TEXT NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            PRIMARY KEY (vm_id, name)) WITHOUT ROWID""",
        """CREATE TABLE template_libraries (
            vm_id TEXT NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            PRIMARY KEY (vm_id, name)) WITHOUT ROWID""",
        # No foreign key on vm_id: sessions outlive their template as history.
        """CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            vm_id TEXT NOT NULL,
            workspace_id TEXT NOT NULL,
            base_commit_oid TEXT NOT NULL,
            worktree_path TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at TEXT NOT NULL,
            closed_at TEXT,
            last_error TEXT,
            runtime_meta TEXT)""",
        "CREATE INDEX sessions_by_created ON sessions (created_at)",
        "CREATE INDEX sessions_by_status ON sessions (status, created_at)",
        "CREATE INDEX sessions_by_template ON sessions (vm_id, status)",
        """CREATE TABLE executions (
            id TEXT PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES sessions (id),
            kind TEXT NOT NULL,
            input TEXT,
            path TEXT,
            args TEXT NOT NULL,
            env TEXT NOT NULL,
            status TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at TEXT,
            result TEXT,
            error TEXT,
            metrics TEXT NOT NULL)""",
        "CREATE INDEX executions_by_session ON executions (session_id, started_at)",
        # Small by construction (only live executions), for recovery at start.
        "CREATE INDEX executions_running ON executions (id) WHERE status = 'running'",
        # Clustered on (execution_id, seq): a range read is one sequential scan.
        """CREATE TABLE events (
            execution_id TEXT NOT NULL REFERENCES executions (id),
            seq INTEGER NOT NULL,
            ts TEXT NOT NULL,
            type TEXT NOT NULL,
            payload TEXT NOT NULL,
            PRIMARY KEY (execution_id, seq)) WITHOUT ROWID""",
    ),
    # 2: the template's id is template_id inside the store; vm_id is only the API's name.
    tuple(
        f"ALTER TABLE {table} RENAME COLUMN vm_id TO template_id"
        for table in (
            "settings",
            "capabilities",
            "startup_files",
            "template_modules",
            "template_libraries",
            "sessions",
        )
    ),
    # 3: a template's lifecycle (the restart policy), as the other settings, in JSON.
    ("ALTER TABLE settings ADD COLUMN lifecycle TEXT NOT NULL DEFAULT '{}'",),
    # 4: the latest start of a session's executions that pruning removed: a restart that
    # replays them (sessions/replay.py) knows when one it would need is gone.
    ("ALTER TABLE sessions ADD COLUMN pruned_through TEXT",),
)

SCHEMA_VERSION = len(_MIGRATIONS)


def _user_version(conn: sqlite3.Connection) -> int:
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


def _migrate(conn: sqlite3.Connection) -> None:
    found = _user_version(conn)
    if found > SCHEMA_VERSION:
        raise StoreError(
            f"the database has schema version {found}, newer than this vmctl knows"
            f" ({SCHEMA_VERSION}); run a newer vmctl or use another database file"
        )
    for version, statements in enumerate(_MIGRATIONS, start=1):
        with transaction(conn):
            # Read again under the write lock: another process may have migrated meanwhile.
            if _user_version(conn) >= version:
                continue
            for statement in statements:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")


def connect(path: str, *, read_only: bool) -> sqlite3.Connection:
    # isolation_level=None: no implicit BEGIN/COMMIT; transaction() says when.
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise StoreError(f"{path}: cannot use WAL journal mode (got {mode!r})")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA cache_size = {CACHE_KIB}")
        if read_only:
            conn.execute("PRAGMA query_only = ON")
    except BaseException:
        conn.close()
        raise
    return conn


def _create_incremental(path: str) -> None:
    """Make the empty database file with ``auto_vacuum = INCREMENTAL``: only a database
    without a page yet takes it, so the pages pruning frees (store/retention.py) can be
    given back to the file system a few at a time."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("VACUUM")  # writes the header, with the setting, before anything else
    finally:
        conn.close()


def open_writer(path: str) -> sqlite3.Connection:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        _create_incremental(path)
    conn = connect(path, read_only=False)
    try:
        _check_json(conn, path)
        _migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _check_json(conn: sqlite3.Connection, path: str) -> None:
    """Refuse to start on an SQLite without its JSON functions: a batch of events is one
    JSON array that ``json_each`` splits into rows (rows.EVENTS_INSERT). They are built in
    since SQLite 3.38; an older library may lack them."""
    try:
        conn.execute("SELECT value FROM json_each('[1]')").fetchall()
    except sqlite3.OperationalError as exc:
        raise StoreError(
            f"{path}: this SQLite ({sqlite3.sqlite_version}) has no JSON functions ({exc})"
        ) from None
