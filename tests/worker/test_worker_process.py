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
    ConsoleBatch,
    Error,
    ExecLimits,
    ExecRepl,
    Ping,
    Pong,
    Reply,
    Shutdown,
)

from .jsworker import (
    LIMITS,
    TIMEOUT,
    WorkerProcess,
    error_of,
    exception_of,
    kinds,
    value_of,
)

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


# Longer than any wait of these tests: only a cancel (or Shutdown) ends such a loop.
ENDLESS = ExecLimits(cpu_ms=120_000, wall_ms=120_000, mem_mb=64)


def start_loop(worker: WorkerProcess, code: str = "while (true) {}") -> int:
    """Send a looping snippet and wait until it runs (its first console line, which leaves
    in a batch of its own while the script loops on: no other frame comes to send it)."""
    request_id = worker.new_id()
    worker.send(ExecRepl(id=request_id, code=f"console.log('started'); {code}", limits=ENDLESS))
    assert worker.next_frame() == ConsoleBatch(id=request_id, lines=(("log", "started"),))
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


def test_the_warm_up_leaves_no_trace_before_the_first_request(worker: WorkerProcess) -> None:
    # The worker evaluated 1 + 1 on its own after Hello (JsSession.warm_up): its first
    # request is still REPL execution 1, and the warm-up's value is nowhere.
    frames = worker.repl("[new Error('x').stack, typeof _, typeof $_, performance.now() < 1000]")
    stack, *rest = value_of(frames).json
    assert "(<repl:1>:1:" in stack
    assert rest == ["undefined", "undefined", True]


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


# -- console batches ----------------------------------------------------------------------


def test_a_lone_line_leaves_while_the_script_keeps_running(worker: WorkerProcess) -> None:
    # start_loop waits for the line under TIMEOUT, far less than the loop's limits: the
    # line is sent by the writer's own thread, not by the terminal frame.
    request_id = start_loop(worker, "for (;;) {}")
    worker.send(Cancel(id=request_id))
    assert kinds(worker.wait_terminal(request_id)) == ["Error"]


def test_ping_and_cancel_are_answered_during_a_console_flood(worker: WorkerProcess) -> None:
    request_id = start_loop(worker, "for (let i = 0; ; i++) console.log(i)")
    worker.send(Ping(id=10_001))
    while not isinstance(frame := worker.next_frame(), Pong):
        assert isinstance(frame, ConsoleBatch), frame
    assert frame == Pong(id=10_001)
    worker.send(Cancel(id=request_id))
    frames = worker.wait_terminal_frames(request_id)
    assert {type(frame).__name__ for frame in frames[:-1]} <= {"ConsoleBatch"}
    assert error_of(frames).code == "CANCELLED"


def test_console_batches_keep_their_lines_in_order_before_the_value(
    worker: WorkerProcess,
) -> None:
    # 100 lines of 2,000 characters: at least three batches, whatever the timing.
    request_id = worker.new_id()
    code = "for (let i = 0; i < 100; i++) console.log(String(i).padEnd(2000, '.')); 'done'"
    worker.send(ExecRepl(id=request_id, code=code, limits=LIMITS))
    frames = worker.wait_terminal_frames(request_id)
    assert kinds(frames)[-2:] == ["Value", "Ok"]
    batches = [frame for frame in frames[:-2] if isinstance(frame, ConsoleBatch)]
    assert 3 <= len(batches) == len(frames) - 2
    assert {batch.id for batch in batches} == {request_id}
    texts = [text for batch in batches for _, text in batch.lines]
    assert [text.rstrip(".") for text in texts] == [str(i) for i in range(100)]


def test_a_throw_comes_after_the_lines_logged_before_it(worker: WorkerProcess) -> None:
    frames = worker.repl("console.log('a'); console.warn('b'); throw new Error('c')")
    assert kinds(frames) == ["Console", "Console", "JsException", "Error"]
    assert exception_of(frames).message == "Error: c"


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
