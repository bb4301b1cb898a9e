"""The engine adapter: one QuickJS context, driven through the wheel's C API.

quickjs-ng's Python binding names every script ``<input>``, can stop a script only with
``set_time_limit`` (which then refuses every call into Python, so no streaming console) and
has no module loader. Its shared library exports the QuickJS-NG C API, so :class:`Engine`
attaches to the context's runtime through :mod:`vmctl.worker.capi` (the one file that knows
the binding's layout) and installs:

- an interrupt handler that stops the script once the running request's
  :class:`~vmctl.worker.limits.Budget` is spent (wall clock, CPU time of the JavaScript
  thread, or a cancel from another thread);
- a module normalizer and loader that resolve ``import`` through a :class:`ModuleResolver`,
  with the running request's resolver extensions;
- evaluation through ``JS_Eval`` with a real filename, so stack frames name ``<repl:3>`` or
  ``src/a.js``.

C callbacks cannot be handed the request, so they read it from the session's
:class:`~vmctl.worker.limits.RequestSlot`, which holds it while it runs and is empty
between requests (then nothing interrupts and nothing can be imported).

The attach fails closed: when a layout check fails the constructor raises
:class:`~vmctl.worker.engines.AttachRefused` and the worker falls back to
:class:`~vmctl.worker.plain.PlainEngine` (the binding alone: no soft interrupt). Whether a
thrown value means out of memory is :mod:`vmctl.worker.heap`'s call.

Every JavaScript call happens on the thread that created the engine; only the running
request's ``budget.cancel()`` may be called from another thread.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from functools import partial
from typing import Protocol

import _quickjs

from vmctl.worker.capi import (
    ENGINE_VERSION,
    EVAL_COMPILE_ONLY,
    EVAL_MODULE,
    EVAL_STRICT,
    INTERRUPT,
    LOAD,
    NORMALIZE,
    PROMISE_PENDING,
    PROMISE_REJECTED,
    PROP_C_W_E,
    READ_OBJ_BYTECODE,
    TAG_EXCEPTION,
    TAG_OBJECT,
    UNDEFINED,
    WRITE_OBJ_BYTECODE,
    ErrorKind,
    JSValue,
    attach,
)
from vmctl.worker.engines import (
    AttachRefused,
    Completion,
    EngineError,
    Interrupted,
    JsEngine,
    JsThrown,
    NeverSettled,
    OutOfMemory,
    Unsupported,
)
from vmctl.worker.heap import HeapWatch
from vmctl.worker.limits import Budget, RequestSlot
from vmctl.worker.rejections import UnhandledRejections

# The names importers have always taken from here, wherever they are defined now.
__all__ = [
    "ENGINE_VERSION",
    "AttachRefused",
    "Completion",
    "Engine",
    "EngineError",
    "ImportRefused",
    "Interrupted",
    "JsThrown",
    "ModuleResolver",
    "NeverSettled",
    "OutOfMemory",
    "Unsupported",
]


# The runtime's own scripts as bytecode, by (filename, source): compiled by the first context
# of the process that evaluates them (the fork server's, before it forks), read by the others.
# Reading is about six times faster than parsing the source again.
_COMPILED: dict[tuple[str, str], bytes] = {}


class ImportRefused(Exception):
    """Raised by a :class:`ModuleResolver`; the message becomes the JavaScript error, a
    ``ReferenceError`` (as QuickJS's own loader throws) unless ``kind`` says otherwise."""

    def __init__(self, message: str, kind: ErrorKind = "ReferenceError") -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind


class ModuleResolver(Protocol):
    def resolve(self, base: str, specifier: str, extensions: tuple[str, ...]) -> str:
        """The canonical module name of ``specifier`` imported from module or script ``base``,
        trying ``extensions`` in order when no file is named as written."""

    def load(self, name: str) -> tuple[str, str]:
        """The source text and ``import.meta.url`` of a canonical module name."""


class Engine:
    """One QuickJS context for the life of the worker, with soft interrupts and modules.

    Raises :class:`AttachRefused` when the wheel is not the one whose layout capi knows.
    """

    soft_interrupt = True
    degraded_reason: str | None = None

    def __init__(self, resolver: ModuleResolver, slot: RequestSlot) -> None:
        self._context = _quickjs.Context()
        attachment = attach(self._context)
        self._api, self._rt, self._ctx = attachment.api, attachment.rt, attachment.ctx
        self._run = attachment.run  # every C call that may run JavaScript goes through it
        self._heap = HeapWatch(attachment, self._context.gc)
        self._random_state = attachment.random_state
        self._reseed()
        self._resolver = resolver
        self._slot = slot  # the running request, read by the callbacks below
        self._inspector: list[JSValue] = []  # describe, exception[, settle]
        self._timers: list[JSValue] = []  # step, clear: the timer queue the event loop runs
        self._receive: list[JSValue] = []  # the function handed each lazy script's value
        self._lazy: dict[str, tuple[str, str]] = {}
        self._rejections = UnhandledRejections(self._api, self._rt, self._ctx)
        # ctypes frees a callback's trampoline with its Python object: keep them as long as
        # the context. Each is tiny, since an exception inside one is printed and swallowed.
        self._on_interrupt = INTERRUPT(self._interrupt)
        self._on_normalize = NORMALIZE(self._normalize)
        self._on_load = LOAD(self._load)
        self._api.SetInterruptHandler(self._rt, self._on_interrupt, None)
        self._api.SetModuleLoaderFunc(self._rt, self._on_normalize, self._on_load, None)

    def _interrupt(self, rt: int | None, opaque: int | None) -> int:
        """JSInterruptHandler: non-zero stops the script."""
        self._heap.sample()
        request = self._slot.current
        return 1 if request is not None and request.budget.expired() else 0

    def adopt(self, resolver: ModuleResolver) -> None:
        """Make this forked copy of an engine made before the fork the child's own: its
        imports resolve through ``resolver``, and its ``Math.random`` continues from a state
        of its own, not the one every copy of the parent's context holds."""
        self._resolver = resolver
        self._reseed()

    def _reseed(self) -> None:
        """Seed ``Math.random`` from the system's randomness, not from the clock's
        microseconds as ``JS_NewContext`` did (two workers started in the same microsecond,
        or forked from one context, would draw the same numbers)."""
        self._random_state.value = int.from_bytes(os.urandom(8), "little") or 1

    # -- the binding's own knobs --

    def add_callable(self, name: str, fn: Callable[..., object]) -> None:
        """Expose a Python function as a global; it must never raise (return errors as data)."""
        self._context.add_callable(name, fn)

    def set_memory_limit(self, limit_bytes: int) -> None:
        self._context.set_memory_limit(limit_bytes)

    def set_stack_limit(self, limit_bytes: int) -> None:
        self._context.set_max_stack_size(limit_bytes)

    def collect_garbage(self) -> None:
        self._context.gc()

    def restart_clock(self) -> None:
        """Make now the time origin of ``performance`` (``now()`` counts from here): a
        worker that waited in the daemon's warm pool then shows a session no older than
        a fresh worker would. QuickJS-NG's own call, which defines ``performance`` again
        as the context's creation did (same place, same descriptor, a new origin)."""
        self._api.AddPerformance(self._ctx)

    # -- evaluation --

    def bootstrap(self, source: str, filename: str) -> None:
        """Evaluate trusted setup code (the prelude) and drop its value.

        The first time a process sees ``source`` it is compiled and its bytecode kept; later
        contexts (every worker the fork server forks) read the bytecode instead.
        """
        self._free(self._evaluate_compiled(source, filename))

    def compile(self, source: str, filename: str) -> None:
        """Keep the bytecode of trusted ``source`` for later contexts, running nothing."""
        self._free(self._compiled(source, filename))

    def use_lazy_scripts(self, receive: str, scripts: Mapping[str, tuple[str, str]]) -> None:
        """Trusted scripts evaluated when JavaScript asks (``__vmctl_host_load(name)``, which
        is :meth:`load_script`): ``scripts`` maps a name to its filename and source, and
        ``receive`` is an expression for the function that is handed each one's value."""
        self._lazy = dict(scripts)
        self._receive.append(self._eval(receive, "<lazy scripts>", 0))

    def load_script(self, name: object) -> str:
        """The host callable behind the lazy scripts: evaluate script ``name`` (from its
        bytecode once compiled) and hand its value to the receive function; ``""``, or why
        it could not. Never raises."""
        try:
            if not self._receive or str(name) not in self._lazy:
                return f"no lazy script {name!r}"
            filename, source = self._lazy[str(name)]
            value = self._evaluate_compiled(source, filename)
            self._free(self._call(self._receive[0], value, consume=True))
            return ""
        except EngineError as exc:
            return f"{type(exc).__name__}: {exc}"
        except Exception:
            traceback.print_exc(file=sys.stderr)
            return "internal error"

    def _evaluate_compiled(self, source: str, filename: str) -> JSValue:
        """The value of trusted script ``source``, run from its bytecode."""
        return self._checked(
            self._run(self._api.EvalFunction, self._ctx, self._compiled(source, filename))
        )

    def _compiled(self, source: str, filename: str) -> JSValue:
        """Script ``source`` compiled (a function to run), from the bytecode once kept."""
        key = (filename, source)
        if (bytecode := _COMPILED.get(key)) is not None:
            return self._checked(
                self._api.ReadObject(self._ctx, bytecode, len(bytecode), READ_OBJ_BYTECODE)
            )
        data = source.encode("utf-8", "surrogatepass")
        function = self._checked(
            self._run(
                self._api.Eval, self._ctx, data, len(data), filename.encode(), EVAL_COMPILE_ONLY
            )
        )
        try:
            _COMPILED[key] = self._write_bytecode(function)
        except BaseException:
            self._free(function)
            raise
        return function

    def _write_bytecode(self, function: JSValue) -> bytes:
        size = ctypes.c_size_t()
        buffer = self._api.WriteObject(self._ctx, ctypes.byref(size), function, WRITE_OBJ_BYTECODE)
        if not buffer:
            self._free(self._api.GetException(self._ctx))
            raise OutOfMemory()
        try:
            return ctypes.string_at(buffer, size.value)
        finally:
            self._api.free(self._ctx, buffer)

    def use_event_loop(self, step: str, clear: str) -> None:
        """Name the prelude's timer functions the event loop runs: ``step()`` runs the
        earliest due timer (0), or answers the milliseconds until one is due, or -1 when none
        is pending; ``clear()`` drops them all."""
        for expression in (step, clear):
            self._timers.append(self._eval(expression, "<event loop>", 0))

    def use_inspector(self, describe: str, exception: str, settle: str | None = None) -> None:
        """Name the global functions that turn a value and a thrown value into JSON text,
        and (optionally) the one that turns a completion into a promise of ``{value}``."""
        for expression in (describe, exception, settle):
            if expression is not None:
                self._inspector.append(self._eval(expression, "<inspector>", 0))
        if len(self._inspector) == 3 and self._inspector[2].tag != TAG_OBJECT:
            self._inspector.pop()  # the prelude has no settle function: adopt nothing

    def eval_script(
        self, source: str, filename: str, *, strict: bool = False, completion: Completion = "value"
    ) -> str:
        """Evaluate a global script; its value (see :data:`Completion`), described.

        The event loop runs to its end, under the budget, before the value is described.
        """
        self._begin()
        value = self._eval(source, filename, EVAL_STRICT if strict else 0)
        # Only an object can be a thenable; a primitive is its own settled value.
        if completion == "adopt" and value.tag == TAG_OBJECT and len(self._inspector) == 3:
            value, completion = self._call(self._inspector[2], value, consume=True), "promise"
        if completion == "promise":
            return self._describe(self._take_property(self._settle(value), "value"))
        try:
            self._run_event_loop()
        except BaseException:
            self._free(value)
            raise
        return self._describe(value)

    def eval_module(self, name: str) -> str:
        """Load, link and evaluate module ``name`` to its end; its (undefined) value, described."""
        self._begin()
        compiled = self._compile_module(self._ctx, name)
        if compiled is None:
            raise self._error(self._api.GetException(self._ctx))
        promise = self._checked(self._run(self._api.EvalFunction, self._ctx, compiled))
        return self._describe(self._settle(promise))

    def set_global_json(self, name: str, text: str) -> None:
        """``globalThis[name] = JSON.parse(text)``."""
        data = text.encode()
        value = self._checked(self._api.ParseJSON(self._ctx, data, len(data), b"<json>"))
        global_obj = self._api.GetGlobalObject(self._ctx)
        try:  # SetPropertyStr consumes value; a user-defined setter may run
            status = self._run(
                self._api.SetPropertyStr, self._ctx, global_obj, name.encode(), value
            )
        finally:
            self._free(global_obj)
        if status < 0:
            raise self._error(self._api.GetException(self._ctx))

    def abandon(self) -> None:
        """After a failed request: drop its pending timers and unhandled rejections, so no
        callback of it runs later (call it with no request running: nothing interrupts)."""
        self._rejections.clear()
        # Out of memory here is left for the next request's failure to report.
        if self._timers:
            with contextlib.suppress(EngineError):
                self._free(self._call(self._timers[1], UNDEFINED))

    def close(self) -> None:
        """Release the values and hooks this engine holds; the context goes with the engine."""
        for held in (self._inspector, self._timers, self._receive):
            while held:
                self._free(held.pop())
        self._rejections.close()
        # Nothing may call back into Python once the callbacks can be collected.
        self._api.SetInterruptHandler(self._rt, INTERRUPT(), None)
        self._api.SetModuleLoaderFunc(self._rt, NORMALIZE(), LOAD(), None)

    # -- running JavaScript --

    def _eval(self, source: str, filename: str, flags: int) -> JSValue:
        data = source.encode("utf-8", "surrogatepass")
        return self._checked(
            self._run(self._api.Eval, self._ctx, data, len(data), filename.encode(), flags)
        )

    def _free(self, value: JSValue) -> None:
        self._api.FreeValue(self._ctx, value)

    def _checked(self, value: JSValue) -> JSValue:
        """``value``, unless it is JS_EXCEPTION: then the error for the pending exception."""
        if value.tag == TAG_EXCEPTION:
            raise self._error(self._api.GetException(self._ctx))
        return value

    def _error(self, thrown: JSValue) -> EngineError:
        """Classify a thrown value (consumed): interrupt, out of memory, or a plain throw."""
        try:
            if (budget := self._spent_budget()) is not None:
                return Interrupted(budget)
            if self._heap.is_out_of_memory(thrown.tag, partial(self._error_text, thrown)):
                return OutOfMemory()
            return JsThrown(self._describe_thrown(thrown))
        finally:
            self._free(thrown)

    def _error_text(self, thrown: JSValue) -> str | None:
        """``String(thrown)`` for an Error; None for any other value, so no user toString runs."""
        return self._text_or_none(thrown) if self._api.IsError(thrown) else None

    def _describe_thrown(self, thrown: JSValue) -> str:
        if self._inspector:
            try:
                return self._call_text(self._inspector[1], thrown)
            except JsThrown:
                pass  # the inspector itself threw (a hostile getter): fall back to the text
        text = self._text_or_none(thrown) or "a value that could not be described"
        return json.dumps({"message": f"Uncaught {text}"})

    def _describe(self, value: JSValue) -> str:
        """The inspector's JSON text for ``value`` (consumed)."""
        try:
            if not self._inspector:
                raise Unsupported("no inspector installed")
            return self._call_text(self._inspector[0], value)
        finally:
            self._free(value)

    def _call(self, fn: JSValue, arg: JSValue, *, consume: bool = False) -> JSValue:
        """``fn(arg)``; with ``consume``, ``arg`` is freed."""
        argv = (JSValue * 1)(arg)
        try:
            return self._checked(self._run(self._api.Call, self._ctx, fn, UNDEFINED, 1, argv))
        finally:
            if consume:
                self._free(arg)

    def _call_text(self, fn: JSValue, arg: JSValue) -> str:
        result = self._call(fn, arg)
        try:
            text = self._text_or_none(result)
        finally:
            self._free(result)
        if text is None:  # converting a string fails only when memory or time ran out
            budget = self._spent_budget()
            raise Interrupted(budget) if budget is not None else OutOfMemory()
        return text

    def _spent_budget(self) -> Budget | None:
        """The running request's budget if it has stopped the script; else None."""
        request = self._slot.current
        if request is None or request.budget.tripped is None:
            return None
        return request.budget

    def _text_or_none(self, value: JSValue) -> str | None:
        """``String(value)``, or None (the error dropped) when that throws."""
        size = ctypes.c_size_t()
        pointer = self._run(self._api.ToCStringLen2, self._ctx, ctypes.byref(size), value, False)
        if not pointer:
            self._free(self._api.GetException(self._ctx))
            return None
        try:
            return ctypes.string_at(pointer, size.value).decode("utf-8", "replace")
        finally:
            self._api.FreeCString(self._ctx, pointer)

    def _begin(self) -> None:
        """Start an evaluation: a new heap watch, and no rejection left from before."""
        self._heap.begin()
        self._rejections.clear()

    def _run_event_loop(self, awaited: int | None = None) -> None:
        """Run jobs and timers until none is left, as Node's event loop does, under the budget.

        Each turn runs every pending job (the microtasks), then fails the request if a
        promise rejected with no handler (but ``awaited``, the promise the engine itself
        waits for), then runs the earliest due timer or sleeps until it is due.
        """
        while True:
            self._drain_jobs()
            if (reason := self._rejections.take_first(awaited)) is not None:
                raise self._error(reason)
            delay = self._timer_step()
            if delay < 0:
                return
            if delay > 0:
                self._sleep(delay)

    def _timer_step(self) -> float:
        if not self._timers:
            return -1  # no prelude: no timers
        result = self._call(self._timers[0], UNDEFINED)
        delay = ctypes.c_double(-1)
        self._api.ToFloat64(self._ctx, ctypes.byref(delay), result)  # a number: nothing runs
        self._free(result)
        return delay.value

    def _sleep(self, delay_ms: float) -> None:
        """Wait for the next timer, or until the budget stops the request."""
        request = self._slot.current
        if request is None:
            raise NeverSettled("a timer is pending but no request is running")
        request.budget.sleep(delay_ms / 1000)
        if request.budget.expired():
            raise Interrupted(request.budget)

    def _drain_jobs(self) -> None:
        """Run pending jobs (promise reactions) until none is left, under the budget."""
        job_ctx = ctypes.c_void_p()
        while ran := self._run(self._api.ExecutePendingJob, self._rt, ctypes.byref(job_ctx)):
            if ran < 0:
                raise self._error(self._api.GetException(self._ctx))

    def _settle(self, promise: JSValue) -> JSValue:
        """The promise's value once the event loop has run to its end (``promise`` is
        consumed)."""
        try:
            self._run_event_loop(awaited=promise.u)
            state = self._api.PromiseState(self._ctx, promise)
            if state == PROMISE_PENDING:
                raise NeverSettled("the promise never settled: no job or timer was left to run")
            result: JSValue = self._api.PromiseResult(self._ctx, promise)
        finally:
            self._free(promise)
        if state == PROMISE_REJECTED:
            raise self._error(result)
        return result

    def _take_property(self, value: JSValue, name: str) -> JSValue:
        """``value[name]`` (``value`` is consumed)."""
        try:
            return self._checked(
                self._run(self._api.GetPropertyStr, self._ctx, value, name.encode())
            )
        finally:
            self._free(value)

    # -- modules --

    def _compile_module(self, ctx: int | None, name: str) -> JSValue | None:
        """Module ``name`` compiled with ``import.meta.url`` set; None with an exception pending."""
        try:
            source, url = self._resolver.load(name)
        except ImportRefused as exc:
            self._throw(exc.kind, ctx, str(exc))
            return None
        data = source.encode("utf-8", "surrogatepass")
        compiled: JSValue = self._run(
            self._api.Eval, ctx, data, len(data), name.encode(), EVAL_MODULE | EVAL_COMPILE_ONLY
        )
        if compiled.tag == TAG_EXCEPTION:
            return None
        meta = self._api.GetImportMeta(ctx, compiled.u)  # the union holds the JSModuleDef *
        if meta.tag != TAG_EXCEPTION:
            url_bytes = url.encode()
            url_value = self._api.NewStringLen(ctx, url_bytes, len(url_bytes))
            self._api.DefinePropertyValueStr(ctx, meta, b"url", url_value, PROP_C_W_E)
            self._api.FreeValue(ctx, meta)
        return compiled

    def _throw(self, kind: ErrorKind, ctx: int | None, message: str) -> None:
        self._run(self._api.ThrowError, kind, ctx, message)

    def _normalize(
        self, ctx: int | None, base: bytes | None, name: bytes | None, opaque: int | None
    ) -> int | None:
        """JSModuleNormalizeFunc: a js_malloc'd canonical name, or NULL with an error thrown."""
        try:
            request = self._slot.current
            if request is None:
                raise ImportRefused(f"Cannot import '{_decode(name)}': no request is running")
            canonical = self._resolver.resolve(_decode(base), _decode(name), request.extensions)
            result: int | None = self._api.strdup(ctx, canonical.encode())
            return result
        except ImportRefused as exc:
            self._throw(exc.kind, ctx, str(exc))
        except Exception:
            traceback.print_exc(file=sys.stderr)
            self._throw("ReferenceError", ctx, f"Cannot import '{_decode(name)}': internal error")
        return None

    def _load(self, ctx: int | None, name: bytes | None, opaque: int | None) -> int | None:
        """JSModuleLoaderFunc: the JSModuleDef *, or NULL with an error thrown."""
        try:
            compiled = self._compile_module(ctx, _decode(name))
            if compiled is None:
                return None
            # The loaded-module list keeps its own reference (quickjs-libc frees it the same way).
            self._api.FreeValue(ctx, compiled)
            return int(compiled.u)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            message = f"Cannot load module '{_decode(name)}': internal error"
            self._throw("ReferenceError", ctx, message)
            return None


def _decode(text: bytes | None) -> str:
    return (text or b"").decode("utf-8", "replace")


_: type[JsEngine] = Engine  # mypy proves here that Engine is a JsEngine
