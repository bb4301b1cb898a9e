"""One JavaScript session: the engine, its worktree, and what each request does in it.

:meth:`JsSession.handle` runs one request on the JavaScript thread and always ends it with
exactly one terminal frame. Engine errors become coded :class:`Error` frames in
:func:`_failure` (the one place that maps them); any other exception becomes ``INTERNAL``
with its traceback on stderr. Global state persists across requests: one context per worker.

What a request runs under (id, budget, resolver extensions, host modules) is one
:class:`~vmctl.worker.limits.RunningRequest`, made in ``handle`` and passed down as an
argument. For exactly its duration it also sits in the session's one
:class:`~vmctl.worker.limits.RequestSlot`, for the callbacks that cannot be passed it: the
engine's interrupt handler and module normalizer, the console and ``require`` callables.

A REPL snippet goes through :func:`repl.compile_snippet`. Every other script (a library, a
startup file, a file run that is not a module) goes through :func:`repl.compile_script` and
is evaluated in the global scope with the same declarations: its top-level ``let``,
``const`` and ``class`` become globals that later requests see and may declare again. So a
file can be run twice in one session, a snippet may declare a name a library declared, and
what a file defines is there for the snippets after it, as with ``.load`` in Node's REPL.
Node would run a ``.js`` file as a CommonJS module with file-local declarations; here that is
what a module is for: a ``.mjs`` file (or any file with ``runtime.esm``) keeps its top-level
declarations to itself. Libraries are evaluated once per worker start, never strict (they
are third-party code); snippets, startup files and file runs are strict with
``runtime.strict`` (the rewrite's ``var`` declarations stay global in strict code).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, NamedTuple, TypeVar

import msgspec

from vmctl.protocol import (
    PROTOCOL_VERSION,
    Error,
    ErrorCode,
    ExecLimits,
    ExecRepl,
    Frame,
    Hello,
    JsException,
    Library,
    Ok,
    RunFile,
    RunStartup,
    Value,
    decode_request,
    encode,
)
from vmctl.worker import hostcrypto, repl, webapis
from vmctl.worker.channel import FrameWriter, Inbox, Job
from vmctl.worker.engine import ENGINE_VERSION, Engine
from vmctl.worker.engines import (
    AttachRefused,
    Completion,
    EngineError,
    Interrupted,
    JsEngine,
    JsThrown,
    NeverSettled,
    OutOfMemory,
)
from vmctl.worker.hostmodules import REQUIRE_SOURCE, HostModules
from vmctl.worker.limits import Budget, RequestSlot, RunningRequest
from vmctl.worker.plain import PlainEngine
from vmctl.worker.sources import SourceFiles
from vmctl.worker.typescript import TypeScriptError
from vmctl.worker.worktree import PathRefused, Worktree

OPERATIONS = ("exec_repl", "run_file", "run_startup", "cancel", "ping", "shutdown")

# What the fork server runs before it forks (JsSession._warm): the common paths of a request.
_WARM_SNIPPETS = (
    "1 + 1",
    "({ a: [1, 'x', { b: 2 }], s: 'text' })",
    "console.log('warm', 1)",
    "throw new Error('warm')",
    "await 1",
)
_WARM_ROUNDS = 8  # CPython 3.11 specialises an instruction after a few runs
_WARM_UP_MS = 1000  # the budget of a worker's own warm-up request (JsSession.warm_up)

# QuickJS's own default; the main thread's C stack (8 MiB by default) has room for it plus
# the Python frames between a console call and the script.
STACK_BYTES = 1024 * 1024

_LEVELS = frozenset({"log", "info", "warn", "error", "debug"})

# The prelude's files, in the order they make up its one function body (see prelude.js).
PRELUDE_FILES = (
    "intrinsics.js",
    "inspect.js",
    "errors.js",
    "layout.js",
    "format.js",
    "console.js",
    "timers.js",
    "webapis.js",
    "prelude.js",
)


class _Described(msgspec.Struct):
    """What ``__vmctl.describe`` returns (see prelude.js); ``json`` stays the inspector's
    JSON text, which the Value frame carries as it is."""

    type: str
    preview: str
    json: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET


class _Thrown(msgspec.Struct):
    """What ``__vmctl.exception`` returns (see prelude.js)."""

    message: str
    name: str | None = None
    stack: str | None = None


P = TypeVar("P", _Described, _Thrown)


def _decode_payload(text: str, payload_type: type[P]) -> P:
    """A JSON payload from the inspector. JSON.stringify escapes a lone surrogate as
    ``\\udXXX``, which msgspec refuses and no frame could carry: those go the slow way,
    through the json module, with each lone surrogate replaced by U+FFFD."""
    if "\\ud" not in text.lower():
        return msgspec.json.decode(text, type=payload_type)
    # Re-encoded, well formed: a Raw field gets the new text.
    return msgspec.json.decode(
        msgspec.json.encode(_well_formed(json.loads(text))), type=payload_type
    )


def _well_formed(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [_well_formed(item) for item in value]
    if isinstance(value, dict):
        return {_well_formed(key): _well_formed(item) for key, item in value.items()}
    return value


@contextlib.contextmanager
def _writer_to_nowhere() -> Iterator[FrameWriter]:
    """A frame writer to /dev/null, for a session the fork server runs before it forks;
    closed afterwards (which joins its console thread, if a warm-up started it)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    writer = FrameWriter(devnull)
    try:
        yield writer
    finally:
        writer.close()
        os.close(devnull)


def _value_frame(request_id: int, described: str) -> Value:
    """The Value frame of the inspector's description of a value."""
    value = _decode_payload(described, _Described)
    return Value(id=request_id, value_type=value.type, preview=value.preview, json=value.json)


class StartupError(Exception):
    """A library or startup file of a RunStartup request failed; the message names it."""

    def __init__(self, code: ErrorCode, message: str, limit: str | None = None) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.limit = limit


class JsSession:
    """The worker's one context and the requests that run in it, one at a time."""

    def __init__(self, root: str, writer: FrameWriter) -> None:
        self._bind(root, writer)
        self._slot = RequestSlot()  # the running request, for the callbacks
        self._engine = _open_engine(self._sources, self._slot)
        self._mem_mb: int | None = None  # the engine's heap limit, as the last request set it
        self._repl_count = 0
        self._libraries: set[str] = set()
        self._clock_restarted = False
        self._bootstrap()

    def _bind(self, root: str, writer: FrameWriter) -> None:
        self._writer = writer
        self._worktree = Worktree(root)
        self._sources = SourceFiles(self._worktree)
        self._modules = HostModules(self._worktree)

    def _bootstrap(self) -> None:
        engine = self._engine
        engine.set_stack_limit(STACK_BYTES)
        engine.add_callable("__vmctl_host_console", self._console)
        engine.add_callable("__vmctl_host_modules", self._host_modules)
        engine.add_callable("__vmctl_host_crypto", hostcrypto.call)
        engine.add_callable("__vmctl_host_load", engine.load_script)
        engine.bootstrap(webapis.vendor_source(), "<vendor>")  # webapis.js takes it
        engine.bootstrap(prelude_source(), "<prelude>")
        engine.bootstrap(REQUIRE_SOURCE, "<require>")
        engine.use_inspector("__vmctl.describe", "__vmctl.exception", "__vmctl.settle")
        engine.use_lazy_scripts(webapis.RECEIVE, webapis.lazy_scripts())
        engine.use_event_loop("__vmctl.timers.step", "__vmctl.timers.clear")

    @classmethod
    def precompile(cls) -> None:
        """Compile the runtime's own scripts to bytecode in this process, by bootstrapping a
        session that runs nothing: the fork server calls it before it forks, so each worker
        reads the bytecode instead of parsing the prelude again. The session is closed; its
        context goes with the next collection (the caller collects before it forks)."""
        with _writer_to_nowhere() as writer:
            session = cls("/", writer)
            for filename, source in webapis.lazy_scripts().values():
                session._engine.compile(source, filename)
            session._warm()
            session.close()

    @classmethod
    def ahead(cls) -> JsSession | None:
        """A session made before the fork, for each forked worker to :meth:`adopt`: the
        fork server makes it once (context, prelude, warm-up), and every worker shares those
        pages with it until it writes them, instead of building a context of its own (an
        idle worker's USS 3.8 -> 3.0 MiB, fork -> handshake 4.3 -> 2.4 ms). None when the
        engine runs degraded: that one cannot give each copy a ``Math.random`` of its own.

        It has written no frame, and its worktree until adopted is ``/dev/null``, a file:
        every path under it names nothing, so no file is reachable before the adopt."""
        with _writer_to_nowhere() as writer:
            session = cls(os.devnull, writer)
            session.warm_up()
        if not isinstance(session._engine, Engine):
            session.close()
            return None
        return session

    def adopt(self, root: str, writer: FrameWriter) -> None:
        """Make this forked copy of a session made :meth:`ahead` the worker's own: its
        worktree (files, imports, ``fs``), its frame writer, and its own ``Math.random``.
        What a fresh session has besides is the same here: nothing ran in it but the
        prelude and the warm-up, whose traces the warm-up clears."""
        if not isinstance(self._engine, Engine):
            raise TypeError("only a session made ahead can be adopted")
        self._bind(root, writer)
        self._engine.adopt(self._sources)

    def _warm(self) -> None:
        """Run the request path enough times for CPython to specialise its code here, in the
        fork server: a worker's first request then neither pays for it nor copies the pages
        it would write (first 1+1 in a worker ~1.0 -> ~0.45 ms, its USS -0.45 MiB)."""
        inbox = Inbox()
        limits = ExecLimits(cpu_ms=1000, wall_ms=1000, mem_mb=64)
        for number in range(_WARM_ROUNDS):
            for offset, code in enumerate(_WARM_SNIPPETS):
                job = ExecRepl(id=number * 10 + offset + 1, code=code, limits=limits)
                inbox.put(job)
                self.handle(job, inbox)

    def hello(self) -> Hello:
        return Hello(
            protocol=PROTOCOL_VERSION,
            pid=os.getpid(),
            engine="quickjs",
            engine_version=ENGINE_VERSION,
            operations=OPERATIONS,
            soft_interrupt=self._engine.soft_interrupt,
            degraded_reason=self._engine.degraded_reason,
        )

    def warm_up(self) -> None:
        """Run one REPL request the way a real one runs (decoded as the reader decodes it,
        answered, its frames encoded, not sent), so that this process has its own copy of
        the pages a request writes (QuickJS's, the parser's, CPython's reference counts)
        before anyone waits for one: a claimed worker's first ``1+1`` costs its worker
        ~0.5 ms of CPU without it, ~0.25 ms with it. Called after Hello, while the
        supervisor reads it (or while the worker waits in the warm pool).

        It leaves nothing a request could see: the value of ``1 + 1`` is no global, the
        REPL number is put back, the clock is left for the first request to restart (every
        request sets its own heap limit), and the garbage goes with the next collection."""
        repl.load_parser()
        limits = ExecLimits(cpu_ms=_WARM_UP_MS, wall_ms=_WARM_UP_MS, mem_mb=64)
        job = decode_request(encode(ExecRepl(id=0, code=_WARM_SNIPPETS[0], limits=limits)))
        assert isinstance(job, ExecRepl)
        request = RunningRequest(job.id, Budget(_WARM_UP_MS, _WARM_UP_MS), (), frozenset())
        try:
            with self._slot.hold(request):
                frames = self._answer(job, request)
            b"".join(map(encode, frames))  # not sent
        finally:
            self._repl_count = 0
            self._clock_restarted = False

    def close(self) -> None:
        self._engine.close()

    # -- one request --

    def handle(self, job: Job, inbox: Inbox) -> None:
        """Run ``job`` and write its events and exactly one terminal frame."""
        budget = Budget(job.limits.wall_ms, job.limits.cpu_ms)
        if not inbox.begin(job.id, budget):  # from here a Cancel reaches ``budget``
            reason = "The worker is exiting" if inbox.closed else "Cancelled before it started"
            self._writer.write(Error(id=job.id, code="CANCELLED", message=reason))
            return
        runtime = job.runtime
        request = RunningRequest(job.id, budget, runtime.extensions, frozenset(runtime.modules))
        try:
            with self._slot.hold(request):
                frames = self._answer(job, request)
            if not isinstance(frames[-1], Ok):
                self._engine.abandon()  # its timers and rejections die with it
        finally:
            inbox.end()
        self._writer.write(*frames)

    def _answer(self, job: Job, request: RunningRequest) -> tuple[Frame, ...]:
        """Run ``job``; the frames that end it: its value or its failure's events, then its
        terminal frame."""
        try:
            self._set_memory_limit(job.limits.mem_mb)
            if not self._clock_restarted:
                # The first request (its startup, else its first execution), before any
                # code of the session: performance.now() counts from here, however long
                # the worker waited to be claimed (the daemon's warm pool).
                self._engine.restart_clock()
                self._clock_restarted = True
            value = self._run(job, request)
            ok = Ok(id=request.id, cpu_ms=request.budget.cpu_used_ms())
            return (ok,) if value is None else (value, ok)
        except Exception as exc:
            return self._fail(request, exc)

    def _set_memory_limit(self, mem_mb: int) -> None:
        if mem_mb != self._mem_mb:
            self._engine.set_memory_limit(mem_mb * 1024 * 1024)
            self._mem_mb = mem_mb

    def _run(self, job: Job, request: RunningRequest) -> Value | None:
        """Run ``job``; its Value frame, if it has one."""
        match job:
            case ExecRepl():
                return _value_frame(request.id, self._eval_snippet(job))
            case RunFile():
                return self._run_file(job, request)
            case RunStartup():
                self._run_startup(job, request)
        return None

    def _eval_snippet(self, job: ExecRepl) -> str:
        """The snippet's value, described, once it and its event loop are done."""
        self._repl_count += 1
        label = f"<repl:{self._repl_count}>"
        snippet = repl.read_snippet(job.code) or repl.compile_snippet(
            self._sources.typescript_snippet(job.code, label)
        )
        # A snippet whose value is a promise reports what it settles to (see repl.py).
        return self._engine.eval_script(
            snippet.source,
            label,
            strict=job.runtime.strict,
            completion="promise" if snippet.is_async else "adopt",
        )

    def _run_file(self, job: RunFile, request: RunningRequest) -> Value:
        name = self._worktree.locate(job.path)
        self._engine.set_global_json("__ARGS__", msgspec.json.encode(job.args).decode())
        self._engine.set_global_json("__ENV__", msgspec.json.encode(job.env).decode())
        text = self._sources.script(name, job.runtime.esm)
        if text is None:
            described = self._engine.eval_module(name)
        else:
            described = self._eval_source(text, name, strict=job.runtime.strict)
        return _value_frame(request.id, described)

    def _run_startup(self, job: RunStartup, request: RunningRequest) -> None:
        for library in job.libraries:
            if library.path not in self._libraries:  # once per worker start
                step = partial(self._eval_library, library)
                self._startup_step(request, f"library {library.path}", step)
                self._libraries.add(library.path)
        for path in job.files:
            step = partial(self._eval_startup, path, job.runtime.strict)
            self._startup_step(request, f"startup file {path}", step)

    def _eval_library(self, library: Library) -> None:
        self._eval_source(library.source, library.path, strict=False)

    def _eval_startup(self, path: str, strict: bool) -> None:
        self._eval_file(self._worktree.locate(path), strict)

    def _eval_file(self, name: str, strict: bool) -> str:
        """Evaluate the worktree's script ``name`` in the global scope; its value, described."""
        return self._eval_source(self._sources.script_text(name), name, strict=strict)

    def _eval_source(self, text: str, name: str, *, strict: bool) -> str:
        """A script's value once it and its event loop are done; a promise is adopted."""
        script = repl.compile_script(text)
        completion: Completion = "promise" if script.is_async else "adopt"
        return self._engine.eval_script(script.source, name, strict=strict, completion=completion)

    def _startup_step(self, request: RunningRequest, what: str, step: Callable[[], None]) -> None:
        """Run one library or startup file; a failure names it (any JsException goes first)."""
        try:
            step()
        except PathRefused as exc:
            code: ErrorCode = "INVALID_PATH" if exc.code == "INVALID_PATH" else "STARTUP_FAILED"
            raise StartupError(code, f"{what}: {exc.message}") from exc
        except TypeScriptError as exc:
            raise StartupError("STARTUP_FAILED", f"{what} failed: SyntaxError: {exc}") from exc
        except EngineError as exc:
            failure = _failure(exc, request.id, self._mem_mb)
            for event in failure.events:
                self._writer.write(event)
            raise StartupError(
                "STARTUP_FAILED", f"{what} failed: {failure.message}", failure.limit
            ) from exc

    # -- frames --

    def _fail(self, request: RunningRequest, exc: Exception) -> tuple[Frame, ...]:
        """The failure's events and its terminal frame."""
        if isinstance(exc, EngineError):
            failure = _failure(exc, request.id, self._mem_mb)
            if isinstance(exc, OutOfMemory):
                self._engine.collect_garbage()  # so the next request starts with room
        elif isinstance(exc, PathRefused):
            failure = _Failure(exc.code, exc.message)
        elif isinstance(exc, TypeScriptError):
            message = f"SyntaxError: {exc}"
            thrown = JsException(id=request.id, message=message, name="SyntaxError")
            failure = _Failure("JS_ERROR", message, events=(thrown,))
        elif isinstance(exc, StartupError):
            failure = _Failure(exc.code, str(exc), exc.limit)
        else:
            print(f"vmctl worker: request {request.id} failed unexpectedly", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
            failure = _Failure("INTERNAL", f"internal error in the worker: {exc!r}")
        error = Error(
            id=request.id,
            code=failure.code,
            message=failure.message,
            cpu_ms=request.budget.cpu_used_ms(),
            limit=failure.limit,
        )
        return (*failure.events, error)

    # -- the host callables: JavaScript calls them, so they read the request from the slot --

    def _console(self, level: object, text: object) -> None:
        """``__vmctl_host_console``: one console line, handed to the writer (which sends it
        at once, or in a batch with the lines around it within a millisecond)."""
        request = self._slot.current
        try:
            if request is None:
                print(f"console.{level} outside a request: {text}", file=sys.stderr)
                return
            level_name = level if isinstance(level, str) and level in _LEVELS else "log"
            self._writer.console(request.id, level_name, str(text))  # type: ignore[arg-type]
        except Exception:  # a callable must not raise into the binding
            traceback.print_exc(file=sys.stderr)
            if request is not None:
                request.budget.cancel()  # the frame pipe is gone: stop the script

    def _host_modules(self, op: object, args_json: object) -> str:
        """``__vmctl_host_modules``: one host-module operation, with the request's modules."""
        request = self._slot.current
        enabled = request.modules if request is not None else frozenset()
        return self._modules.call(enabled, op, args_json)


class _Failure(NamedTuple):
    """How a failed request is reported: its code, message, limit and events."""

    code: ErrorCode
    message: str
    limit: str | None = None
    events: tuple[Frame, ...] = ()


def _failure(exc: EngineError, request_id: int, mem_mb: int | None) -> _Failure:
    """The one mapping from engine errors to error codes."""
    if isinstance(exc, JsThrown):
        thrown = _decode_payload(exc.payload, _Thrown)
        event = JsException(
            id=request_id, message=thrown.message, name=thrown.name, stack=thrown.stack
        )
        return _Failure("JS_ERROR", thrown.message, events=(event,))
    if isinstance(exc, Interrupted):
        budget = exc.budget
        if budget.tripped == "cancel":
            return _Failure("CANCELLED", "Execution was cancelled")
        limit = budget.tripped or "wall_ms"
        value = budget.wall_ms if limit == "wall_ms" else budget.cpu_ms
        return _Failure("TIMEOUT", f"Execution exceeded {limit} limit of {value:g} ms", limit)
    if isinstance(exc, OutOfMemory):
        return _Failure(
            "MEMORY_LIMIT", f"Execution exceeded mem_mb limit of {mem_mb} MiB", "mem_mb"
        )
    if isinstance(exc, NeverSettled):
        message = "Error: Promise never settled: nothing is left that could resolve it"
        event = JsException(id=request_id, message=message, name="Error")
        return _Failure("JS_ERROR", message, events=(event,))
    return _Failure("INTERNAL", str(exc))


@functools.cache
def prelude_source() -> str:
    """The prelude: its files (see prelude.js) joined into one strict function, called.

    They are read beside this file, where the package data ships (importlib.resources would
    say the same and cost several milliseconds of imports at every worker start), once per
    process: the engine finds their bytecode by this very text.
    """
    parts = ['(function () {\n"use strict";\n']
    for name in PRELUDE_FILES:
        with open(os.path.join(os.path.dirname(__file__), name), encoding="utf-8") as file:
            parts.append(file.read())
    parts.append("})();\n")
    return "".join(parts)


def _open_engine(sources: SourceFiles, slot: RequestSlot) -> JsEngine:
    try:
        return Engine(sources, slot)
    except AttachRefused as exc:
        print(f"vmctl worker: running degraded (no soft interrupt): {exc}", file=sys.stderr)
        return PlainEngine(str(exc))
