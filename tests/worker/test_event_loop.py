"""The worker's event loop: timers and jobs run to the end of their execution, never later.

Each test drives a real ``python -m vmctl.worker``. What a snippet prints or answers is in
the golden table (preview_cases_runtime.py); these are the limits, cancel, files and
modules around it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vmctl.protocol import (
    Cancel,
    Console,
    ConsoleBatch,
    ExecLimits,
    ExecRepl,
    JsException,
    RuntimeOptions,
)

from .jsworker import LIMITS, WorkerProcess, error_of, kinds, open_worker, value_of


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[WorkerProcess]:
    with open_worker(tmp_path) as worker:
        yield worker


def _limits(wall_ms: int) -> ExecLimits:
    return ExecLimits(cpu_ms=LIMITS.cpu_ms, wall_ms=wall_ms, mem_mb=LIMITS.mem_mb)


def test_an_endless_interval_ends_at_the_wall_limit_with_the_state_kept(
    worker: WorkerProcess,
) -> None:
    started = time.monotonic()
    frames = worker.repl(
        "var ticks = 0; setInterval(() => { ticks++; console.log('tick') }, 5); 'started'",
        limits=_limits(300),
    )
    error = error_of(frames)
    assert (error.code, error.limit) == ("TIMEOUT", "wall_ms")
    assert time.monotonic() - started < 5  # the wall limit, not the supervisor's kill
    assert any(isinstance(frame, Console) for frame in frames)
    ticks = int(value_of(worker.repl("ticks")).preview)
    assert ticks > 0
    # The interval died with its execution: nothing ticks during or after the next ones.
    frames = worker.repl("await new Promise((resolve) => setTimeout(resolve, 50)); ticks")
    assert kinds(frames) == ["Value", "Ok"]
    assert int(value_of(frames).preview) == ticks


def test_a_cancel_stops_an_execution_that_waits_for_a_timer(worker: WorkerProcess) -> None:
    request_id = worker.new_id()
    worker.send(
        ExecRepl(
            id=request_id,
            code="console.log('waiting'); setTimeout(() => console.log('never'), 60000)",
            limits=_limits(120_000),
            runtime=RuntimeOptions(),
        )
    )
    first = worker.next_frame()
    assert isinstance(first, Console | ConsoleBatch)  # the timer is pending now
    cancelled_at = time.monotonic()
    worker.send(Cancel(id=request_id))
    frames = worker.wait_terminal(request_id)
    assert error_of(frames).code == "CANCELLED"
    assert time.monotonic() - cancelled_at < 5
    assert kinds(worker.repl("1 + 1")) == ["Value", "Ok"]


def test_a_timer_that_throws_fails_the_execution_and_drops_the_other_timers(
    worker: WorkerProcess,
) -> None:
    frames = worker.repl(
        "var after = 0; setTimeout(() => { throw new RangeError('boom') }, 1);"
        " setTimeout(() => { after++ }, 30); 'scheduled'"
    )
    assert error_of(frames).code == "JS_ERROR"
    exception = frames[-2]
    assert isinstance(exception, JsException)
    assert exception.message == "RangeError: boom"
    frames = worker.repl("await new Promise((resolve) => setTimeout(resolve, 60)); after")
    assert value_of(frames).preview == "0"


def test_a_script_file_may_await_at_its_top_level_and_declares_globals(
    worker: WorkerProcess, tmp_path: Path
) -> None:
    (tmp_path / "wait.js").write_text(
        "const before = Date.now();\n"
        "await new Promise((resolve) => setTimeout(resolve, 20));\n"
        "const waited = Date.now() - before >= 15;\n"
        "waited\n"
    )
    assert value_of(worker.run_file("wait.js")).preview == "true"
    assert value_of(worker.repl("waited")).preview == "true"


def test_a_file_whose_value_is_a_rejected_promise_fails(
    worker: WorkerProcess, tmp_path: Path
) -> None:
    (tmp_path / "rejects.js").write_text(
        "async function main() {\n  throw new Error('from main');\n}\nmain()\n"
    )
    frames = worker.run_file("rejects.js")
    assert error_of(frames).code == "JS_ERROR"
    exception = frames[-2]
    assert isinstance(exception, JsException)
    assert exception.message == "Error: from main"
    assert exception.stack is not None and "rejects.js:2" in exception.stack


def test_a_file_whose_value_is_a_promise_reports_what_it_settles_to(
    worker: WorkerProcess, tmp_path: Path
) -> None:
    (tmp_path / "answer.js").write_text("new Promise((resolve) => setTimeout(resolve, 5, 42))\n")
    assert value_of(worker.run_file("answer.js")).preview == "42"


def test_an_unhandled_rejection_in_a_file_fails_it(worker: WorkerProcess, tmp_path: Path) -> None:
    (tmp_path / "forgot.js").write_text(
        "async function save() { throw new Error('disk full') }\nsave();\n'done'\n"
    )
    frames = worker.run_file("forgot.js")
    assert error_of(frames).code == "JS_ERROR"
    assert error_of(frames).message == "Error: disk full"


def test_a_module_runs_its_timers_before_it_ends(worker: WorkerProcess, tmp_path: Path) -> None:
    (tmp_path / "late.mjs").write_text(
        "setTimeout(() => console.log('from the module'), 5);\nconsole.log('first');\n"
    )
    frames = worker.run_file("late.mjs")
    assert [f.text for f in frames if isinstance(f, Console)] == ["first", "from the module"]
    assert kinds(frames)[-2:] == ["Value", "Ok"]


def test_an_unhandled_rejection_in_a_module_fails_it(worker: WorkerProcess, tmp_path: Path) -> None:
    (tmp_path / "forgot.mjs").write_text("Promise.reject(new TypeError('unseen'));\n")
    frames = worker.run_file("forgot.mjs")
    assert error_of(frames).message == "TypeError: unseen"


def test_a_startup_file_that_leaves_a_rejection_fails_the_start(
    worker: WorkerProcess, tmp_path: Path
) -> None:
    (tmp_path / "init.js").write_text("Promise.reject(new Error('bad config'));\n")
    frames = worker.startup(files=("init.js",))
    error = error_of(frames)
    assert error.code == "STARTUP_FAILED"
    assert "init.js" in error.message and "bad config" in error.message


def test_many_timers_run_in_one_execution(worker: WorkerProcess) -> None:
    frames = worker.repl(
        "let fired = 0; for (let i = 0; i < 20000; i++) setTimeout(() => fired++, i % 3);"
        " await new Promise((resolve) => setTimeout(resolve, 5)); fired"
    )
    assert value_of(frames).preview == "20000"
