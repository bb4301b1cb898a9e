"""The API's objects as the client reads them (see ../shared/api-contract.md).

These mirror the daemon's models but are the client's own: the CLI talks only
HTTP and never imports the supervisor. Unknown fields are ignored, so a newer
daemon that adds a field does not break an older CLI; fields the contract marks
optional default to ``None``. Numbers the contract leaves loose (metrics) are
``int | float`` so that ``--json`` re-encodes them exactly as they came.
"""

from __future__ import annotations

from typing import Any

import msgspec

Number = int | float


class Health(msgspec.Struct):
    status: str


class SandboxLayer(msgspec.Struct):
    name: str
    available: bool
    required: bool
    detail: str


class SandboxReport(msgspec.Struct):
    mode: str
    layers: list[SandboxLayer]
    missing: list[str]


class RuntimeSummary(msgspec.Struct):
    active_sessions: int
    active_session_ids: list[str]
    sandbox: SandboxReport | None = None  # a v1 daemon has none


class Limits(msgspec.Struct):
    cpu_ms: int
    wall_ms: int
    mem_mb: int
    max_events: int
    max_output_kb: int


class Resolver(msgspec.Struct):
    roots: list[str]
    extensions: list[str]
    allow_absolute_repo_imports: bool


class Runtime(msgspec.Struct):
    esm: bool
    strict: bool
    console: bool


class Settings(msgspec.Struct):
    vm_id: str
    limits: Limits
    resolver: Resolver
    runtime: Runtime


class Template(msgspec.Struct):
    id: str
    name: str
    engine: str
    created_at: str
    updated_at: str
    is_active: bool = True
    exposed_modules: list[str] = msgspec.field(default_factory=list)
    libraries: list[str] = msgspec.field(default_factory=list)


class Capability(msgspec.Struct):
    id: str
    vm_id: str
    kind: str
    name: str
    enabled: bool = False
    config: dict[str, Any] = msgspec.field(default_factory=dict)


class StartupFile(msgspec.Struct):
    id: str
    vm_id: str
    path: str
    order_index: int = 0
    mode: str = "eval"


class TemplateDetail(msgspec.Struct):
    template: Template
    settings: Settings
    capabilities: list[Capability]
    startup_files: list[StartupFile]


class NamedItem(msgspec.Struct):
    """A module or library attached to a template."""

    template_id: str
    name: str


class Deleted(msgspec.Struct, omit_defaults=True):
    """The answer to a DELETE: ``{"status": "ok", "template_id", "name"?}``."""

    status: str
    template_id: str
    name: str | None = None


class Session(msgspec.Struct):
    id: str
    vm_id: str
    workspace_id: str
    base_commit_oid: str
    worktree_path: str
    status: str
    created_at: str
    closed_at: str | None = None
    last_error: str | None = None
    runtime_meta: dict[str, Any] | None = None


class Metrics(msgspec.Struct):
    wall_ms: Number = 0
    cpu_ms: Number = 0
    events: int = 0
    output_bytes: int = 0


class Execution(msgspec.Struct):
    id: str
    session_id: str
    kind: str
    status: str
    started_at: str
    args: dict[str, Any] = msgspec.field(default_factory=dict)
    env: dict[str, Any] = msgspec.field(default_factory=dict)
    metrics: Metrics = msgspec.field(default_factory=Metrics)
    input: str | None = None
    path: str | None = None
    ended_at: str | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class Event(msgspec.Struct):
    execution_id: str
    seq: int
    ts: str
    type: str
    payload: dict[str, Any]
