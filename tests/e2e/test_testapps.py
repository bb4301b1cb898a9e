"""Every app of testapps/ through the CLI, as docs/cli.md and ci/e2e.sh walk them."""

from __future__ import annotations

import json
from collections.abc import Callable

from cli.runner import Vmctl

AppSession = Callable[..., str]


def test_hello_startup_files_set_globals_for_repl_and_file_runs(
    vmctl: Vmctl, app_session: AppSession
) -> None:
    session = app_session(
        "hello",
        ["add-startup", "--path", "startup/10-greet.js", "--order", "10"],
        ["add-startup", "--path", "startup/00-greeting.js", "--order", "0"],
    )
    assert vmctl("exec", "repl", session, 'greet("e2e")').stdout == "Hello, e2e!\n"
    ran = vmctl("exec", "run-file", session, "main.js", "--args", '{"name": "file"}')
    assert ran.stdout.splitlines() == [
        "Hello, file!",
        "startup order: 00-greeting,10-greet",
        "{ greeting: 'Hello, file!', startup: 2 }",
    ]
    again = vmctl("exec", "run-file", session, "main.js")  # re-runnable in one session
    assert again.stdout.splitlines()[0] == "Hello, world!"


def test_esm_entry_imports_sibling_modules(vmctl: Vmctl, app_session: AppSession) -> None:
    session = app_session("esm", ["set-runtime", "--esm"])
    assert vmctl("exec", "run-file", session, "main.mjs").stdout == "ESM TOTAL 13!!\n"


def test_typescript_entry_imports_a_typed_module_and_stacks_point_at_the_source(
    vmctl: Vmctl, app_session: AppSession
) -> None:
    session = app_session("typescript")
    ran = vmctl("exec", "run-file", session, "main.ts")
    assert ran.exit_code == 0, ran.output
    assert ran.stdout.splitlines() == [
        "circle 3.14",
        "square 4.00",
        "total area 7.14 cm",
        "largest: square",
        "RangeError: negative side at lib/shapes.ts:38:29",
    ]
    typed = vmctl("exec", "repl", session, "const side: number = 3; side * side")
    assert typed.stdout == "9\n"


def test_fsreader_reads_its_worktree_through_fs(vmctl: Vmctl, app_session: AppSession) -> None:
    session = app_session("fsreader", ["add-module", "--name", "fs"])
    ran = vmctl("exec", "run-file", session, "main.js")
    assert ran.exit_code == 0, ran.output
    assert "message: read through the fs module" in ran.stdout
    assert "exists: true false" in ran.stdout


def test_fsreader_without_the_module_fails_cleanly(vmctl: Vmctl, app_session: AppSession) -> None:
    session = app_session("fsreader")
    ran = vmctl("exec", "run-file", session, "main.js")
    assert ran.exit_code == 2
    assert "fs" in ran.stdout.splitlines()[0]


def test_spewer_lines_arrive_complete_and_in_order(vmctl: Vmctl, app_session: AppSession) -> None:
    session = app_session("spewer")
    ran = vmctl("exec", "run-file", session, "main.js")
    lines = ran.stdout.splitlines()
    assert ran.exit_code == 0
    assert [line.split(":")[0] for line in lines[:-1]] == [
        f"line {i} of 3000" for i in range(1, 3001)
    ]
    assert lines[-1] == "3000"


def test_spewer_is_stopped_by_the_event_and_output_limits(
    vmctl: Vmctl, app_session: AppSession
) -> None:
    events = app_session("spewer", ["set-limits", "--max-events", "100"])
    stopped = vmctl("exec", "run-file", events, "main.js")
    assert stopped.exit_code == 2
    assert stopped.stdout.splitlines()[-1] == "stopped: max_events limit of 100 reached"
    output = app_session("spewer", ["set-limits", "--max-output-kb", "16"])
    cut = vmctl("exec", "run-file", output, "main.js")
    assert cut.exit_code == 2
    assert cut.stdout.splitlines()[-1] == "stopped: max_output_kb limit of 16 KB reached"


def test_loop_times_out_and_the_session_keeps_its_state(
    vmctl: Vmctl, app_session: AppSession
) -> None:
    session = app_session("loop", ["set-limits", "--wall-ms", "300", "--cpu-ms", "300"])
    assert vmctl("exec", "repl", session, "globalThis.kept = 7").exit_code == 0
    ran = vmctl("exec", "run-file", session, "main.js")
    assert ran.exit_code == 2
    assert ran.stdout.splitlines() == [
        "looping forever",
        "stopped: wall_ms limit of 300 ms reached",
    ]
    record = json.loads(vmctl("--json", "exec", "list", session, "--limit", "1").stdout)[0]
    assert record["status"] == "timeout"
    assert vmctl("exec", "repl", session, "kept").stdout == "7\n"


def test_memhog_is_stopped_by_the_memory_limit(vmctl: Vmctl, app_session: AppSession) -> None:
    session = app_session(
        "memhog", ["set-limits", "--mem-mb", "32", "--wall-ms", "10000", "--cpu-ms", "10000"]
    )
    ran = vmctl("exec", "run-file", session, "main.js")
    assert ran.exit_code == 2
    assert ran.stdout.splitlines() == ["allocating", "stopped: mem_mb limit of 32 MB reached"]
