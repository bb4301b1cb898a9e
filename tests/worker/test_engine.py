"""The engine adapter in-process: the attach holds on this machine, and fails closed when not."""

from __future__ import annotations

import importlib.metadata
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import _quickjs
import pytest

from vmctl.worker import capi
from vmctl.worker.engine import Engine
from vmctl.worker.engines import (
    AttachRefused,
    Completion,
    Interrupted,
    JsEngine,
    JsThrown,
    NeverSettled,
    OutOfMemory,
    Unsupported,
)
from vmctl.worker.limits import Budget, RequestSlot, RunningRequest
from vmctl.worker.plain import PlainEngine
from vmctl.worker.worktree import Worktree

# A minimal inspector so these tests do not depend on the prelude's formatting.
INSPECTOR = """
globalThis.__test_describe = (v) => JSON.stringify({type: typeof v, preview: String(v)});
globalThis.__test_exception = (e) => JSON.stringify({message: String(e)});
globalThis.__test_settle = (v) => Promise.resolve(v).then((value) => ({value}));
"""


def prepared(engine: JsEngine) -> JsEngine:
    engine.bootstrap(INSPECTOR, "<test>")
    engine.use_inspector("__test_describe", "__test_exception", "__test_settle")
    return engine


@pytest.fixture
def slot() -> RequestSlot:
    return RequestSlot()


@pytest.fixture
def engine(tmp_path: Path, slot: RequestSlot) -> Iterator[Engine]:
    attached = Engine(Worktree(str(tmp_path)), slot)
    prepared(attached)
    yield attached
    attached.close()


def request(budget: Budget) -> RunningRequest:
    return RunningRequest(1, budget, extensions=(".js", ".mjs"), modules=frozenset())


def preview(described: str) -> str:
    value: str = json.loads(described)["preview"]
    return value


def test_the_engine_attaches_on_this_machine(engine: Engine) -> None:
    assert engine.soft_interrupt is True
    assert engine.degraded_reason is None
    assert preview(engine.eval_script("6 * 7", "<t>")) == "42"


def test_contexts_of_one_process_share_its_c_api() -> None:
    # Built once, by the fork server before it forks: a worker does not make its own.
    first, second = _quickjs.Context(), _quickjs.Context()
    assert capi.attach(first).api is capi.attach(second).api


def test_the_version_read_from_the_dist_info_is_the_installed_one() -> None:
    assert importlib.metadata.version("quickjs-ng") == capi.ENGINE_VERSION


@pytest.mark.parametrize("versions", [(), ("0.17.0.2", "0.17.0.3")])
def test_a_dist_info_that_is_not_one_gives_an_unknown_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, versions: tuple[str, ...]
) -> None:
    for version in versions:
        dist_info = tmp_path / f"quickjs_ng-{version}.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(f"Name: quickjs-ng\nVersion: {version}\n\n")
    monkeypatch.setattr(_quickjs, "__file__", str(tmp_path / "_quickjs.so"))
    assert capi._installed_version() == "unknown"


def test_a_different_wheel_version_refuses_the_attach(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(capi, "ENGINE_VERSION", "0.17.0.3")
    with pytest.raises(AttachRefused, match=re.escape("0.17.0.3 is not the pinned 0.17.0.2")):
        Engine(Worktree(str(tmp_path)), RequestSlot())


def test_a_different_object_size_refuses_the_attach(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(capi, "_CONTEXT_BASICSIZE", 88)
    with pytest.raises(AttachRefused, match="expected 88"):
        Engine(Worktree(str(tmp_path)), RequestSlot())


def test_the_interrupt_stops_a_loop_and_the_context_survives(
    engine: Engine, slot: RequestSlot
) -> None:
    engine.eval_script("var kept = 'still here'", "<t>")
    started = time.monotonic()
    with slot.hold(request(Budget(wall_ms=100))), pytest.raises(Interrupted) as caught:
        engine.eval_script("while (true) {}", "<t>")
    assert caught.value.budget.tripped == "wall_ms"
    assert time.monotonic() - started < 2.0
    assert preview(engine.eval_script("kept", "<t>")) == "still here"


def test_the_cpu_budget_counts_this_threads_cpu(engine: Engine, slot: RequestSlot) -> None:
    with slot.hold(request(Budget(cpu_ms=50))), pytest.raises(Interrupted) as caught:
        engine.eval_script("for (;;) {}", "<t>")
    assert caught.value.budget.tripped == "cpu_ms"
    assert caught.value.budget.cpu_used_ms() >= 50


def test_a_cancel_from_another_thread_interrupts(engine: Engine, slot: RequestSlot) -> None:
    budget = Budget(wall_ms=10_000)  # the bound if the cancel never arrived
    canceller = threading.Timer(0.05, budget.cancel)
    canceller.start()
    try:
        with slot.hold(request(budget)), pytest.raises(Interrupted) as caught:
            engine.eval_script("for (;;) {}", "<t>")
    finally:
        canceller.join()
    assert caught.value.budget.tripped == "cancel"


def test_imports_resolve_with_the_running_requests_extensions(
    engine: Engine, slot: RequestSlot, tmp_path: Path
) -> None:
    (tmp_path / "dep.cjs").write_text("export const x = 7;\n")
    for name in ("a.mjs", "b.mjs", "c.mjs"):
        (tmp_path / name).write_text("import { x } from './dep';\nglobalThis.got = x;\n")
    with slot.hold(RunningRequest(1, Budget(), (".cjs",), frozenset())):
        engine.eval_module("a.mjs")
    assert preview(engine.eval_script("got", "<t>")) == "7"
    second = RunningRequest(2, Budget(), (".js",), frozenset())
    with slot.hold(second), pytest.raises(JsThrown) as caught:
        engine.eval_module("b.mjs")
    assert "Cannot find module './dep'" in caught.value.payload
    with pytest.raises(JsThrown) as caught:  # between requests there is nothing to resolve with
        engine.eval_module("c.mjs")
    assert "Cannot import './dep': no request is running" in caught.value.payload


def test_out_of_memory_is_reported_and_the_context_survives(engine: Engine) -> None:
    engine.set_memory_limit(16 * 1024 * 1024)
    with pytest.raises(OutOfMemory):
        engine.eval_script("const a = []; for (;;) a.push(new Array(1000).fill(1))", "<t>")
    engine.collect_garbage()
    assert preview(engine.eval_script("a.length > 0", "<t>")) == "true"


# Runaway allocations that QuickJS ends with no error object: null when not even that fits,
# nothing at all (a catch sees an uninitialized value) when the failure nests in another.
# By the time the exception leaves the script, the loop's data is freed again.
RUNAWAY_WITHOUT_ERROR_OBJECT = {
    "(() => { const a = []; for (;;) a.push({ k: Math.random() }) })()": "null",
    "(() => { const m = new Map(); for (let i = 0;; i++) m.set(i, {i}) })()": "null",
    "(() => { let s = ''; for (let i = 0;; i++) s += String.fromCharCode(65 + i % 26) })()": "null",
    "JSON.parse('[' + '{\"a\":1},'.repeat(1e6) + '{}]')": "null",
    "(() => { let o = {}; for (let i = 0;; i++) o['k' + i] = i })()": "[uninitialized]",
}


@pytest.mark.parametrize("runaway", RUNAWAY_WITHOUT_ERROR_OBJECT)
def test_out_of_memory_without_an_error_object_is_still_out_of_memory(
    engine: Engine, runaway: str
) -> None:
    engine.set_memory_limit(16 * 1024 * 1024)
    with pytest.raises(OutOfMemory):
        engine.eval_script(
            f"try {{ {runaway} }} catch (e) {{ globalThis.caught = e; throw e }}", "<t>"
        )
    engine.collect_garbage()
    caught = preview(engine.eval_script("String(caught)", "<t>"))
    assert caught == RUNAWAY_WITHOUT_ERROR_OBJECT[runaway]


def test_a_thrown_null_without_the_heap_growing_is_a_throw(engine: Engine) -> None:
    engine.set_memory_limit(16 * 1024 * 1024)
    with pytest.raises(JsThrown) as caught:
        engine.eval_script("throw null", "<t>")
    assert json.loads(caught.value.payload) == {"message": "null"}
    with pytest.raises(JsThrown):
        engine.eval_script("(async () => { throw null })()", "<t>", completion="adopt")
    with pytest.raises(OutOfMemory):
        engine.eval_script("(() => { const a = []; for (;;) a.push({}) })()", "<t>")
    engine.collect_garbage()
    with pytest.raises(JsThrown):  # the next evaluation starts watching the heap afresh
        engine.eval_script("throw null", "<t>")
    with pytest.raises(OutOfMemory):  # leaves the heap full, but for less than one chunk
        engine.eval_script("var hog = []; for (;;) hog.push(new Array(1e5).fill(1))", "<t>")
    engine.collect_garbage()
    with pytest.raises(JsThrown):  # a heap full from the start is not growth
        engine.eval_script("hog = null; throw null", "<t>")


@pytest.mark.parametrize(
    ("offset", "elsewhere", "reason"),
    [
        ("_RUNTIME_OFFSET", 24, "JS_GetRuntime(context) does not match"),
        ("_THREAD_STATE_OFFSET", 32, "the thread-state slot"),
        ("_MALLOC_SIZE_OFFSET", 0x28, "memory counters"),
        ("_RANDOM_STATE_OFFSET", 0x210, "Math.random's state"),
    ],
)
def test_a_pointer_elsewhere_refuses_the_attach(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offset: str, elsewhere: int, reason: str
) -> None:
    monkeypatch.setattr(capi, offset, elsewhere)
    with pytest.raises(AttachRefused, match=re.escape(reason)):
        Engine(Worktree(str(tmp_path)), RequestSlot())


def test_scripts_are_named_in_stack_traces(engine: Engine) -> None:
    with pytest.raises(JsThrown) as caught:
        engine.eval_script("(function () { throw new Error('x') })()", "<repl:9>", strict=True)
    assert json.loads(caught.value.payload) == {"message": "Error: x"}
    stack = engine.eval_script("try { null.f() } catch (e) { e.stack }", "<repl:10>")
    assert "<repl:10>:1:" in preview(stack)


@pytest.mark.parametrize("completion", ["promise", "adopt"])
def test_promise_completions_settle_under_the_budget(
    engine: Engine, slot: RequestSlot, completion: Completion
) -> None:
    source = {"promise": "(async () => ({value: await 6 * 7}))()", "adopt": "Promise.resolve(42)"}[
        completion
    ]
    assert preview(engine.eval_script(source, "<t>", completion=completion)) == "42"
    with pytest.raises(JsThrown):
        engine.eval_script("Promise.reject(new Error('no'))", "<t>", completion="adopt")
    with pytest.raises(NeverSettled):
        engine.eval_script("new Promise(() => {})", "<t>", completion="adopt")
    with slot.hold(request(Budget(wall_ms=100))), pytest.raises(Interrupted):
        engine.eval_script("(async () => { for (;;) await null })()", "<t>", completion="adopt")


def test_the_degraded_engine_still_evaluates(tmp_path: Path) -> None:
    plain = prepared(PlainEngine("testing"))
    assert plain.soft_interrupt is False
    plain.eval_script("var x = 2", "<t>")
    assert preview(plain.eval_script("x * 21", "<t>")) == "42"
    assert preview(plain.eval_script("Promise.resolve(x)", "<t>", completion="adopt")) == "2"
    with pytest.raises(JsThrown) as caught:
        plain.eval_script("throw new TypeError('t')", "<t>")
    assert json.loads(caught.value.payload) == {"message": "TypeError: t"}
    with pytest.raises(Unsupported, match="testing"):
        plain.eval_module("main.mjs")
    plain.close()
