"""Human-readable text for the API's objects: pure functions from values to text.

Nothing here prints or talks to the daemon. Colour is added with
``click.style``; ``click.echo`` strips it again when the output is not a
terminal, so these functions need not know where their text goes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import click

from vmctl.api.models import (
    Capability,
    Event,
    Execution,
    Limits,
    RuntimeSummary,
    Session,
    Settings,
    StartupFile,
    Template,
    TemplateDetail,
)
from vmctl.cli.daemon_record import DaemonStatus
from vmctl.cli.transcript import describe_error

STATUS_COLOURS = {
    "ok": "green",
    "ready": "green",
    "error": "red",
    "crashed": "red",
    "timeout": "yellow",
    "cancelled": "yellow",
    "starting": "cyan",
    "running": "cyan",
}


# -- building blocks ----------------------------------------------------------


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart; the last is not padded."""
    all_rows = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(click.unstyle(row[i])) for row in all_rows) for i in range(len(headers))]
    lines = []
    for row in all_rows:
        cells = [_pad(cell, width) for cell, width in zip(row[:-1], widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


def _pad(cell: str, width: int) -> str:
    # Pad by the visible width: a styled cell carries invisible escape codes.
    return cell + " " * (width - len(click.unstyle(cell)))


def key_values(pairs: Sequence[tuple[str, str]]) -> str:
    """``Label:  value`` lines with the values aligned; multi-line values are indented."""
    width = max(len(label) for label, _ in pairs) + 3  # the colon and two spaces
    lines = []
    for label, value in pairs:
        first, *rest = value.split("\n") if value else [""]
        lines.append(f"{label + ':':<{width}}{first}".rstrip())
        lines.extend(" " * width + line for line in rest)
    return "\n".join(lines)


def one_line(text: str, width: int = 40) -> str:
    """The first line of ``text``, cut to ``width`` characters with an ellipsis."""
    first = text.strip().split("\n", 1)[0]
    cut = len(first) > width or "\n" in text.strip()
    return first[: width - 1] + "…" if cut else first


def timestamp(ts: str | None) -> str:
    """``2026-11-21T09:00:00.123Z`` as ``2026-11-21 09:00:00``."""
    return ts[:19].replace("T", " ") if ts else "-"


def duration(seconds: float) -> str:
    """A short human duration: ``45s``, ``5m 3s``, ``2h 1m``, ``3d 4h``."""
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def styled_status(value: str) -> str:
    return click.style(value, fg=STATUS_COLOURS.get(value))


def json_text(value: Any) -> str:
    return json.dumps(value, separators=(", ", ": "), ensure_ascii=False)


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


# -- templates ----------------------------------------------------------------


def templates(items: Sequence[Template]) -> str:
    if not items:
        return "No templates."
    rows = [
        [
            t.id,
            t.name,
            t.engine,
            ",".join(t.exposed_modules) or "-",
            ",".join(t.libraries) or "-",
            timestamp(t.created_at),
        ]
        for t in items
    ]
    return table(["ID", "NAME", "ENGINE", "MODULES", "LIBRARIES", "CREATED"], rows)


def limits(value: Limits) -> str:
    return " ".join(f"{name}={getattr(value, name)}" for name in value.__struct_fields__)


def settings(value: Settings) -> str:
    runtime = value.runtime
    resolver = value.resolver
    lifecycle = value.lifecycle
    return key_values(
        [
            ("Limits", limits(value.limits)),
            (
                "Runtime",
                f"esm={json_text(runtime.esm)} strict={json_text(runtime.strict)} "
                f"console={json_text(runtime.console)}",
            ),
            (
                "Resolver",
                f"roots={','.join(resolver.roots)} extensions={','.join(resolver.extensions)} "
                f"absolute_imports={yes_no(resolver.allow_absolute_repo_imports)}",
            ),
            (
                "Lifecycle",
                f"idle_timeout_ms={_ms_or_off(lifecycle.idle_timeout_ms)} "
                f"max_lifetime_ms={_ms_or_off(lifecycle.max_lifetime_ms)} "
                f"restart={lifecycle.restart}",
            ),
        ]
    )


def _ms_or_off(value: int | None) -> str:
    return "off" if value is None else str(value)


def template_detail(detail: TemplateDetail) -> str:
    t = detail.template
    head = key_values(
        [
            ("Template", f"{t.name} ({t.id})"),
            ("Engine", t.engine),
            ("Created", timestamp(t.created_at)),
            ("Updated", timestamp(t.updated_at)),
            ("Modules", ", ".join(t.exposed_modules) or "-"),
            ("Libraries", ", ".join(t.libraries) or "-"),
        ]
    )
    parts = [head, settings(detail.settings)]
    parts.append("Startup files:\n" + indent(startup_files(detail.startup_files)))
    parts.append("Capabilities:\n" + indent(capabilities(detail.capabilities)))
    return "\n\n".join(parts)


def indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line if line else line for line in text.split("\n"))


def startup_files(items: Sequence[StartupFile]) -> str:
    if not items:
        return "No startup files."
    rows = [[str(f.order_index), f.mode, f.path] for f in items]
    return table(["ORDER", "MODE", "PATH"], rows)


def capabilities(items: Sequence[Capability]) -> str:
    if not items:
        return "No capabilities."
    rows = [[c.kind, c.name, yes_no(c.enabled), one_line(json_text(c.config), 50)] for c in items]
    return table(["KIND", "NAME", "ENABLED", "CONFIG"], rows)


def names(items: Sequence[str], what: str) -> str:
    return "\n".join(items) if items else f"No {what}."


# -- sessions -----------------------------------------------------------------


def sessions(items: Sequence[Session]) -> str:
    if not items:
        return "No sessions."
    rows = [
        [s.id, s.vm_id, styled_status(s.status), timestamp(s.created_at), s.worktree_path]
        for s in items
    ]
    return table(["ID", "TEMPLATE", "STATUS", "CREATED", "WORKTREE"], rows)


def worker(meta: dict[str, Any] | None) -> str:
    """``pid 4242, quickjs 0.10.1, 1 restart`` from a session's ``runtime_meta``."""
    if not meta:
        return "-"
    parts = []
    if "pid" in meta:
        parts.append(f"pid {meta['pid']}")
    engine = " ".join(str(meta[k]) for k in ("engine", "engine_version") if meta.get(k))
    if engine:
        parts.append(engine)
    restarts = meta.get("restarts")
    if restarts:
        parts.append(f"{restarts} restart{'s' if restarts != 1 else ''}")
    return ", ".join(parts) or json_text(meta)


def session(value: Session) -> str:
    pairs = [
        ("Session", value.id),
        ("Status", styled_status(value.status)),
        ("Template", value.vm_id),
        ("Workspace", value.workspace_id),
        ("Base commit", value.base_commit_oid),
        ("Worktree", value.worktree_path),
        ("Created", timestamp(value.created_at)),
    ]
    if value.closed_at:
        pairs.append(("Closed", timestamp(value.closed_at)))
    pairs.append(("Worker", worker(value.runtime_meta)))
    replay = (value.runtime_meta or {}).get("replay")
    if isinstance(replay, dict):
        pairs.append(("Replay", replayed(replay)))
    if value.last_error:
        pairs.append(("Last error", value.last_error.rstrip()))
    return key_values(pairs)


def replayed(report: dict[str, Any]) -> str:
    """``3 executions replayed, 1 with another value; stopped at <id>: <message>``."""
    count = report.get("replayed", 0)
    text = f"{count} execution{'s' if count != 1 else ''} replayed"
    if diverged := report.get("diverged"):
        text += f", {len(diverged)} with another value"
    failed = report.get("failed")
    if isinstance(failed, dict):
        error = failed.get("error") or {}
        where = failed.get("execution_id") or "the start"
        text += f"; stopped at {where}: {error.get('message') or error.get('code')}"
    return text


def runtime_summary(value: RuntimeSummary) -> str:
    count = value.active_sessions
    head = f"{count} live session{'s' if count != 1 else ''}"
    return "\n".join([head, *(f"  {sid}" for sid in value.active_session_ids)])


# -- executions -----------------------------------------------------------------


def executions(items: Sequence[Execution]) -> str:
    if not items:
        return "No executions."
    rows = [
        [
            e.id,
            e.kind,
            styled_status(e.status),
            timestamp(e.started_at),
            f"{e.metrics.wall_ms:g}",
            one_line(e.input if e.input is not None else e.path or ""),
        ]
        for e in items
    ]
    return table(["ID", "KIND", "STATUS", "STARTED", "WALL_MS", "SOURCE"], rows)


def metrics(value: Execution) -> str:
    m = value.metrics
    return (
        f"wall {m.wall_ms:g} ms, cpu {m.cpu_ms:g} ms, {m.events} events, "
        f"{m.output_bytes} output bytes"
    )


def execution(value: Execution) -> str:
    pairs = [
        ("Execution", value.id),
        ("Session", value.session_id),
        ("Kind", value.kind),
        ("Status", styled_status(value.status)),
        ("Started", timestamp(value.started_at)),
        ("Ended", timestamp(value.ended_at)),
    ]
    if value.input is not None:
        pairs.append(("Input", value.input))
    if value.path is not None:
        pairs.append(("Path", value.path))
    if value.args:
        pairs.append(("Args", json_text(value.args)))
    if value.env:
        pairs.append(("Env", json_text(value.env)))
    pairs.append(("Metrics", metrics(value)))
    if value.result is not None:
        pairs.append(("Result", str(value.result.get("preview", json_text(value.result)))))
    if value.error is not None:
        pairs.append(("Error", describe_error(value.status, value.error)))
    return key_values(pairs)


def event_detail(event: Event) -> str:
    """One event's payload as a short line for the events table."""
    payload = event.payload
    match event.type:
        case "input_echo":
            return one_line(str(payload.get("text", "")), 60)
        case "console":
            return f"[{payload.get('level', 'log')}] " + one_line(str(payload.get("text", "")), 60)
        case "value":
            return f"({payload.get('type', '?')}) " + one_line(str(payload.get("preview", "")), 60)
        case "exception" | "system":
            return one_line(str(payload.get("message", "")), 60)
        case _:
            return one_line(json_text(payload), 60)


def events(items: Sequence[Event]) -> str:
    if not items:
        return "No events."
    rows = [[str(e.seq), e.ts[11:23], e.type, event_detail(e)] for e in items]
    return table(["SEQ", "TIME", "TYPE", "DETAIL"], rows)


# -- the daemon -------------------------------------------------------------------


def daemon_status(value: DaemonStatus) -> str:
    record = value.record
    if record is None:
        return f"vmctl daemon not running (no record in {value.home})"
    if value.stale:
        return (
            f"vmctl daemon not running (stale record: pid {record.pid} "
            f"is no longer the daemon started at {timestamp(record.started_at)})"
        )
    pairs = [("URL", record.url), ("PID", str(record.pid))]
    if value.uptime_s is not None:
        pairs.append(("Uptime", duration(value.uptime_s)))
    if value.active_sessions is not None:
        pairs.append(("Sessions", f"{value.active_sessions} live"))
    pairs.append(("Store", record.db_path))
    pairs.append(("Log", record.log_path or "its terminal (started in the foreground)"))
    if value.problem:
        pairs.append(("Problem", value.problem))
    head = "vmctl daemon running" if not value.problem else "vmctl daemon running but not answering"
    return head + "\n" + indent(key_values(pairs))
