"""The pure formatting functions: text out of API objects, no daemon needed."""

from __future__ import annotations

import click

from cli.samples import TS, event, plain
from vmctl.api.models import RuntimeSummary, Session, Template
from vmctl.cli import format as fmt
from vmctl.cli.daemon_record import DaemonRecord, DaemonStatus


def test_table_aligns_columns_to_the_widest_cell() -> None:
    text = fmt.table(["ID", "NAME"], [["1", "short"], ["1234", "x"]])
    assert text.split("\n") == ["ID    NAME", "1     short", "1234  x"]


def test_table_pads_by_visible_width_when_cells_are_styled() -> None:
    text = fmt.table(["S", "X"], [[click.style("ok", fg="green"), "a"], ["crashed", "b"]])
    assert plain(text).split("\n") == ["S        X", "ok       a", "crashed  b"]


def test_key_values_aligns_values_and_indents_continuation_lines() -> None:
    text = fmt.key_values([("A", "1"), ("Longer", "x\ny")])
    assert text.split("\n") == ["A:       1", "Longer:  x", "         y"]


def test_duration_uses_the_two_largest_units() -> None:
    assert [fmt.duration(s) for s in (5, 65, 3725, 90061)] == ["5s", "1m 5s", "1h 2m", "1d 1h"]


def test_one_line_cuts_long_and_multi_line_text() -> None:
    assert fmt.one_line("short") == "short"
    assert fmt.one_line("a" * 50, 10) == "a" * 9 + "…"
    assert fmt.one_line("first\nsecond") == "first…"


def test_empty_lists_say_so_instead_of_printing_a_bare_header() -> None:
    assert fmt.templates([]) == "No templates."
    assert fmt.sessions([]) == "No sessions."
    assert fmt.executions([]) == "No executions."
    assert fmt.events([]) == "No events."
    assert fmt.names([], "modules") == "No modules."


def test_templates_table_lists_modules_and_libraries() -> None:
    template = Template(
        id="t1", name="hello", engine="quickjs", created_at=TS, updated_at=TS,
        exposed_modules=["fs"], libraries=[],
    )  # fmt: skip
    lines = fmt.templates([template]).split("\n")
    assert lines[0].split() == ["ID", "NAME", "ENGINE", "MODULES", "LIBRARIES", "CREATED"]
    assert lines[1].split() == ["t1", "hello", "quickjs", "fs", "-", "2026-11-21", "09:00:00"]


def test_session_shows_worker_and_last_error() -> None:
    session = Session(
        id="s1", vm_id="t1", workspace_id="w", base_commit_oid="none", worktree_path="/tmp/x",
        status="crashed", created_at=TS, last_error="worker killed by signal 9\nstderr tail",
        runtime_meta={"pid": 42, "engine": "quickjs", "engine_version": "0.10", "restarts": 2},
    )  # fmt: skip
    text = plain(fmt.session(session))
    assert "Status:       crashed" in text
    assert "Worker:       pid 42, quickjs 0.10, 2 restarts" in text
    assert "Last error:   worker killed by signal 9\n              stderr tail" in text


def test_events_table_summarises_each_payload() -> None:
    items = [
        event(1, "input_echo", text="1+1"),
        event(2, "console", level="error", text="boom"),
        event(3, "value", type="number", preview="2"),
    ]
    rows = fmt.events(items).split("\n")
    assert rows[0].split() == ["SEQ", "TIME", "TYPE", "DETAIL"]
    assert rows[1].split() == ["1", "09:00:00.123", "input_echo", "1+1"]
    assert rows[2].endswith("[error] boom")
    assert rows[3].endswith("(number) 2")


def test_runtime_summary_counts_and_lists_sessions() -> None:
    summary = RuntimeSummary(active_sessions=2, active_session_ids=["a", "b"])
    assert fmt.runtime_summary(summary) == "2 live sessions\n  a\n  b"
    empty = RuntimeSummary(active_sessions=0, active_session_ids=[])
    assert fmt.runtime_summary(empty) == "0 live sessions"


def test_daemon_status_tells_running_stale_and_absent_apart() -> None:
    record = DaemonRecord(
        pid=7, url="http://127.0.0.1:1", started_at=TS, create_time=1.0, db_path="/h/vmctl.db",
        log_path="/h/daemon.log",
    )  # fmt: skip
    running = DaemonStatus(running=True, home="/h", record=record, uptime_s=65, active_sessions=3)
    text = fmt.daemon_status(running)
    assert text.startswith("vmctl daemon running\n")
    assert "Uptime:    1m 5s" in text
    assert "Sessions:  3 live" in text
    stale = DaemonStatus(running=False, home="/h", record=record, stale=True)
    assert fmt.daemon_status(stale).startswith("vmctl daemon not running (stale record: pid 7")
    absent = DaemonStatus(running=False, home="/h")
    assert fmt.daemon_status(absent) == "vmctl daemon not running (no record in /h)"
