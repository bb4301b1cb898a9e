"""The objects of the REST contract (../shared/api-contract.md), as the API sends them.

The daemon encodes its answers with these Structs (the store keeps them too), the OpenAPI
document is generated from them, and the Python client decodes with them: one definition
of each object. Field names follow the contract exactly. An optional field of the contract
(``closed_at?``, ``result?``...) is always sent, as ``null`` when it does not apply, so
clients never have to tell "absent" from "null". Timestamps are RFC 3339 strings in UTC
with millisecond precision.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from vmctl.json_depth import MAX_DEPTH

# How deeply a JSON value of a request (run-file ``args`` and ``env``, a capability's
# ``config``) may nest arrays and objects: the worker's values are held to the same rule.
MAX_JSON_DEPTH = MAX_DEPTH


class Model(msgspec.Struct):
    """Base of the API objects. Unknown fields are ignored when one is decoded, so a client
    reads the objects of a newer daemon that added a field."""


class FrozenModel(msgspec.Struct, frozen=True):
    """Base of the API objects that are values (replaced whole, never edited)."""


LimitName = Literal["max_events", "max_output_kb", "cpu_ms", "wall_ms", "mem_mb"]


class Limits(FrozenModel, frozen=True):
    cpu_ms: int = 2000
    wall_ms: int = 5000
    mem_mb: int = 128
    max_events: int = 50000
    max_output_kb: int = 256


class Resolver(FrozenModel, frozen=True):
    roots: tuple[str, ...] = (".",)
    extensions: tuple[str, ...] = (".js", ".mjs")
    allow_absolute_repo_imports: bool = False


class Runtime(FrozenModel, frozen=True):
    esm: bool = False
    strict: bool = False
    console: bool = True


RestartPolicy = Literal["never", "on-crash"]


class Lifecycle(FrozenModel, frozen=True):
    """What the daemon does with a template's sessions on its own (api-contract.md,
    "Sessions that branch, expire and come back"): close one idle for
    ``idle_timeout_ms`` or older than ``max_lifetime_ms`` (``None``: never), and
    whether to restart one whose worker died."""

    idle_timeout_ms: int | None = None
    max_lifetime_ms: int | None = None
    restart: RestartPolicy = "never"


class Settings(FrozenModel, frozen=True):
    vm_id: str
    limits: Limits = Limits()
    resolver: Resolver = Resolver()
    runtime: Runtime = Runtime()
    lifecycle: Lifecycle = Lifecycle()


class Template(Model):
    id: str
    name: str
    engine: str
    created_at: str
    updated_at: str
    is_active: bool = True
    exposed_modules: list[str] = []
    libraries: list[str] = []


class Capability(Model):
    id: str
    vm_id: str
    kind: str
    name: str
    enabled: bool = False
    config: dict[str, Any] = {}


class StartupFile(Model):
    id: str
    vm_id: str
    path: str
    order_index: int = 0
    mode: str = "eval"


class TemplateDetail(Model):
    template: Template
    settings: Settings
    capabilities: list[Capability]
    startup_files: list[StartupFile]


SessionStatus = Literal["starting", "ready", "crashed", "closed"]
SESSION_STATUSES: tuple[SessionStatus, ...] = ("starting", "ready", "crashed", "closed")


class Session(Model):
    id: str
    vm_id: str
    workspace_id: str
    base_commit_oid: str
    worktree_path: str
    status: SessionStatus
    created_at: str
    closed_at: str | None = None
    last_error: str | None = None
    runtime_meta: dict[str, Any] | None = None


ExecutionKind = Literal["repl", "run_file"]
ExecutionStatus = Literal["running", "ok", "error", "timeout", "cancelled", "crashed"]


class ExecutionMetrics(Model):
    wall_ms: float = 0.0
    cpu_ms: float = 0.0
    events: int = 0
    output_bytes: int = 0


class Execution(Model):
    id: str
    session_id: str
    kind: ExecutionKind
    status: ExecutionStatus
    started_at: str
    # Always present, even when empty: vm-system's clients read them unconditionally.
    args: dict[str, Any] = msgspec.field(default_factory=dict)
    env: dict[str, Any] = msgspec.field(default_factory=dict)
    metrics: ExecutionMetrics = msgspec.field(default_factory=ExecutionMetrics)
    input: str | None = None
    path: str | None = None
    ended_at: str | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


EventType = Literal["input_echo", "console", "value", "exception", "system"]


class Event(Model):
    execution_id: str
    seq: int
    ts: str
    type: EventType
    payload: dict[str, Any]


# -- answers that are not stored objects ----------------------------------------------------


class Health(Model):
    status: str


class SandboxLayer(Model):
    name: str
    available: bool
    required: bool
    detail: str


class SandboxReport(Model):
    mode: str
    layers: list[SandboxLayer]
    missing: list[str]


class RuntimeSummary(Model):
    """The sessions whose worker is alive now (the contract's two counts), and this
    daemon's additions, which a v1 daemon does not send (hence their defaults)."""

    active_sessions: int
    active_session_ids: list[str]
    sandbox: SandboxReport | None = None  # a v1 daemon has none
    busy_sessions: int = 0  # running an execution now
    starting_sessions: int = 0  # whose worker is being started
    max_sessions: int | None = None  # the daemon's capacity (--max-sessions)
    workers: dict[str, int] = {}  # session id -> its worker's pid
    pooled_workers: int = 0  # started ahead of need, waiting in the warm pool


class NamedItem(Model):
    """A module or library attached to a template."""

    template_id: str
    name: str


class Deleted(Model, omit_defaults=True):
    """The answer to a DELETE: ``{"status": "ok", "template_id", "name"?}``."""

    status: str
    template_id: str
    name: str | None = None


class StreamMessage(Model, omit_defaults=True):
    """One message of ``GET /executions/{id}/stream`` (server-sent events): an event, its
    ``id`` its seq and its ``data`` the Event's JSON; the last is ``end``, without an id,
    whose ``data`` is the Execution's JSON."""

    event: EventType | Literal["end"]
    data: str
    id: str | None = None
