"""The runtime's own scripts, compiled once per process and read as bytecode by each context."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from vmctl.worker import engine, webapis
from vmctl.worker.channel import FrameWriter
from vmctl.worker.engine import Engine
from vmctl.worker.hostmodules import REQUIRE_SOURCE
from vmctl.worker.session import JsSession, prelude_source


@pytest.fixture
def empty_cache() -> Iterator[None]:
    saved = dict(engine._COMPILED)
    engine._COMPILED.clear()
    yield
    engine._COMPILED.clear()
    engine._COMPILED.update(saved)


def _session() -> JsSession:
    return JsSession("/", FrameWriter(-1))


@pytest.mark.usefixtures("empty_cache")
def test_precompile_keeps_the_runtime_scripts_as_bytecode_and_frees_its_context() -> None:
    JsSession.precompile()
    assert ("<prelude>", prelude_source()) in engine._COMPILED
    assert ("<require>", REQUIRE_SOURCE) in engine._COMPILED
    gc.collect()
    assert not [o for o in gc.get_objects() if isinstance(o, Engine)]


@pytest.mark.usefixtures("empty_cache")
def test_a_context_from_bytecode_behaves_as_one_from_source() -> None:
    from_source = _session()
    from_bytecode = _session()  # the first filled the cache
    snippets = [
        "typeof setTimeout",
        "String(setTimeout).split('\\n')[0]",
        "__vmctl.inspect({ a: [1, 2, { b: new Map([[1, 2]]) }] })",
        "new Error('where').stack.split('\\n').length",
        "try { setTimeout(1) } catch (e) { e.stack }",
    ]
    try:
        for code in snippets:
            assert from_bytecode._engine.eval_script(code, "<t>") == (
                from_source._engine.eval_script(code, "<t>")
            ), code
    finally:
        from_source.close()
        from_bytecode.close()


@pytest.mark.usefixtures("empty_cache")
def test_precompile_warms_the_request_path_and_leaves_no_thread() -> None:
    # The fork server forks right after: a thread left running would be lost in the child
    # with whatever lock it held.
    before = threading.active_count()
    JsSession.precompile()
    assert threading.active_count() == before
    assert ("<vendor:url>", webapis.lazy_scripts()["url"][1]) in engine._COMPILED
