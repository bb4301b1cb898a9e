"""The engine adapter: one QuickJS context, driven through the wheel's C API.

quickjs-ng's Python binding names every script ``<input>``, can stop a script only with
``set_time_limit`` (which then refuses every call into Python, so no streaming console) and
has no module loader. Its shared library exports the QuickJS-NG C API, and a
``_quickjs.Context`` keeps its ``JSRuntime *`` and ``JSContext *`` right after
``PyObject_HEAD``, so :class:`Engine` attaches to them with ctypes and installs:

- an interrupt handler that stops the script once its :class:`~vmctl.worker.limits.Budget`
  is spent (wall clock, CPU time of the JavaScript thread, or a cancel from another thread);
- a module normalizer and loader that resolve ``import`` through a :class:`ModuleResolver`;
- evaluation through ``JS_Eval`` with a real filename, so stack frames name ``<repl:3>`` or
  ``src/a.js``.

This reads one wheel's private layout, so attaching fails closed: the package version, the
object size, ``JS_GetRuntime(ctx) == rt``, a probe of the thread-state slot and of the
runtime's memory counters must all hold,
or the constructor raises :class:`AttachRefused` and the worker falls back to
:class:`~vmctl.worker.plain.PlainEngine` (the binding alone: no soft interrupt).

Every JavaScript call happens on the thread that created the engine; only
``engine.budget.cancel()`` may be called from another thread.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, Literal, Protocol, TypeVar

import _quickjs

from vmctl.worker.limits import Budget

PINNED_VERSION = "0.17.0.2"

# module.c of quickjs-ng 0.17.0.2: struct RuntimeData { PyObject_HEAD (16 bytes);
# JSRuntime *runtime; JSContext *context; int has_time_limit (+4 padding);
# clock_t time_limit; PyThreadState *thread_state; InterruptData (2 x clock_t);
# PythonCallableNode *python_callables; }: 80 bytes on 64-bit Linux.
_CONTEXT_BASICSIZE = 80
_RUNTIME_OFFSET = 16
_CONTEXT_OFFSET = 24
_THREAD_STATE_OFFSET = 48
# quickjs.c, struct JSRuntime: JSMallocFunctions mf (5 pointers), then JSMallocState
# {malloc_count, malloc_size, malloc_limit, opaque}; js_malloc_rt in the wheel reads the
# size at +0x30 and the limit at +0x38.
_MALLOC_SIZE_OFFSET = 0x30
_MALLOC_LIMIT_OFFSET = 0x38

# quickjs.h
_TAG_NULL = 2
_TAG_UNDEFINED = 3
_TAG_UNINITIALIZED = 4  # what JS_GetException returns when no exception is pending
_TAG_EXCEPTION = 6
_TAG_OBJECT = -1
_EVAL_MODULE = 1
_EVAL_STRICT = 1 << 3
_EVAL_COMPILE_ONLY = 1 << 5
_PROMISE_PENDING = 0
_PROMISE_REJECTED = 2
_PROP_C_W_E = 7

# An out-of-memory error once thrown: InternalError("out of memory"), a bare InternalError
# when its message could not be allocated, null when not even the error object could be
# (JS_ThrowError2), or no exception at all when an allocation failed while the engine was
# already throwing one. A null is also what ``throw null`` throws: see :class:`_HeapWatch`.
_OOM_TEXTS = frozenset({"InternalError: out of memory", "InternalError"})

T = TypeVar("T")

# What a script's completion value is: the value itself; a promise of ``{value}`` (an async
# REPL snippet, see repl.py); or a value to adopt, passed through the inspector's settle
# function into such a promise (a REPL snippet whose value may be a thenable).
Completion = Literal["value", "promise", "adopt"]


class JSValue(ctypes.Structure):
    """QuickJS-NG's ``JSValue`` on 64-bit: ``{8-byte union, int64 tag}``, passed by value."""

    _fields_ = (("u", ctypes.c_uint64), ("tag", ctypes.c_int64))


_UNDEFINED = JSValue(0, _TAG_UNDEFINED)

_vp = ctypes.c_void_p
_INTERRUPT = ctypes.CFUNCTYPE(ctypes.c_int, _vp, _vp)
_NORMALIZE = ctypes.CFUNCTYPE(_vp, _vp, ctypes.c_char_p, ctypes.c_char_p, _vp)
_LOAD = ctypes.CFUNCTYPE(_vp, _vp, ctypes.c_char_p, _vp)

_PyThreadState_Get = ctypes.pythonapi.PyThreadState_Get
_PyThreadState_Get.restype = _vp
_PyThreadState_Get.argtypes = ()


def _installed_version() -> str:
    """The ``Version`` in the dist-info of the quickjs-ng install that ``_quickjs`` came from.

    Read directly: importing importlib.metadata costs about 15 ms of every worker start.
    Anything but one such dist-info beside the module is ``unknown``, which refuses the attach.
    """
    site = os.path.dirname(_quickjs.__file__)
    found = [
        n for n in os.listdir(site) if n.startswith("quickjs_ng-") and n.endswith(".dist-info")
    ]
    if len(found) != 1:
        return "unknown"
    try:
        with open(os.path.join(site, found[0], "METADATA"), encoding="utf-8") as metadata:
            for line in metadata:
                if line.startswith("Version:"):
                    return line.removeprefix("Version:").strip()
                if not line.strip():
                    break  # the headers end at the first blank line
    except OSError:
        pass
    return "unknown"


ENGINE_VERSION = _installed_version()


# -- errors -----------------------------------------------------------------------------


class EngineError(Exception):
    """A script did not complete normally; the subclass says how."""


class JsThrown(EngineError):
    """The script threw; ``payload`` is the exception inspector's JSON text."""

    def __init__(self, payload: str) -> None:
        super().__init__(payload)
        self.payload = payload


class Interrupted(EngineError):
    """The interrupt handler stopped the script; ``budget.tripped`` says why."""

    def __init__(self, budget: Budget) -> None:
        super().__init__(budget.tripped)
        self.budget = budget


class OutOfMemory(EngineError):
    """An allocation went past the memory limit."""


class NeverSettled(EngineError):
    """A promise the request waits for is still pending and no job is left to settle it."""


class Unsupported(EngineError):
    """The engine runs degraded and cannot do this."""


class AttachRefused(Exception):
    """A layout check failed; the message is the degraded reason the handshake reports."""


class ImportRefused(Exception):
    """Raised by a :class:`ModuleResolver`; the message becomes the JavaScript error."""


class ModuleResolver(Protocol):
    def resolve(self, base: str, specifier: str) -> str:
        """The canonical module name of ``specifier`` imported from module or script ``base``."""

    def load(self, name: str) -> tuple[str, str]:
        """The source text and ``import.meta.url`` of a canonical module name."""


# -- the C API --------------------------------------------------------------------------


class _CApi:
    """The C functions we call, typed once.

    The ones that can run JavaScript come from a ``CDLL`` view: ctypes releases the GIL
    around them, so the binding's Python callables (console, fs) can take it back. The others
    come from a ``PyDLL`` view that keeps the GIL, like the binding's own non-running calls.
    """

    def __init__(self, path: str) -> None:
        runs_js, no_js = ctypes.CDLL(path), ctypes.PyDLL(path)
        size_p, value_p, char_p = (
            ctypes.POINTER(ctypes.c_size_t),
            ctypes.POINTER(JSValue),
            ctypes.c_char_p,
        )
        self.Eval = _bind(
            runs_js, "JS_Eval", JSValue, _vp, char_p, ctypes.c_size_t, char_p, ctypes.c_int
        )
        self.EvalFunction = _bind(runs_js, "JS_EvalFunction", JSValue, _vp, JSValue)
        self.Call = _bind(runs_js, "JS_Call", JSValue, _vp, JSValue, JSValue, ctypes.c_int, value_p)
        self.ExecutePendingJob = _bind(
            runs_js, "JS_ExecutePendingJob", ctypes.c_int, _vp, ctypes.POINTER(_vp)
        )
        self.ToCStringLen2 = _bind(
            runs_js, "JS_ToCStringLen2", _vp, _vp, size_p, JSValue, ctypes.c_bool
        )
        self.GetPropertyStr = _bind(runs_js, "JS_GetPropertyStr", JSValue, _vp, JSValue, char_p)
        self.SetPropertyStr = _bind(
            runs_js, "JS_SetPropertyStr", ctypes.c_int, _vp, JSValue, char_p, JSValue
        )
        # Variadic, so no argtypes: every argument is wrapped in its ctypes type at the call.
        self.ThrowReferenceError = runs_js["JS_ThrowReferenceError"]
        self.ThrowReferenceError.restype = JSValue

        self.GetRuntime = _bind(no_js, "JS_GetRuntime", _vp, _vp)
        self.GetGCThreshold = _bind(no_js, "JS_GetGCThreshold", ctypes.c_size_t, _vp)
        self.SetGCThreshold = _bind(no_js, "JS_SetGCThreshold", None, _vp, ctypes.c_size_t)
        self.UpdateStackTop = _bind(no_js, "JS_UpdateStackTop", None, _vp)
        self.SetInterruptHandler = _bind(
            no_js, "JS_SetInterruptHandler", None, _vp, _INTERRUPT, _vp
        )
        self.SetModuleLoaderFunc = _bind(
            no_js, "JS_SetModuleLoaderFunc", None, _vp, _NORMALIZE, _LOAD, _vp
        )
        self.FreeValue = _bind(no_js, "JS_FreeValue", None, _vp, JSValue)
        self.FreeCString = _bind(no_js, "JS_FreeCString", None, _vp, _vp)
        self.GetException = _bind(no_js, "JS_GetException", JSValue, _vp)
        self.IsError = _bind(no_js, "JS_IsError", ctypes.c_bool, JSValue)
        self.PromiseState = _bind(no_js, "JS_PromiseState", ctypes.c_int, _vp, JSValue)
        self.PromiseResult = _bind(no_js, "JS_PromiseResult", JSValue, _vp, JSValue)
        self.ParseJSON = _bind(no_js, "JS_ParseJSON", JSValue, _vp, char_p, ctypes.c_size_t, char_p)
        self.GetGlobalObject = _bind(no_js, "JS_GetGlobalObject", JSValue, _vp)
        self.GetImportMeta = _bind(no_js, "JS_GetImportMeta", JSValue, _vp, _vp)
        self.NewStringLen = _bind(no_js, "JS_NewStringLen", JSValue, _vp, char_p, ctypes.c_size_t)
        self.DefinePropertyValueStr = _bind(
            no_js,
            "JS_DefinePropertyValueStr",
            ctypes.c_int,
            _vp,
            JSValue,
            char_p,
            JSValue,
            ctypes.c_int,
        )
        self.strdup = _bind(no_js, "js_strdup", _vp, _vp, char_p)


def _bind(lib: ctypes.CDLL, name: str, restype: Any, *argtypes: Any) -> Any:
    fn = lib[name]  # a fresh function object, so the two views never share a signature
    fn.restype = restype
    fn.argtypes = argtypes
    return fn


def _check_layout(context: _quickjs.Context) -> None:
    if ENGINE_VERSION != PINNED_VERSION:
        raise AttachRefused(f"quickjs-ng {ENGINE_VERSION} is not the pinned {PINNED_VERSION}")
    size = type(context).__basicsize__
    if size != _CONTEXT_BASICSIZE:
        raise AttachRefused(f"_quickjs.Context is {size} bytes, expected {_CONTEXT_BASICSIZE}")


def _near_limit_margin(limit: int) -> int:
    """How close to the limit a heap must come for a thrown null to be out of memory."""
    return max(limit // 16, 256 * 1024)


class _HeapWatch:
    """Whether the heap came near the memory limit during one evaluation.

    QuickJS throws null when an allocation fails and not even the error object fits (about
    half the runaway loops measured at the limit end so), and ``throw null`` throws the same
    value. A thrown null counts as out of memory when, during the evaluation, the heap came
    within :func:`_near_limit_margin` of the limit (a heap that starts full fails on its
    first allocation, with no growth to see), or grew by at least a quarter of the room it
    had at the start (a string doubled past the limit fails at about half of it, when the
    old copy and the new one no longer fit together). Unwinding may have freed
    the loop's locals by the time the exception leaves ``JS_Eval``, so the peak is judged
    from lower bounds: the size at the end; the size at every interrupt-handler call (a
    pointer read); and the live size at the last garbage collection, which QuickJS runs as
    objects are allocated (inside native calls such as ``JSON.parse`` too, which never reach
    the interrupt handler) and after which it sets the threshold to 1.5 times that size.

    An evaluation that starts near the limit first collects garbage, so a heap held only by
    garbage (``hog = null`` after a memory-limit failure) does not make a later ``throw
    null`` look like out of memory. A heap held near the limit by live data makes every
    null look like one, and then it almost always is: the next allocation fails.
    """

    def __init__(self, rt: int, api: _CApi, collect: Callable[[], None]) -> None:
        self._rt = rt
        self._api = api
        self._collect = collect
        self._size = ctypes.c_size_t.from_address(rt + _MALLOC_SIZE_OFFSET)
        self._limit = ctypes.c_size_t.from_address(rt + _MALLOC_LIMIT_OFFSET)
        self._start = 0
        self._peak = 0
        self._threshold_before = 0

    def check(self, context: _quickjs.Context) -> None:
        """Refuse the attach unless the counters read here are the binding's own."""
        before = context.memory()["malloc_limit"]
        context.set_memory_limit(0x7654_3210)  # a value no counter holds by chance
        try:
            usage = context.memory()
            if (self._size.value, self._limit.value) != (
                usage["malloc_size"],
                usage["malloc_limit"],
            ):
                raise AttachRefused("the runtime's memory counters are not where expected")
        finally:
            context.set_memory_limit(before)

    def begin(self) -> None:
        """Start watching an evaluation.

        A collection threshold beyond half the room left (one an earlier request set high)
        is lowered to that, so that a heap filling up is collected, and measured, on the
        way: QuickJS never collects when an allocation fails.
        """
        limit = self._limit.value
        if limit and self._size.value >= limit - _near_limit_margin(limit):
            self._collect()
        start = self._start = self._peak = self._size.value
        if limit > start:
            midway = start + (limit - start) // 2
            if self._api.GetGCThreshold(self._rt) > midway:
                self._api.SetGCThreshold(self._rt, midway)
        self._threshold_before = self._api.GetGCThreshold(self._rt)

    def sample(self) -> None:
        """Called from the interrupt handler: keep it one read and one compare."""
        size = self._size.value
        if size > self._peak:
            self._peak = size

    def came_near_limit(self) -> bool:
        limit = self._limit.value
        if limit == 0:
            return False  # no limit set: QuickJS itself never runs out
        peak = max(self._peak, self._size.value)
        threshold = self._api.GetGCThreshold(self._rt)
        if threshold != self._threshold_before:  # a collection ran during the evaluation
            peak = max(peak, threshold * 2 // 3)
        grew_into_room = peak - self._start >= (limit - self._start) // 4
        return peak >= limit - _near_limit_margin(limit) or grew_into_room


# -- the engine -------------------------------------------------------------------------


class Engine:
    """One QuickJS context for the life of the worker, with soft interrupts and modules.

    Raises :class:`AttachRefused` when the wheel is not the one whose layout this knows.
    """

    soft_interrupt = True
    degraded_reason: str | None = None

    def __init__(self, resolver: ModuleResolver) -> None:
        self._context = _quickjs.Context()
        _check_layout(self._context)
        try:
            self._api = _CApi(_quickjs.__file__)
        except (OSError, AttributeError) as exc:
            raise AttachRefused(f"the C API is not usable: {exc}") from exc
        base = id(self._context)  # CPython: id() is the object's address
        self._rt = _vp.from_address(base + _RUNTIME_OFFSET).value
        self._ctx = _vp.from_address(base + _CONTEXT_OFFSET).value
        if not self._rt or not self._ctx or self._api.GetRuntime(self._ctx) != self._rt:
            raise AttachRefused("JS_GetRuntime(context) does not match the runtime pointer")
        self._thread_slot = _vp.from_address(base + _THREAD_STATE_OFFSET)
        self._thread_state = _PyThreadState_Get()  # the one thread that runs JavaScript
        self._probe_thread_slot()
        self._heap = _HeapWatch(self._rt, self._api, self._context.gc)
        self._heap.check(self._context)
        self._resolver = resolver
        self.budget = Budget()
        self._inspector: list[JSValue] = []  # describe, exception[, settle]
        # ctypes frees a callback's trampoline with its Python object: keep them as long as
        # the context. Each is tiny, since an exception inside one is printed and swallowed.
        self._on_interrupt = _INTERRUPT(self._interrupt)
        self._on_normalize = _NORMALIZE(self._normalize)
        self._on_load = _LOAD(self._load)
        self._api.SetInterruptHandler(self._rt, self._on_interrupt, None)
        self._api.SetModuleLoaderFunc(self._rt, self._on_normalize, self._on_load, None)

    def _probe_thread_slot(self) -> None:
        """Prove that our handler runs, interrupts, and finds this thread's state in the slot.

        While its eval runs, the binding keeps at offset 48 the PyThreadState it released the
        GIL from; :meth:`_run` writes the same value there around our own calls.
        """
        if self._thread_slot.value is not None:
            raise AttachRefused("the thread-state slot is not empty while idle")
        seen: list[bool] = []

        def probe(rt: int | None, opaque: int | None) -> int:
            seen.append(self._thread_slot.value == _PyThreadState_Get())
            return 1

        handler = _INTERRUPT(probe)
        self._api.SetInterruptHandler(self._rt, handler, None)
        try:
            self._context.eval("for (let i = 0; i < 1e6; i++) {}")
        except _quickjs.JSException as exc:
            if "interrupted" not in str(exc):
                raise AttachRefused(f"the interrupt probe failed: {exc}") from exc
        finally:
            self._api.SetInterruptHandler(self._rt, _INTERRUPT(), None)
        if not seen:
            raise AttachRefused("the interrupt handler was never called")
        if not seen[0]:
            raise AttachRefused("the thread-state slot does not hold the running thread")

    def _interrupt(self, rt: int | None, opaque: int | None) -> int:
        """JSInterruptHandler: non-zero stops the script."""
        self._heap.sample()
        return 1 if self.budget.expired() else 0

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

    # -- evaluation --

    def bootstrap(self, source: str, filename: str) -> None:
        """Evaluate trusted setup code (the prelude) and drop its value."""
        self._free(self._eval(source, filename, 0))

    def use_inspector(self, describe: str, exception: str, settle: str | None = None) -> None:
        """Name the global functions that turn a value and a thrown value into JSON text,
        and (optionally) the one that turns a completion into a promise of ``{value}``."""
        for expression in (describe, exception, settle):
            if expression is not None:
                self._inspector.append(self._eval(expression, "<inspector>", 0))
        if len(self._inspector) == 3 and self._inspector[2].tag != _TAG_OBJECT:
            self._inspector.pop()  # the prelude has no settle function: adopt nothing

    def eval_script(
        self, source: str, filename: str, *, strict: bool = False, completion: Completion = "value"
    ) -> str:
        """Evaluate a global script; its value (see :data:`Completion`), described.

        Pending jobs run to the end, under the budget, before the value is described.
        """
        self._heap.begin()
        value = self._eval(source, filename, _EVAL_STRICT if strict else 0)
        # Only an object can be a thenable; a primitive is its own settled value.
        if completion == "adopt" and value.tag == _TAG_OBJECT and len(self._inspector) == 3:
            value, completion = self._call(self._inspector[2], value, consume=True), "promise"
        if completion == "promise":
            return self._describe(self._take_property(self._settle(value), "value"))
        try:
            self._drain_jobs()
        except BaseException:
            self._free(value)
            raise
        return self._describe(value)

    def eval_module(self, name: str) -> str:
        """Load, link and evaluate module ``name`` to its end; its (undefined) value, described."""
        self._heap.begin()
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

    def close(self) -> None:
        """Release the values and hooks this engine holds; the context goes with the engine."""
        while self._inspector:
            self._free(self._inspector.pop())
        # Nothing may call back into Python once the callbacks can be collected.
        self._api.SetInterruptHandler(self._rt, _INTERRUPT(), None)
        self._api.SetModuleLoaderFunc(self._rt, _NORMALIZE(), _LOAD(), None)

    # -- running JavaScript --

    def _run(self, call: Callable[..., T], *args: Any) -> T:
        """Make a C call that may run JavaScript, set up the way the binding's own eval is.

        The binding's Python callables take the GIL back from the thread state saved at
        offset 48 and clear the slot while they run; the binding fills it only around its own
        calls. So around ours we put this thread's state there (ctypes releases the GIL from
        that same state). Calls nested in the module loader find the slot already set and
        leave it as it was.
        """
        previous = self._thread_slot.value
        if previous is None:
            self._api.UpdateStackTop(self._rt)  # the stack limit counts from here
        self._thread_slot.value = self._thread_state
        try:
            return call(*args)
        finally:
            self._thread_slot.value = previous

    def _eval(self, source: str, filename: str, flags: int) -> JSValue:
        data = source.encode("utf-8", "surrogatepass")
        return self._checked(
            self._run(self._api.Eval, self._ctx, data, len(data), filename.encode(), flags)
        )

    def _free(self, value: JSValue) -> None:
        self._api.FreeValue(self._ctx, value)

    def _checked(self, value: JSValue) -> JSValue:
        """``value``, unless it is JS_EXCEPTION: then the error for the pending exception."""
        if value.tag == _TAG_EXCEPTION:
            raise self._error(self._api.GetException(self._ctx))
        return value

    def _error(self, thrown: JSValue) -> EngineError:
        """Classify a thrown value (consumed): interrupt, out of memory, or a plain throw."""
        try:
            if self.budget.tripped is not None:
                return Interrupted(self.budget)
            if self._is_out_of_memory(thrown):
                return OutOfMemory()
            return JsThrown(self._describe_thrown(thrown))
        finally:
            self._free(thrown)

    def _is_out_of_memory(self, thrown: JSValue) -> bool:
        if thrown.tag == _TAG_UNINITIALIZED:
            return True  # nothing pending: the error for a failed allocation did not fit
        if thrown.tag == _TAG_NULL:
            return self._heap.came_near_limit()
        # Only an Error is turned into text here, so no user toString runs for other values.
        return bool(self._api.IsError(thrown)) and self._text_or_none(thrown) in _OOM_TEXTS

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
            return self._checked(self._run(self._api.Call, self._ctx, fn, _UNDEFINED, 1, argv))
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
            raise Interrupted(self.budget) if self.budget.tripped else OutOfMemory()
        return text

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

    def _drain_jobs(self) -> None:
        """Run pending jobs (promise reactions) until none is left, under the budget."""
        job_ctx = _vp()
        while ran := self._run(self._api.ExecutePendingJob, self._rt, ctypes.byref(job_ctx)):
            if ran < 0:
                raise self._error(self._api.GetException(self._ctx))

    def _settle(self, promise: JSValue) -> JSValue:
        """The promise's value once jobs are drained (``promise`` is consumed)."""
        try:
            self._drain_jobs()
            state = self._api.PromiseState(self._ctx, promise)
            if state == _PROMISE_PENDING:
                raise NeverSettled("the promise never settled: no pending job was left to run")
            result: JSValue = self._api.PromiseResult(self._ctx, promise)
        finally:
            self._free(promise)
        if state == _PROMISE_REJECTED:
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
            self._throw_reference_error(ctx, str(exc))
            return None
        data = source.encode("utf-8", "surrogatepass")
        compiled: JSValue = self._run(
            self._api.Eval, ctx, data, len(data), name.encode(), _EVAL_MODULE | _EVAL_COMPILE_ONLY
        )
        if compiled.tag == _TAG_EXCEPTION:
            return None
        meta = self._api.GetImportMeta(ctx, compiled.u)  # the union holds the JSModuleDef *
        if meta.tag != _TAG_EXCEPTION:
            url_bytes = url.encode()
            url_value = self._api.NewStringLen(ctx, url_bytes, len(url_bytes))
            self._api.DefinePropertyValueStr(ctx, meta, b"url", url_value, _PROP_C_W_E)
            self._api.FreeValue(ctx, meta)
        return compiled

    def _throw_reference_error(self, ctx: int | None, message: str) -> None:
        self._run(
            self._api.ThrowReferenceError,
            _vp(ctx),
            ctypes.c_char_p(b"%s"),
            ctypes.c_char_p(message.encode()),
        )

    def _normalize(
        self, ctx: int | None, base: bytes | None, name: bytes | None, opaque: int | None
    ) -> int | None:
        """JSModuleNormalizeFunc: a js_malloc'd canonical name, or NULL with an error thrown."""
        try:
            canonical = self._resolver.resolve(_decode(base), _decode(name))
            result: int | None = self._api.strdup(ctx, canonical.encode())
            return result
        except ImportRefused as exc:
            self._throw_reference_error(ctx, str(exc))
        except Exception:
            traceback.print_exc(file=sys.stderr)
            self._throw_reference_error(ctx, f"Cannot import '{_decode(name)}': internal error")
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
            self._throw_reference_error(ctx, message)
            return None


def _decode(text: bytes | None) -> str:
    return (text or b"").decode("utf-8", "replace")
