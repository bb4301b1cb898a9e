"""The real worker process over its pipes: files, modules, startup files, host modules."""

from __future__ import annotations

import os
from pathlib import Path

from vmctl.protocol import (
    Console,
    Library,
    Ok,
)

from .jsworker import (
    WorkerProcess,
    error_of,
    exception_of,
    kinds,
    open_worker,
    value_of,
)

# -- files ------------------------------------------------------------------------------


def test_run_file_sees_args_and_env_and_names_itself_in_stacks(
    worker: WorkerProcess, worktree: Path
) -> None:
    (worktree / "src").mkdir()
    (worktree / "src" / "main.js").write_text(
        "console.log(JSON.stringify(__ARGS__), __ENV__.MODE);\n"
        "function fail() { throw new Error('from file') }\n"
        "if (__ARGS__.fail) fail();\n"
        "__ARGS__.big + 1\n"
    )
    frames = worker.run_file("src/main.js", args={"big": 2**40}, env={"MODE": "test"})
    console = frames[0]
    assert isinstance(console, Console)
    assert console.text == '{"big":1099511627776} test'
    assert value_of(frames).json == 2**40 + 1
    exception = exception_of(worker.run_file("src/main.js", args={"fail": True}))
    assert "at fail (src/main.js:2:" in (exception.stack or "")


def test_a_script_file_declares_globals_that_can_be_declared_again(
    worker: WorkerProcess, worktree: Path
) -> None:
    (worktree / "main.js").write_text(
        "const answer = 40 + __ARGS__.n;\n"
        "let runs = (globalThis.runs || 0) + 1;\n"
        "class Box { constructor(v) { this.v = v } }\n"
        "answer\n"
    )
    for _ in range(2):  # a second run redeclares them all
        assert value_of(worker.run_file("main.js", args={"n": 2})).preview == "42"
    assert value_of(worker.repl("[answer, runs, new Box(3).v]")).preview == "[ 42, 2, 3 ]"
    assert value_of(worker.repl("const answer = 'mine'; answer")).preview == "mine"
    (worktree / "module.mjs").write_text("const hidden = 1;\n")
    assert kinds(worker.run_file("module.mjs")) == ["Value", "Ok"]
    assert value_of(worker.repl("typeof hidden")).preview == "undefined"


def test_a_script_file_keeps_its_lines_and_columns_in_stacks(
    worker: WorkerProcess, worktree: Path
) -> None:
    (worktree / "lib").mkdir()
    (worktree / "lib" / "tools.js").write_text(
        "// tools\n"
        "const base = 2;\n"
        "class Thrower {\n"
        "  boom() { throw new Error('from ' + base) }\n"
        "}\n"
        "let made = new Thrower();\n"
        "made.boom();\n"
    )
    exception = exception_of(worker.run_file("lib/tools.js"))
    # Where QuickJS puts these frames in the file as written, before the rewrite.
    assert exception.stack == (
        "Error: from 2\n    at boom (lib/tools.js:4:38)\n    at <eval> (lib/tools.js:7:6)"
    )


def test_run_file_path_rules(worker: WorkerProcess, worktree: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.js"
    outside.write_text("'secret'")
    (worktree / "escape.js").symlink_to(outside)
    assert error_of(worker.run_file("../outside.js")).code == "INVALID_PATH"
    assert error_of(worker.run_file("escape.js")).code == "INVALID_PATH"
    assert error_of(worker.run_file(str(outside))).code == "INVALID_PATH"
    missing = error_of(worker.run_file("missing.js"))
    assert (missing.code, missing.message) == (
        "FILE_NOT_FOUND",
        "'missing.js' does not exist in the worktree",
    )


def test_strict_runtime_makes_scripts_strict(worker: WorkerProcess, worktree: Path) -> None:
    (worktree / "sloppy.js").write_text("undeclared = 1\n")
    exception = exception_of(worker.run_file("sloppy.js", runtime={"strict": True}))
    assert exception.message.startswith("ReferenceError")
    assert kinds(worker.run_file("sloppy.js")) == ["Value", "Ok"]


def test_mjs_module_imports_a_sibling(worker: WorkerProcess, worktree: Path) -> None:
    (worktree / "lib").mkdir()
    (worktree / "lib" / "math.mjs").write_text("export const answer = 42;\n")
    (worktree / "lib" / "util.js").write_text("export const twice = (n) => n * 2;\n")
    (worktree / "main.mjs").write_text(
        "import { answer } from './lib/math.mjs';\n"
        "import { twice } from './lib/util';\n"  # resolved with the extensions
        "const { answer: again } = await import('./lib/math.mjs');\n"
        "console.log(answer, twice(answer), again === answer, import.meta.url);\n"
    )
    frames = worker.run_file("main.mjs")
    console = frames[0]
    assert isinstance(console, Console)
    real = os.path.realpath(worktree / "main.mjs")
    assert console.text == f"42 84 true file://{real}"
    assert value_of(frames).value_type == "undefined"


def test_an_import_out_of_the_worktree_fails_clearly(
    worker: WorkerProcess, worktree: Path, tmp_path: Path
) -> None:
    (tmp_path / "outside.mjs").write_text("export const secret = 1;\n")
    (worktree / "up.mjs").write_text("import '../outside.mjs';\n")
    exception = exception_of(worker.run_file("up.mjs"))
    assert exception.message == (
        "ReferenceError: Cannot import '../outside.mjs': path leaves the worktree"
    )
    (worktree / "link.mjs").symlink_to(tmp_path / "outside.mjs")
    (worktree / "via_link.mjs").write_text("import './link.mjs';\n")
    exception = exception_of(worker.run_file("via_link.mjs"))
    assert exception.message == (
        "ReferenceError: Cannot import './link.mjs': path leaves the worktree through a symlink"
    )


def test_a_rejected_or_unsettled_module_is_a_js_error(
    worker: WorkerProcess, worktree: Path
) -> None:
    (worktree / "reject.mjs").write_text("await null;\nthrow new RangeError('late');\n")
    assert exception_of(worker.run_file("reject.mjs")).message == "RangeError: late"
    (worktree / "stuck.mjs").write_text("await new Promise(() => {});\n")
    assert "never settled" in exception_of(worker.run_file("stuck.mjs")).message


def test_esm_runtime_runs_js_files_as_modules(worker: WorkerProcess, worktree: Path) -> None:
    (worktree / "dep.js").write_text("export default 'dep';\n")
    (worktree / "entry.js").write_text("import dep from './dep.js';\nconsole.log(dep);\n")
    frames = worker.run_file("entry.js", runtime={"esm": True})
    assert kinds(frames) == ["Console", "Value", "Ok"]


# -- startup ----------------------------------------------------------------------------


def test_startup_runs_libraries_once_then_files(
    worker: WorkerProcess, worktree: Path, tmp_path: Path
) -> None:
    library = Library("/home/lib/counter.js", "globalThis.loads = (globalThis.loads || 0) + 1;\n")
    (worktree / "init.js").write_text("globalThis.ready = loads * 10;\n")
    for _ in range(2):
        assert kinds(worker.startup(libraries=(library,), files=("init.js",))) == ["Ok"]
    assert value_of(worker.repl("[loads, ready].join()")).preview == "1,10"


def test_libraries_and_startup_files_declare_like_the_repl(
    worker: WorkerProcess, worktree: Path, tmp_path: Path
) -> None:
    source = "const LIB = 'v1';\nclass Helper { static twice(n) { return n * 2 } }\n"
    library = Library("/home/lib/helpers.js", source)
    (worktree / "init.js").write_text("let config = { mode: 'dev' };\n")
    for _ in range(2):  # the startup file runs again, the library does not
        assert kinds(worker.startup(libraries=(library,), files=("init.js",))) == ["Ok"]
    code = "[LIB, Helper.twice(2), config.mode].join()"
    assert value_of(worker.repl(code)).preview == "v1,4,dev"
    code = "const LIB = 'mine'; let config = 1; class Helper {}; LIB + config"
    assert value_of(worker.repl(code)).preview == "mine1"


def test_startup_failure_names_the_file(
    worker: WorkerProcess, worktree: Path, tmp_path: Path
) -> None:
    (worktree / "bad.js").write_text("throw new Error('nope');\n")
    error = error_of(worker.startup(files=("bad.js",)))
    assert error.code == "STARTUP_FAILED"
    assert error.message == "startup file bad.js failed: Error: nope"
    broken = error_of(worker.startup(libraries=(Library("/home/lib/bad.js", "throw 1"),)))
    assert broken.code == "STARTUP_FAILED"
    assert "/home/lib/bad.js" in broken.message
    assert error_of(worker.startup(files=("../x.js",))).code == "INVALID_PATH"


# -- host modules -----------------------------------------------------------------------


def test_fs_module_reads_inside_the_worktree_only(worker: WorkerProcess, worktree: Path) -> None:
    (worktree / "data").mkdir()
    (worktree / "data" / "b.txt").write_text("bee")
    (worktree / "data" / "a.txt").write_text("ay")
    exception = exception_of(worker.repl("require('fs')"))
    assert exception.message == "Error: Cannot find module 'fs'"
    code = (
        "const fs = require('fs');\n"
        "[fs.readFileSync('data/a.txt', 'utf8'), fs.existsSync('data/b.txt'),\n"
        " fs.existsSync('nope'), fs.readdirSync('data').join()].join('|')"
    )
    assert value_of(worker.repl(code, modules=("fs",))).preview == "ay|true|false|a.txt,b.txt"
    exception = exception_of(worker.repl("require('fs').readFileSync('../x')", modules=("fs",)))
    assert exception.message == "Error: EACCES: path leaves the worktree, open '../x'"
    exception = exception_of(worker.repl("require('fs').readFileSync('no.txt')", modules=("fs",)))
    assert exception.message == "Error: ENOENT: no such file or directory, open 'no.txt'"


def test_runtime_settings_hold_for_their_own_request_only(
    worker: WorkerProcess, worktree: Path
) -> None:
    (worktree / "dep.cjs").write_text("export default 'dep';\n")
    (worktree / "main.mjs").write_text("import dep from './dep';\n")
    assert value_of(worker.repl("typeof require('fs')", modules=("fs",))).preview == "object"
    assert exception_of(worker.repl("require('fs')")).message == "Error: Cannot find module 'fs'"
    assert kinds(worker.run_file("main.mjs", runtime={"extensions": (".cjs",)}))[-1] == "Ok"
    missing = exception_of(worker.run_file("main.mjs")).message
    assert missing == "ReferenceError: Cannot find module './dep' imported from main.mjs"


def test_worker_starts_in_a_fresh_worktree_for_each_test(worktree: Path) -> None:
    # Two workers side by side do not share state.
    with open_worker(worktree) as first, open_worker(worktree) as second:
        first.repl("globalThis.mine = 1")
        assert value_of(second.repl("typeof mine")).preview == "undefined"
        assert isinstance(first.repl("mine")[-1], Ok)
