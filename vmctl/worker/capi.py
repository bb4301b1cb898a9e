"""The ctypes fence: all that vmctl assumes about the quickjs-ng wheel's C side, and its checks.

No other module reads the binding's memory or declares a C signature. The facts relied on,
true of quickjs-ng 0.17.0.2 (the pinned version) on 64-bit Linux:

- The shared library is the ``_quickjs`` extension module's own file; it exports the
  QuickJS-NG C API (``JS_Eval``, ``JS_SetInterruptHandler``, ``JS_SetModuleLoaderFunc``, ...).
- ``_quickjs.Context`` is module.c's ``struct RuntimeData``, 80 bytes (its
  ``__basicsize__``): ``PyObject_HEAD`` (16 bytes), then ``JSRuntime *runtime`` at 16,
  ``JSContext *context`` at 24, ``int has_time_limit`` (+4 padding) at 32, ``clock_t
  time_limit`` at 40, ``PyThreadState *thread_state`` at 48, ``InterruptData`` (2 x
  ``clock_t``) at 56 and ``PythonCallableNode *python_callables`` at 72.
- While its own eval runs, the binding keeps at offset 48 the thread state it released the
  GIL from; its Python callables (``add_callable``) take the GIL back from that slot and clear
  it while they run. Idle, the slot is NULL. :meth:`Attachment.run` fills it the same way.
- quickjs.c's ``struct JSRuntime`` starts with ``JSMallocFunctions mf`` (5 pointers), then
  ``JSMallocState {malloc_count, malloc_size, malloc_limit, opaque}``: ``js_malloc_rt`` in
  the wheel reads ``malloc_size`` at +0x30 and ``malloc_limit`` at +0x38.
- ``JSValue`` is ``{8-byte union, int64 tag}``, passed and returned by value; for a compiled
  module the union holds the ``JSModuleDef *``. Tags: object -1, null 2, undefined 3,
  uninitialized 4 (what ``JS_GetException`` returns when nothing is pending), exception 6.
- Eval flags: ``JS_EVAL_TYPE_MODULE`` 1, ``JS_EVAL_FLAG_STRICT`` 8,
  ``JS_EVAL_FLAG_COMPILE_ONLY`` 32 (which returns the compiled function, tag -2).
  ``JS_WRITE_OBJ_BYTECODE`` and ``JS_READ_OBJ_BYTECODE`` are 1; ``JS_WriteObject`` returns a
  ``js_malloc``'d buffer. Promise states: pending 0, rejected 2. ``JS_PROP_C_W_E`` is 7.
- Callbacks: the interrupt handler is ``int (JSRuntime *, void *opaque)`` (non-zero stops the
  script); the module normalizer ``char *(JSContext *, const char *base, const char *name,
  void *opaque)`` returns a ``js_malloc``'d name; the loader ``JSModuleDef *(JSContext *,
  const char *name, void *opaque)``. Both return NULL with an exception thrown to refuse.
  The promise rejection tracker is ``void (JSContext *, JSValueConst promise, JSValueConst
  reason, bool is_handled, void *opaque)``: called with ``is_handled`` false when a promise
  with no handler rejects, and true when a handler is added to such a promise later.
- Two views of one library. ctypes releases the GIL around a call through a ``CDLL`` view,
  so the functions that can run JavaScript come from one: the binding's Python callables
  (console, fs) take the GIL back while the script runs. The rest come from a ``PyDLL`` view
  that keeps the GIL, like the binding's own calls that run no JavaScript.

:func:`attach` checks all of it that can be checked (the version, the object size,
``JS_GetRuntime(context) == runtime``, the thread-state slot by a probe, the memory counters
against the binding's own report, the random state by the next ``Math.random()`` it
predicts) before a pointer is used, and raises
:class:`~vmctl.worker.engines.AttachRefused` with the degraded reason when one fails.
"""

from __future__ import annotations

import ctypes
import functools
import os
import struct
from collections.abc import Callable
from typing import Any, Literal, TypeVar, get_args

import _quickjs

from vmctl.worker.engines import AttachRefused

PINNED_VERSION = "0.17.0.2"

_CONTEXT_BASICSIZE = 80
_RUNTIME_OFFSET = 16
_CONTEXT_OFFSET = 24
_THREAD_STATE_OFFSET = 48
_MALLOC_SIZE_OFFSET = 0x30
_MALLOC_LIMIT_OFFSET = 0x38
_RANDOM_STATE_OFFSET = 0x218
_UINT64 = (1 << 64) - 1

# quickjs.h
TAG_OBJECT = -1
TAG_NULL = 2
TAG_UNDEFINED = 3
TAG_UNINITIALIZED = 4
TAG_EXCEPTION = 6
EVAL_MODULE = 1
EVAL_STRICT = 1 << 3
EVAL_COMPILE_ONLY = 1 << 5
WRITE_OBJ_BYTECODE = READ_OBJ_BYTECODE = 1
PROMISE_PENDING = 0
PROMISE_REJECTED = 2
PROP_C_W_E = 7

T = TypeVar("T")

ErrorKind = Literal["ReferenceError", "SyntaxError"]
ERROR_KINDS: tuple[ErrorKind, ...] = get_args(ErrorKind)


class JSValue(ctypes.Structure):
    """QuickJS-NG's ``JSValue`` on 64-bit: ``{8-byte union, int64 tag}``, passed by value."""

    _fields_ = (("u", ctypes.c_uint64), ("tag", ctypes.c_int64))


UNDEFINED = JSValue(0, TAG_UNDEFINED)

_vp = ctypes.c_void_p
INTERRUPT = ctypes.CFUNCTYPE(ctypes.c_int, _vp, _vp)
NORMALIZE = ctypes.CFUNCTYPE(_vp, _vp, ctypes.c_char_p, ctypes.c_char_p, _vp)
LOAD = ctypes.CFUNCTYPE(_vp, _vp, ctypes.c_char_p, _vp)
REJECTION_TRACKER = ctypes.CFUNCTYPE(None, _vp, JSValue, JSValue, ctypes.c_bool, _vp)

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


class CApi:
    """The C functions we call, typed once: ``runs_js`` for those that can run JavaScript
    (the GIL released around them), ``no_js`` for the others (see the module docstring)."""

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
        self._throwers = {name: runs_js[f"JS_Throw{name}"] for name in ERROR_KINDS}
        for thrower in self._throwers.values():
            thrower.restype = JSValue

        self.GetRuntime = _bind(no_js, "JS_GetRuntime", _vp, _vp)
        self.GetGCThreshold = _bind(no_js, "JS_GetGCThreshold", ctypes.c_size_t, _vp)
        self.SetGCThreshold = _bind(no_js, "JS_SetGCThreshold", None, _vp, ctypes.c_size_t)
        self.UpdateStackTop = _bind(no_js, "JS_UpdateStackTop", None, _vp)
        self.AddPerformance = _bind(no_js, "JS_AddPerformance", None, _vp)
        self.SetInterruptHandler = _bind(no_js, "JS_SetInterruptHandler", None, _vp, INTERRUPT, _vp)
        self.SetModuleLoaderFunc = _bind(
            no_js, "JS_SetModuleLoaderFunc", None, _vp, NORMALIZE, LOAD, _vp
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
        self.free = _bind(no_js, "js_free", None, _vp, _vp)
        self.DupValue = _bind(no_js, "JS_DupValue", JSValue, _vp, JSValue)
        self.ToFloat64 = _bind(
            no_js, "JS_ToFloat64", ctypes.c_int, _vp, ctypes.POINTER(ctypes.c_double), JSValue
        )
        self.WriteObject = _bind(no_js, "JS_WriteObject", _vp, _vp, size_p, JSValue, ctypes.c_int)
        self.ReadObject = _bind(
            no_js, "JS_ReadObject", JSValue, _vp, char_p, ctypes.c_size_t, ctypes.c_int
        )
        self.SetHostPromiseRejectionTracker = _bind(
            no_js, "JS_SetHostPromiseRejectionTracker", None, _vp, REJECTION_TRACKER, _vp
        )

    def ThrowError(self, kind: ErrorKind, ctx: int | None, message: str) -> JSValue:
        """Throw a new ``kind`` error (``JS_ThrowReferenceError`` and its siblings)."""
        # Variadic, so no argtypes: every argument is wrapped in its ctypes type here, and the
        # message goes through "%s" so that a "%" in it stays text.
        thrown: JSValue = self._throwers[kind](
            _vp(ctx), ctypes.c_char_p(b"%s"), ctypes.c_char_p(message.encode())
        )
        return thrown


def _bind(lib: ctypes.CDLL, name: str, restype: Any, *argtypes: Any) -> Any:
    fn = lib[name]  # a fresh function object, so the two views never share a signature
    fn.restype = restype
    fn.argtypes = argtypes
    return fn


class Attachment:
    """The checked pointers of one ``_quickjs.Context``; valid while that context lives.

    Get one from :func:`attach`. ``malloc_size`` and ``malloc_limit`` are live views of the
    runtime's counters (read ``.value``), ``random_state`` of the context's ``Math.random``
    state (write ``.value``, never 0).
    """

    def __init__(
        self,
        api: CApi,
        rt: int,
        ctx: int,
        thread_slot: ctypes.c_void_p,
        malloc_size: ctypes.c_size_t,
        malloc_limit: ctypes.c_size_t,
        random_state: ctypes.c_uint64,
    ) -> None:
        self.api = api
        self.rt = rt
        self.ctx = ctx
        self.malloc_size = malloc_size
        self.malloc_limit = malloc_limit
        self.random_state = random_state
        self._thread_slot = thread_slot
        self._thread_state = _PyThreadState_Get()  # the one thread that runs JavaScript

    def run(self, call: Callable[..., T], *args: Any) -> T:
        """Make a C call that may run JavaScript, set up the way the binding's own eval is.

        The binding's Python callables take the GIL back from the thread state saved at
        offset 48 and clear the slot while they run; the binding fills it only around its own
        calls. So around ours we put this thread's state there (ctypes releases the GIL from
        that same state). Calls nested in the module loader find the slot already set and
        leave it as it was.
        """
        previous = self._thread_slot.value
        if previous is None:
            self.api.UpdateStackTop(self.rt)  # the stack limit counts from here
        self._thread_slot.value = self._thread_state
        try:
            return call(*args)
        finally:
            self._thread_slot.value = previous


def attach(context: _quickjs.Context) -> Attachment:
    """The pointers of ``context`` once every check holds; otherwise :class:`AttachRefused`.

    Nothing is read through a pointer before the version and the object size match, and no
    pointer is used before ``JS_GetRuntime`` confirms the pair.
    """
    if ENGINE_VERSION != PINNED_VERSION:
        raise AttachRefused(f"quickjs-ng {ENGINE_VERSION} is not the pinned {PINNED_VERSION}")
    size = type(context).__basicsize__
    if size != _CONTEXT_BASICSIZE:
        raise AttachRefused(f"_quickjs.Context is {size} bytes, expected {_CONTEXT_BASICSIZE}")
    try:
        api = _api(_quickjs.__file__)
    except (OSError, AttributeError) as exc:
        raise AttachRefused(f"the C API is not usable: {exc}") from exc
    base = id(context)  # CPython: id() is the object's address
    rt = _vp.from_address(base + _RUNTIME_OFFSET).value
    ctx = _vp.from_address(base + _CONTEXT_OFFSET).value
    if not rt or not ctx or api.GetRuntime(ctx) != rt:
        raise AttachRefused("JS_GetRuntime(context) does not match the runtime pointer")
    thread_slot = _vp.from_address(base + _THREAD_STATE_OFFSET)
    _probe_thread_slot(context, api, rt, thread_slot)
    malloc_size = ctypes.c_size_t.from_address(rt + _MALLOC_SIZE_OFFSET)
    malloc_limit = ctypes.c_size_t.from_address(rt + _MALLOC_LIMIT_OFFSET)
    _check_malloc_counters(context, malloc_size, malloc_limit)
    random_state = ctypes.c_uint64.from_address(ctx + _RANDOM_STATE_OFFSET)
    _check_random_state(context, random_state)
    return Attachment(api, rt, ctx, thread_slot, malloc_size, malloc_limit, random_state)


@functools.cache
def _api(path: str) -> CApi:
    """The library's one :class:`CApi`: built by the first attach of the process, which in a
    forked worker was the fork server's, so the worker shares its function objects instead
    of making its own (about 40 of them, and their pages, per worker)."""
    return CApi(path)


def _probe_thread_slot(
    context: _quickjs.Context, api: CApi, rt: int, thread_slot: ctypes.c_void_p
) -> None:
    """Prove that our handler runs, interrupts, and finds this thread's state in the slot."""
    if thread_slot.value is not None:
        raise AttachRefused("the thread-state slot is not empty while idle")
    seen: list[bool] = []

    def probe(rt: int | None, opaque: int | None) -> int:
        seen.append(thread_slot.value == _PyThreadState_Get())
        return 1

    handler = INTERRUPT(probe)
    api.SetInterruptHandler(rt, handler, None)
    try:
        context.eval("for (let i = 0; i < 1e6; i++) {}")
    except _quickjs.JSException as exc:
        if "interrupted" not in str(exc):
            raise AttachRefused(f"the interrupt probe failed: {exc}") from exc
    finally:
        api.SetInterruptHandler(rt, INTERRUPT(), None)
    if not seen:
        raise AttachRefused("the interrupt handler was never called")
    if not seen[0]:
        raise AttachRefused("the thread-state slot does not hold the running thread")


def _check_malloc_counters(
    context: _quickjs.Context, malloc_size: ctypes.c_size_t, malloc_limit: ctypes.c_size_t
) -> None:
    """Refuse the attach unless the counters read here are the binding's own."""
    before = context.memory()["malloc_limit"]
    context.set_memory_limit(0x7654_3210)  # a value no counter holds by chance
    try:
        usage = context.memory()
        if (malloc_size.value, malloc_limit.value) != (
            usage["malloc_size"],
            usage["malloc_limit"],
        ):
            raise AttachRefused("the runtime's memory counters are not where expected")
    finally:
        context.set_memory_limit(before)


def _check_random_state(context: _quickjs.Context, random_state: ctypes.c_uint64) -> None:
    """Refuse the attach unless the word read here is ``Math.random``'s state: the number
    the next call returns, and the state it leaves, are the ones xorshift64* computes from it.
    A word elsewhere matches both by chance with odds of about 2**-116."""
    state = random_state.value
    state ^= state >> 12
    state ^= (state << 25) & _UINT64
    state ^= state >> 27
    bits = (0x3FF << 52) | (((state * 0x2545_F491_4F6C_DD1D) & _UINT64) >> 12)
    expected = struct.unpack("<d", bits.to_bytes(8, "little"))[0] - 1.0  # 1 <= double < 2
    if context.eval("Math.random()") != expected or random_state.value != state:
        raise AttachRefused("Math.random's state is not where expected")
