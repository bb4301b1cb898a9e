"""The error policy: what a failing command prints and how it exits."""

from __future__ import annotations

import json
import subprocess
import sys

from cli.runner import Vmctl, invoke
from real_daemon import Daemon, free_port


def test_no_daemon_says_how_to_start_one() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = invoke(["--server-url", url, "template", "list"], {})
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"Error: cannot reach the vmctl daemon at {url} — start it with `vmctl up`\n"
    )


def test_vmctl_url_names_the_daemon(daemon: Daemon) -> None:
    result = invoke(["ops", "health"], {"VMCTL_URL": daemon.url})
    assert result.exit_code == 0
    assert result.stdout == "ok\n"


def test_server_url_wins_over_vmctl_url(daemon: Daemon) -> None:
    unused = f"http://127.0.0.1:{free_port()}"
    result = invoke(["--server-url", daemon.url, "ops", "health"], {"VMCTL_URL": unused})
    assert result.exit_code == 0


def test_an_api_error_prints_message_and_code_on_stderr(vmctl: Vmctl) -> None:
    result = vmctl("session", "get", "not-a-uuid")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ")
    assert result.stderr.endswith("(VALIDATION_ERROR)\n")


def test_json_mode_keeps_errors_on_stderr(vmctl: Vmctl) -> None:
    result = vmctl("--json", "session", "get", "00000000-0000-4000-8000-000000000000")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "(SESSION_NOT_FOUND)" in result.stderr


def test_usage_errors_keep_clicks_exit_code(vmctl: Vmctl) -> None:
    assert vmctl("template", "no-such-command").exit_code == 2
    assert vmctl("session", "create").exit_code == 2  # --template-id is required
    assert vmctl("exec", "list", "x", "--limit", "0").exit_code == 2


def test_ops_health_and_runtime_summary(vmctl: Vmctl) -> None:
    assert vmctl("ops", "health").stdout == "ok\n"
    summary = vmctl("--json", "ops", "runtime-summary")
    assert summary.exit_code == 0
    assert set(json.loads(summary.stdout)) >= {"active_sessions", "active_session_ids"}
    assert vmctl("ops", "runtime-summary").stdout.split("\n")[0].endswith("live sessions")


def test_the_cli_imports_neither_the_daemon_nor_the_worker() -> None:
    # The CLI talks only HTTP; importing the daemon would also slow every command.
    code = (
        "import sys, vmctl.cli.main\n"
        "loaded = [m for m in sys.modules if m.split('.')[:2] in (['vmctl', 'supervisor'],"
        " ['vmctl', 'worker'], ['vmctl', 'protocol'])]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
