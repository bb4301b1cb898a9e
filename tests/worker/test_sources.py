"""Which files run as modules, and TypeScript files, imports and snippets, through a real worker.

How the stripper itself keeps positions is test_typescript.py; this is what a session does
with it (vmctl/worker/sources.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from vmctl.protocol import Console, JsException

from .jsworker import WorkerProcess, error_of, kinds, open_worker, value_of


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[WorkerProcess]:
    with open_worker(tmp_path) as worker:
        yield worker


def _console(frames: Sequence[object]) -> list[str]:
    return [frame.text for frame in frames if isinstance(frame, Console)]


def _exception(frames: Sequence[object]) -> JsException:
    thrown = [frame for frame in frames if isinstance(frame, JsException)]
    assert len(thrown) == 1, frames
    return thrown[0]


def test_a_js_file_with_an_import_runs_as_a_module(worker: WorkerProcess, tmp_path: Path) -> None:
    (tmp_path / "lib.js").write_text("export const answer = 42;\n")
    (tmp_path / "main.js").write_text(
        "import { answer } from './lib.js';\nconst local = 1;\nconsole.log(answer + local);\n"
    )
    assert _console(worker.run_file("main.js")) == ["43"]
    # Module scope: its declarations are its own.
    assert value_of(worker.repl("typeof local")).preview == "undefined"


def test_a_js_file_with_import_meta_runs_as_a_module(worker: WorkerProcess, tmp_path: Path) -> None:
    (tmp_path / "where.js").write_text("console.log(import.meta.url.endsWith('/where.js'));\n")
    assert _console(worker.run_file("where.js")) == ["true"]


def test_a_js_file_without_module_syntax_stays_a_script(
    worker: WorkerProcess, tmp_path: Path
) -> None:
    (tmp_path / "script.js").write_text("const shared = 'global';\n// import x from 'y'\n")
    worker.run_file("script.js")
    assert value_of(worker.repl("shared")).preview == "global"


def test_a_ts_file_imports_ts_modules_by_their_js_name_and_without_extension(
    worker: WorkerProcess, tmp_path: Path
) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "a.ts").write_text("export const a: number = 1;\n")
    (tmp_path / "lib" / "b.mts").write_text("export const b: number = 2;\n")
    (tmp_path / "main.ts").write_text(
        "import { a } from './lib/a.js';\nimport { b } from './lib/b';\n"
        "const sum: number = a + b;\nconsole.log(sum);\n"
    )
    assert _console(worker.run_file("main.ts")) == ["3"]


def test_a_js_importer_gets_no_typescript_resolution(worker: WorkerProcess, tmp_path: Path) -> None:
    (tmp_path / "a.ts").write_text("export const a: number = 1;\n")
    (tmp_path / "main.mjs").write_text("import { a } from './a.js';\n")
    frames = worker.run_file("main.mjs")
    assert error_of(frames).code == "JS_ERROR"
    assert "Cannot find module './a.js'" in _exception(frames).message


def test_a_ts_script_declares_globals_and_its_stack_points_at_the_source(
    worker: WorkerProcess, tmp_path: Path
) -> None:
    (tmp_path / "tools.ts").write_text(
        "type Op = (a: number, b: number) => number;\n"
        "const mul: Op = (a: number, b: number): number => a * b;\n"
        "function fail(reason: string): never {\n"
        "  throw new TypeError(reason);\n"
        "}\n"
    )
    assert value_of(worker.run_file("tools.ts")).preview == "undefined"
    assert value_of(worker.repl("mul(6, 7)")).preview == "42"
    thrown = _exception(worker.repl("fail('typed')"))
    # Where QuickJS places a `new` expression's frame in the same line of JavaScript.
    assert thrown.stack is not None and "at fail (tools.ts:4:23)" in thrown.stack


def test_typescript_that_cannot_be_stripped_is_a_syntax_error_naming_typescript(
    worker: WorkerProcess, tmp_path: Path
) -> None:
    (tmp_path / "bad.ts").write_text("const x: = 1;\n")
    (tmp_path / "imports_bad.mts").write_text("import './bad.ts';\n")
    thrown = _exception(worker.run_file("bad.ts"))
    assert thrown.name == "SyntaxError"
    assert thrown.message.startswith("SyntaxError: TypeScript: cannot strip types at bad.ts:1:")
    thrown = _exception(worker.run_file("imports_bad.mts"))
    assert thrown.message.startswith("SyntaxError: TypeScript: cannot strip types at bad.ts:1:")


def test_tsx_is_refused_by_name(worker: WorkerProcess, tmp_path: Path) -> None:
    (tmp_path / "view.tsx").write_text("const v = <div/>;\n")
    thrown = _exception(worker.run_file("view.tsx"))
    assert "JSX (.tsx) is not supported" in thrown.message


def test_a_typescript_startup_file_runs_and_its_failure_names_it(
    worker: WorkerProcess, tmp_path: Path
) -> None:
    (tmp_path / "init.ts").write_text("const configured: boolean = true;\n")
    (tmp_path / "broken.ts").write_text("let y: number = ;\n")
    assert kinds(worker.startup(files=("init.ts",))) == ["Ok"]
    assert value_of(worker.repl("configured")).preview == "true"
    error = error_of(worker.startup(files=("broken.ts",)))
    assert error.code == "STARTUP_FAILED"
    assert "startup file broken.ts" in error.message and "TypeScript" in error.message


def test_a_snippet_is_stripped_only_when_it_is_not_javascript(worker: WorkerProcess) -> None:
    # Valid JavaScript that TypeScript would read as a generic call keeps its JS meaning.
    worker.repl("var a = 1, b = 2, c = 0")
    assert value_of(worker.repl("a < b > (c)")).preview == "true"
    assert value_of(worker.repl("let n: number = 2; n ** 10")).preview == "1024"
    # Neither JavaScript nor TypeScript: the engine's own syntax error, at the user's column.
    thrown = _exception(worker.repl("let broken: = 1"))
    assert thrown.name == "SyntaxError"
