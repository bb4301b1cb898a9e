"""The MCP tools and the server that serves them, over stdio or streamable HTTP alike.

Each tool is a short function: it asks the daemon through :class:`~vmctl.mcp.adapter.Vmctl`
(the lifespan's object, so one per server) and turns the answer into a
:class:`~vmctl.mcp.replies.Reply`. A :class:`~vmctl.mcp.adapter.DaemonError` becomes a
tool error led by its code in :func:`_answer`, the one place that happens.

Runs start without waiting (``"wait": false``) and follow the execution's event stream,
so a run outliving ``wait_seconds`` is returned still running (to follow with
``read_events``, or stop with ``cancel_execution``), and a call its client cancels
cancels its execution.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, Literal

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.tools import Tool
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from vmctl.api.models import Execution, Session
from vmctl.mcp import replies
from vmctl.mcp.adapter import DaemonError, Defaults, Vmctl, open_vmctl

SERVER_NAME = "vmctl"
INSTRUCTIONS = """\
vmctl runs JavaScript in isolated, stateful sessions (QuickJS: modern JavaScript, \
top-level await, timers, console, the common web APIs such as URL, TextEncoder, crypto and \
structuredClone; TypeScript types are stripped; no network). A session keeps its global \
state between runs: start with run_javascript without a session_id, then pass the session_id \
it returns. Close sessions you no longer need."""
DEFAULT_WAIT_SECONDS = 60.0
MAX_WAIT_SECONDS = 600.0
MAX_EVENTS_WAIT_SECONDS = 30.0  # the API's wait_ms maximum

ServerContext = Context[Vmctl, Any]

SessionId = Annotated[
    str | None,
    Field(
        description="The session to run in (an id from an earlier result, create_session or "
        "list_sessions). Omit it to create a new session; its id is in the result."
    ),
]
WaitSeconds = Annotated[
    float,
    Field(
        ge=0,
        le=MAX_WAIT_SECONDS,
        description="How long to wait for the run to end before returning it still running "
        "(follow it with read_events, stop it with cancel_execution). The template's limits "
        "(5 s of wall time by default) stop the run in any case.",
    ),
]
ExecutionId = Annotated[
    str, Field(min_length=1, description="The execution's id, from a run's result.")
]


async def run_javascript(
    ctx: ServerContext,
    code: Annotated[
        str,
        Field(
            min_length=1,
            max_length=500_000,
            description="JavaScript (or TypeScript) to evaluate. The value of the last "
            "expression is the result; top-level await works; console output is captured.",
        ),
    ],
    session_id: SessionId = None,
    wait_seconds: WaitSeconds = DEFAULT_WAIT_SECONDS,
) -> CallToolResult:
    """Run JavaScript in a session and return its console output and the value of its last
    expression. Globals it declares stay in the session for the next run. A thrown
    exception is a normal result; a run stopped by a limit (EXECUTION_TIMEOUT,
    OUTPUT_LIMIT_EXCEEDED, MEMORY_LIMIT_EXCEEDED) is a tool error with the code."""
    vm = _vm(ctx)
    return await _answer(_run(vm, session_id, wait_seconds, lambda s: vm.start_repl(s, code)))


async def run_file(
    ctx: ServerContext,
    path: Annotated[
        str,
        Field(
            min_length=1,
            max_length=4096,
            description="The script's path relative to the session's worktree, e.g. "
            "'main.js' or 'src/job.mjs'.",
        ),
    ],
    session_id: SessionId = None,
    args: Annotated[
        dict[str, Any] | None,
        Field(description="A JSON object the script sees as the global __ARGS__."),
    ] = None,
    env: Annotated[
        dict[str, Any] | None,
        Field(description="A JSON object the script sees as the global __ENV__."),
    ] = None,
    wait_seconds: WaitSeconds = DEFAULT_WAIT_SECONDS,
) -> CallToolResult:
    """Run a JavaScript file of the session's worktree in the session and return its console
    output and its value. Errors and limits are reported as for run_javascript; a missing
    file is FILE_NOT_FOUND, a path leaving the worktree INVALID_PATH."""
    vm = _vm(ctx)

    def start(session: str) -> Awaitable[Execution]:
        return vm.start_file(session, path, args or {}, env or {})

    return await _answer(_run(vm, session_id, wait_seconds, start))


async def create_session(
    ctx: ServerContext,
    template: Annotated[
        str | None,
        Field(
            max_length=200,
            description="The template (id or name) whose limits, startup files and modules "
            "the session gets. Default: the template 'default', made with the daemon's "
            "default limits when missing.",
        ),
    ] = None,
    worktree_path: Annotated[
        str | None,
        Field(
            max_length=4096,
            description="Absolute path of the directory the session works in (run_file "
            "paths are relative to it); it must lie under the daemon's worktree roots. "
            "Default: the server's worktree.",
        ),
    ] = None,
) -> CallToolResult:
    """Start a new session: a fresh JavaScript runtime whose global state lasts until it is
    closed. Returns its id, to pass to run_javascript and run_file."""
    return await _answer(_created(_vm(ctx), template, worktree_path))


async def list_sessions(
    ctx: ServerContext,
    status: Annotated[
        Literal["open", "ready", "starting", "crashed", "closed", "all"],
        Field(description="Which sessions: 'open' (every one not closed), one status, or 'all'."),
    ] = "open",
    limit: Annotated[int, Field(ge=1, le=200, description="At most this many, newest first.")] = 20,
) -> CallToolResult:
    """List sessions, newest first: id, status, worktree, creation time, last error."""
    return await _answer(_listed(_vm(ctx), status, limit))


async def close_session(
    ctx: ServerContext,
    session_id: Annotated[str, Field(min_length=1, description="The session to close.")],
) -> CallToolResult:
    """Close a session: its worker stops (a running execution ends cancelled) and its
    state is gone. Closing a closed session does nothing."""
    vm = _vm(ctx)
    return await _answer(_session_reply(vm.close_session(session_id), "Closed"))


async def restart_session(
    ctx: ServerContext,
    session_id: Annotated[str, Field(min_length=1, description="The session to restart.")],
    replay: Annotated[
        bool,
        Field(description="Run again the executions that made its state (those that ended ok)."),
    ] = True,
) -> CallToolResult:
    """Give a session a fresh worker: after a crash (out of memory, a killed worker), or to
    start its state over (replay false). With replay, its state is made again by running
    its earlier executions again, in order; the reply says how many, and where it stopped."""
    vm = _vm(ctx)
    return await _answer(_restarted(vm.restart_session(session_id, replay)))


async def read_events(
    ctx: ServerContext,
    execution_id: ExecutionId,
    after_seq: Annotated[
        int, Field(ge=0, description="Only events after this seq (0: from the first).")
    ] = 0,
    limit: Annotated[int, Field(ge=1, le=1000, description="At most this many events.")] = 200,
    wait_seconds: Annotated[
        float,
        Field(
            ge=0,
            le=MAX_EVENTS_WAIT_SECONDS,
            description="When the execution runs and has no event after after_seq yet, "
            "wait up to this long for one (or for its end).",
        ),
    ] = 0,
) -> CallToolResult:
    """Read an execution's events (input, console lines, value or exception, the daemon's
    notes) after a seq, with the execution's status: to follow a run still running, or
    to read output a run's result cut."""
    return await _answer(_events(_vm(ctx), execution_id, after_seq, limit, wait_seconds))


async def cancel_execution(ctx: ServerContext, execution_id: ExecutionId) -> CallToolResult:
    """Stop a running execution; the session keeps its state. Returns the execution once it
    has ended (an ended one is returned unchanged)."""
    vm = _vm(ctx)
    return await _answer(_execution_reply(vm.cancel(execution_id)))


# -- what the tools do ------------------------------------------------------------------


def _vm(ctx: ServerContext) -> Vmctl:
    return ctx.request_context.lifespan_context


async def _run(
    vm: Vmctl,
    session_id: str | None,
    wait_seconds: float,
    start: Callable[[str], Awaitable[Execution]],
) -> replies.Reply:
    created = session_id is None
    if session_id is None:
        session_id = (await vm.create_session(None, None)).id
    execution = await start(session_id)
    transcript = replies.Transcript()
    try:
        with anyio.move_on_after(wait_seconds):
            execution = await vm.follow(execution.id, 0, transcript.add)
    except anyio.get_cancelled_exc_class():
        await vm.cancel_shielded(execution.id)  # whoever called us has given up on the run
        raise
    if execution.status == "running":
        execution = await vm.execution(execution.id)  # its metrics so far
    return replies.run_reply(execution, transcript, created, wait_seconds)


async def _created(vm: Vmctl, template: str | None, worktree: str | None) -> replies.Reply:
    session = await vm.create_session(template, worktree)
    return replies.session_reply(session, "Created session")


async def _listed(vm: Vmctl, status: str, limit: int) -> replies.Reply:
    api_status = None if status in ("open", "all") else status
    sessions = await vm.list_sessions(api_status)
    if status == "open":
        sessions = [s for s in sessions if s.status != "closed"]
    return replies.sessions_reply(sessions[:limit], len(sessions), status)


async def _restarted(call: Awaitable[Session]) -> replies.Reply:
    return replies.restarted_reply(await call)


async def _session_reply(call: Awaitable[Session], what: str) -> replies.Reply:
    return replies.session_reply(await call, what)


async def _execution_reply(call: Awaitable[Execution]) -> replies.Reply:
    return replies.execution_reply(await call)


async def _events(
    vm: Vmctl, execution_id: str, after_seq: int, limit: int, wait_seconds: float
) -> replies.Reply:
    events = await vm.events(execution_id, after_seq, round(wait_seconds * 1000))
    # The record read after the events: if it says ended, none can follow those read.
    execution = await vm.execution(execution_id)
    return replies.events_reply(execution, events[:limit], len(events) > limit)


async def _answer(work: Awaitable[replies.Reply]) -> CallToolResult:
    """The reply as MCP has it; a refusal or an unreachable daemon as a tool error."""
    try:
        reply = await work
    except DaemonError as exc:
        reply = replies.failure_reply(exc.code, exc.message, exc.details)
    return CallToolResult(
        content=[TextContent(text=reply.text)],
        structured_content=reply.data,
        is_error=reply.is_error,
    )


# -- the server -------------------------------------------------------------------------

_READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
_CHANGES = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
_ENDS = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
)
# Each tool, what it may do, and the Struct its structured content is.
TOOLS: list[tuple[Callable[..., Awaitable[CallToolResult]], ToolAnnotations, type[Any]]] = [
    (run_javascript, _CHANGES, Execution),
    (run_file, _CHANGES, Execution),
    (create_session, _CHANGES, Session),
    (list_sessions, _READ_ONLY, replies.SessionList),
    (close_session, _ENDS, Session),
    (restart_session, _CHANGES, Session),
    (read_events, _READ_ONLY, replies.EventsPage),
    (cancel_execution, _ENDS, Execution),
]


def _tool(fn: Callable[..., Any], annotations: ToolAnnotations, output: type[Any]) -> Tool:
    tool = Tool.from_function(fn, annotations=annotations)
    # The output schema is the API's own Struct's: published, not re-validated by pydantic.
    tool.fn_metadata.output_schema = replies.output_schema(output)
    return tool


def build_server(url: str, token: str | None, defaults: Defaults) -> MCPServer[Vmctl]:
    """The MCP server of the vmctl daemon at ``url``; its lifespan holds the client."""

    @contextlib.asynccontextmanager
    async def lifespan(server: MCPServer[Vmctl]) -> AsyncIterator[Vmctl]:
        async with open_vmctl(url, token, defaults) as vm:
            yield vm

    return MCPServer(
        SERVER_NAME,
        instructions=INSTRUCTIONS + f" New sessions work in {defaults.worktree}.",
        tools=[_tool(fn, annotations, output) for fn, annotations, output in TOOLS],
        lifespan=lifespan,
        log_level="WARNING",
    )
