"""The degraded engine: quickjs-ng's binding alone, for when :class:`Engine` cannot attach.

A :class:`~vmctl.worker.engines.JsEngine` like :class:`~vmctl.worker.engine.Engine`, with
fewer powers: no soft interrupt (the supervisor's kill at ``wall_ms`` plus grace is the only
deadline, and a cancel waits for the script to end), no ES modules, no report of unhandled
rejections, and every script is named ``<input>``. Timers run, but a wait for one is plain
sleep that only the supervisor's kill cuts short. Scripts run through a small JavaScript
helper that evaluates them with indirect ``eval`` (global scope) and returns the inspector's
JSON text tagged ``v`` (value), ``e`` (thrown) or ``p`` (a promise still pending, kept by the
helper and asked for again once the jobs are drained). A strict script (``runtime.strict``)
is a strict indirect eval, which keeps its top-level declarations to itself: they are not
the globals they are with the attached engine.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import _quickjs

from vmctl.worker.engines import (
    Completion,
    EngineError,
    JsEngine,
    JsThrown,
    NeverSettled,
    OutOfMemory,
    Unsupported,
)
from vmctl.worker.heap import binding_error_is_out_of_memory

_HELPER = r"""
(function (describe, exception, adopt) {
  "use strict";
  const evaluate = eval;  // indirect: the global scope, like a script
  let box = null;
  function settled() {
    if (box.state === "ok") return "v" + describe(box.value);
    if (box.state === "error") return "e" + exception(box.error);
    return "p";
  }
  return function step(source, completion) {
    if (source === null) return settled();
    let value;
    try {
      value = evaluate(source);
      if (completion === "adopt" && typeof adopt === "function") {
        value = adopt(value);
        completion = "promise";
      }
    } catch (e) { return "e" + exception(e); }
    if (completion !== "promise") return "v" + describe(value);
    const current = box = { state: "pending" };
    value.then((r) => { current.state = "ok"; current.value = r.value; },
               (e) => { current.state = "error"; current.error = e; });
    return settled();
  };
})
"""


class PlainEngine:
    """One QuickJS context through the binding only; ``degraded_reason`` says why."""

    soft_interrupt = False

    def __init__(self, degraded_reason: str) -> None:
        self.degraded_reason: str | None = degraded_reason
        self._context = _quickjs.Context()
        self._step: Any = None
        self._timers: tuple[Any, Any] | None = None  # the prelude's step and clear
        self._receive: Any = None
        self._lazy: dict[str, tuple[str, str]] = {}

    def add_callable(self, name: str, fn: Callable[..., object]) -> None:
        self._context.add_callable(name, fn)

    def set_memory_limit(self, limit_bytes: int) -> None:
        self._context.set_memory_limit(limit_bytes)

    def set_stack_limit(self, limit_bytes: int) -> None:
        self._context.set_max_stack_size(limit_bytes)

    def collect_garbage(self) -> None:
        self._context.gc()

    def restart_clock(self) -> None:
        pass  # the binding has no call for it: the origin stays the context's creation

    def bootstrap(self, source: str, filename: str) -> None:
        self._binding(self._context.eval, source + "\n;undefined")

    def use_inspector(self, describe: str, exception: str, settle: str | None = None) -> None:
        make_step = self._context.eval(_HELPER)
        adopt = self._context.eval(settle) if settle is not None else None
        self._step = make_step(self._context.eval(describe), self._context.eval(exception), adopt)

    def compile(self, source: str, filename: str) -> None:
        pass  # the binding cannot keep bytecode: every context parses

    def use_lazy_scripts(self, receive: str, scripts: Mapping[str, tuple[str, str]]) -> None:
        self._lazy = dict(scripts)
        self._receive = self._context.eval(receive)

    def load_script(self, name: object) -> str:
        try:
            if self._receive is None or str(name) not in self._lazy:
                return f"no lazy script {name!r}"
            self._receive(self._context.eval(self._lazy[str(name)][1]))
            return ""
        except (_quickjs.JSException, _quickjs.StackOverflow) as exc:
            return str(exc)

    def use_event_loop(self, step: str, clear: str) -> None:
        self._timers = (self._context.eval(step), self._context.eval(clear))

    def eval_script(
        self, source: str, filename: str, *, strict: bool = False, completion: Completion = "value"
    ) -> str:
        if strict:  # on the first line, so line numbers stay those of the file
            source = '"use strict";' + source
        tagged = self._binding(self._step, source, completion)
        self._run_event_loop()
        if tagged == "p":
            tagged = self._binding(self._step, None, False)
        return _untag(tagged)

    def eval_module(self, name: str) -> str:
        raise Unsupported(
            f"ES modules need the engine attach, which failed: {self.degraded_reason}"
        )

    def set_global_json(self, name: str, text: str) -> None:
        self._context.set(name, self._context.parse_json(text))

    def abandon(self) -> None:
        if self._timers is not None:
            self._binding(self._timers[1])

    def close(self) -> None:
        self._step = None
        self._timers = None

    def _run_event_loop(self) -> None:
        while True:
            self._drain_jobs()
            delay = self._binding(self._timers[0]) if self._timers is not None else -1
            if delay < 0:
                return
            time.sleep(delay / 1000)

    def _drain_jobs(self) -> None:
        while self._binding(self._context.execute_pending_job):
            pass

    def _binding(self, call: Callable[..., Any], *args: Any) -> Any:
        """Call into the binding, turning its exceptions into engine errors."""
        try:
            return call(*args)
        except (_quickjs.JSException, _quickjs.StackOverflow) as exc:
            raise _error(str(exc)) from exc


def _untag(tagged: str) -> str:
    if tagged.startswith("v"):
        return tagged[1:]
    if tagged.startswith("e"):
        raise JsThrown(tagged[1:])
    raise NeverSettled("the promise never settled: no pending job was left to run")


def _error(text: str) -> EngineError:
    message, _, stack = text.partition("\n")
    if binding_error_is_out_of_memory(message):
        return OutOfMemory()
    return JsThrown(json.dumps({"message": message, "stack": stack or None}))


_: type[JsEngine] = PlainEngine  # mypy proves here that PlainEngine is a JsEngine
