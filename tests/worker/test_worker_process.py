"""The real worker process over its pipes: handshake, requests, limits, control frames."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from vmctl.protocol import (
    MAX_LINE_BYTES,
    PROTOCOL_VERSION,
    Cancel,
    Console,
    Error,
    ExecLimits,
    ExecRepl,
    JsException,
    Ok,
    Ping,
    Pong,
    Reply,
    Shutdown,
    Value,
)

from .jsworker import LIMITS, TIMEOUT, WorkerProcess, open_worker


def kinds(frames: list[Reply]) -> list[str]:
    return [type(frame).__name__ for frame in frames]


def value_of(frames: list[Reply]) -> Value:
    assert kinds(frames)[-2:] == ["Value", "Ok"], frames
    value = frames[-2]
    assert isinstance(value, Value)
    return value


def error_of(frames: list[Reply]) -> Error:
    error = frames[-1]
    assert isinstance(error, Error), frames
    return error


def exception_of(frames: list[Reply]) -> JsException:
    assert kinds(frames)[-2:] == ["JsException", "Error"], frames
    exception = frames[-2]
    assert isinstance(exception, JsException)
    assert error_of(frames).code == "JS_ERROR"
    return exception


# -- handshake and lifecycle ------------------------------------------------------------


def test_hello_comes_first_and_reports_the_attached_engine(worktree: Path) -> None:
    worker = WorkerProcess(worktree)
    try:
        hello = worker.wait_hello()
    finally:
        worker.close()
    assert hello.protocol == PROTOCOL_VERSION
    assert hello.pid == worker.proc.pid
    assert (hello.engine, hello.engine_version) == ("quickjs", "0.17.0.2")
    assert set(hello.operations) == {
        "exec_repl",
        "run_file",
        "run_startup",
        "cancel",
        "ping",
        "shutdown",
    }
    assert hello.soft_interrupt is True
    assert hello.degraded_reason is None


def test_the_worker_entry_leaves_slow_imports_out_of_its_start() -> None:
    # Each of these costs milliseconds of every worker start (see __main__, engine, repl).
    slow = [
        "typing_extensions",
        "importlib.metadata",
        "importlib.resources",
        "tree_sitter",
        "dataclasses",  # imports inspect: about 5 ms
        "inspect",
    ]
    probe = (
        "import sys; before = set(sys.modules); import vmctl.worker.__main__; "
        f"print([m for m in {slow!r} if sys.modules.get(m) and m not in before])"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=TIMEOUT, check=True
    )
    assert done.stdout.strip() == "[]"


def test_stdout_of_the_process_is_stderr_frames_go_elsewhere(worker: WorkerProcess) -> None:
    # Whatever writes to fd 1 (Python, a C library) lands on stderr, not in the frames.
    fds = f"/proc/{worker.proc.pid}/fd"
    assert os.readlink(f"{fds}/1") == os.readlink(f"{fds}/2")
    assert value_of(worker.repl("'frames still flow'")).preview == "frames still flow"


def test_shutdown_exits_with_status_0(worker: WorkerProcess) -> None:
    worker.send(Shutdown())
    assert worker.wait_exited() == 0


def test_end_of_input_exits_with_status_0(worker: WorkerProcess) -> None:
    worker.close_stdin()
    assert worker.wait_exited() == 0


def start_loop(worker: WorkerProcess, code: str = "while (true) {}") -> int:
    """Send a looping snippet and wait until it runs (its first console line)."""
    request_id = worker.new_id()
    worker.send(ExecRepl(id=request_id, code=f"console.log('started'); {code}", limits=LIMITS))
    assert worker.next_frame() == Console(id=request_id, level="log", text="started")
    return request_id


def test_shutdown_interrupts_the_running_script_then_exits(worker: WorkerProcess) -> None:
    request_id = start_loop(worker)
    worker.send(Shutdown())
    assert error_of(worker.wait_terminal(request_id)).code == "CANCELLED"
    assert worker.wait_exited() == 0


def test_ping_is_answered_while_a_script_loops(worker: WorkerProcess) -> None:
    request_id = start_loop(worker)
    for ping_id in (10_001, 10_002, 10_003):
        worker.send(Ping(id=ping_id))
        assert worker.next_frame() == Pong(id=ping_id)
    worker.send(Cancel(id=request_id))
    assert error_of(worker.wait_terminal(request_id)).code == "CANCELLED"


def test_a_line_that_is_not_a_request_gets_bad_request_with_its_id(worker: WorkerProcess) -> None:
    worker.send_raw(b"not json\n")
    error = worker.next_frame()
    assert isinstance(error, Error)
    assert (error.id, error.code) == (0, "BAD_REQUEST")
    worker.send_raw(b'{"type": "exec_repl", "id": 7000, "code": 1}\n')
    error = worker.next_frame()
    assert isinstance(error, Error)
    assert (error.id, error.code) == (7000, "BAD_REQUEST")
    assert "$.code" in error.message
    assert value_of(worker.repl("1 + 1")).preview == "2"  # still serving


# -- REPL semantics ---------------------------------------------------------------------


def test_global_state_persists_across_requests(worker: WorkerProcess) -> None:
    assert kinds(worker.repl("var counter = 40")) == ["Value", "Ok"]
    worker.repl("counter += 1")
    value = value_of(worker.repl("counter + 1"))
    assert (value.value_type, value.preview, value.json) == ("number", "42", 42)


def test_console_events_stream_in_order_before_the_value(worker: WorkerProcess) -> None:
    frames = worker.repl("console.log('a', 1); console.warn('b'); console.error('c'); 'done'")
    assert kinds(frames) == ["Console", "Console", "Console", "Value", "Ok"]
    consoles = [frame for frame in frames if isinstance(frame, Console)]
    assert [(c.level, c.text) for c in consoles] == [("log", "a 1"), ("warn", "b"), ("error", "c")]
    assert value_of(frames).preview == "done"


def test_a_throw_becomes_the_exception_payload_and_js_error(worker: WorkerProcess) -> None:
    worker.repl("1")
    frames = worker.repl("function boom() { throw new TypeError('bad thing') }\nboom()")
    exception = exception_of(frames)
    assert exception.name == "TypeError"
    assert exception.message == "TypeError: bad thing"
    assert exception.stack is not None
    assert "at boom (<repl:2>:1:" in exception.stack  # the second REPL execution
    assert error_of(frames).message == "TypeError: bad thing"


def test_strict_runtime_makes_snippets_strict_and_they_still_declare_globals(
    worker: WorkerProcess,
) -> None:
    def strict(code: str) -> list[Reply]:
        return worker.repl(code, strict=True)

    for code in ("undeclared = 1", "await null; undeclared = 1"):
        exception = exception_of(strict(code))
        assert exception.message == "ReferenceError: undeclared is not defined"
    assert exception_of(strict("with ({}) {}")).name == "SyntaxError"
    declarations = "let a = 1; const b = 2; class C {}; function f() { return this }"
    assert kinds(strict(declarations)) == ["Value", "Ok"]
    assert kinds(strict("const t = await 3")) == ["Value", "Ok"]
    values = value_of(strict("[a, b, typeof C, f(), t]"))
    assert values.preview == "[ 1, 2, 'function', undefined, 3 ]"  # f's this: strict
    assert value_of(strict("let a = 'again'; a")).preview == "again"
    assert value_of(worker.repl("undeclared = 1")).preview == "1"  # the next one is sloppy


def test_stack_overflow_is_a_range_error(worker: WorkerProcess) -> None:
    exception = exception_of(worker.repl("function down() { return down() + 1 }\ndown()"))
    assert exception.message.startswith("RangeError")
    assert value_of(worker.repl("'still here'")).preview == "still here"


def test_a_lone_surrogate_cannot_break_the_frame_stream(worker: WorkerProcess) -> None:
    value = value_of(worker.repl("'a\\ud800b'"))
    assert (value.value_type, value.preview) == ("string", "a\ufffdb")
    exception = exception_of(worker.repl("throw new Error('x\\udc00')"))
    assert exception.message == "Error: x\ufffd"


def test_microtasks_run_before_the_value(worker: WorkerProcess) -> None:
    frames = worker.repl("Promise.resolve().then(() => console.log('later')); 'now'")
    assert kinds(frames) == ["Console", "Value", "Ok"]


# -- limits -----------------------------------------------------------------------------


def test_wall_limit_stops_a_busy_loop_and_globals_survive(worker: WorkerProcess) -> None:
    worker.repl("globalThis.before = 'kept'")
    limits = ExecLimits(cpu_ms=60_000, wall_ms=300, mem_mb=64)
    error = error_of(worker.repl("while (true) {}", limits))
    assert (error.code, error.limit) == ("TIMEOUT", "wall_ms")
    assert error.message == "Execution exceeded wall_ms limit of 300 ms"
    assert value_of(worker.repl("before")).preview == "kept"


def test_cpu_limit_stops_a_busy_loop(worker: WorkerProcess) -> None:
    limits = ExecLimits(cpu_ms=200, wall_ms=60_000, mem_mb=64)
    error = error_of(worker.repl("for (;;) {}", limits))
    assert (error.code, error.limit) == ("TIMEOUT", "cpu_ms")
    assert error.cpu_ms >= 200


def test_a_console_flood_is_stopped_by_the_deadline(worker: WorkerProcess) -> None:
    limits = ExecLimits(cpu_ms=60_000, wall_ms=300, mem_mb=64)
    frames = worker.repl("let i = 0; for (;;) console.log(i++)", limits)
    assert set(kinds(frames[:-1])) == {"Console"}
    assert len(frames) > 100
    assert (error_of(frames).code, error_of(frames).limit) == ("TIMEOUT", "wall_ms")
    texts = [frame.text for frame in frames[:-1] if isinstance(frame, Console)]
    assert texts[:3] == ["0", "1", "2"]
    assert value_of(worker.repl("i > 100")).preview == "true"


def test_a_line_too_long_for_a_frame_is_clipped_not_fatal(worker: WorkerProcess) -> None:
    limits = ExecLimits(cpu_ms=60_000, wall_ms=60_000, mem_mb=128)
    frames = worker.repl("console.log('x'.repeat(9 * 1024 * 1024)); 'after'", limits)
    console = frames[0]
    assert isinstance(console, Console)
    assert console.text.startswith("xxxx")
    assert console.text.endswith("more characters]")
    assert len(console.text) < MAX_LINE_BYTES // 8
    assert value_of(frames).preview == "after"


def test_allocation_past_mem_mb_fails_and_the_next_request_works(worker: WorkerProcess) -> None:
    limits = ExecLimits(cpu_ms=60_000, wall_ms=60_000, mem_mb=16)
    for code in (
        "const chunks = []; for (;;) chunks.push('x'.repeat(1000) + Math.random())",
        "(() => { const a = []; for (;;) a.push({ k: Math.random() }) })()",
    ):
        error = error_of(worker.repl(code, limits))
        assert (error.code, error.limit) == ("MEMORY_LIMIT", "mem_mb")
        assert error.message == "Execution exceeded mem_mb limit of 16 MiB"
    assert value_of(worker.repl("chunks = null; [1, 2, 3].length", limits)).preview == "3"
    assert exception_of(worker.repl("throw null", limits)).message == "Uncaught null"


def test_cancel_stops_the_running_request(worker: WorkerProcess) -> None:
    request_id = start_loop(worker, "globalThis.n = 0; for (;;) n++")
    worker.send(Cancel(id=request_id))
    frames = worker.wait_terminal(request_id)
    assert kinds(frames) == ["Error"]
    assert error_of(frames).code == "CANCELLED"
    assert value_of(worker.repl("n > 0")).preview == "true"


def test_a_request_cancelled_while_waiting_never_runs(worker: WorkerProcess) -> None:
    running = start_loop(worker)
    waiting = worker.new_id()
    worker.send(ExecRepl(id=waiting, code="globalThis.ran = true", limits=LIMITS))
    worker.send(Cancel(id=waiting))
    worker.send(Cancel(id=running))
    assert error_of(worker.wait_terminal(running)).code == "CANCELLED"
    assert error_of(worker.wait_terminal(waiting)).code == "CANCELLED"
    assert value_of(worker.repl("typeof ran")).preview == "undefined"


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
    library = tmp_path / "counter.js"
    library.write_text("globalThis.loads = (globalThis.loads || 0) + 1;\n")
    (worktree / "init.js").write_text("globalThis.ready = loads * 10;\n")
    for _ in range(2):
        assert kinds(worker.startup(libraries=(str(library),), files=("init.js",))) == ["Ok"]
    assert value_of(worker.repl("[loads, ready].join()")).preview == "1,10"


def test_libraries_and_startup_files_declare_like_the_repl(
    worker: WorkerProcess, worktree: Path, tmp_path: Path
) -> None:
    library = tmp_path / "helpers.js"
    library.write_text("const LIB = 'v1';\nclass Helper { static twice(n) { return n * 2 } }\n")
    (worktree / "init.js").write_text("let config = { mode: 'dev' };\n")
    for _ in range(2):  # the startup file runs again, the library does not
        assert kinds(worker.startup(libraries=(str(library),), files=("init.js",))) == ["Ok"]
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
    missing = error_of(worker.startup(libraries=(str(tmp_path / "nolib.js"),)))
    assert missing.code == "STARTUP_FAILED"
    assert str(tmp_path / "nolib.js") in missing.message
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
