"""``vmctl run FILE``: the one-shot path, on a named daemon or a temporary one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cli.runner import Vmctl, invoke
from real_daemon import TESTAPPS

Json = Callable[..., Any]


def test_run_prints_output_and_value_and_cleans_up(vmctl: Vmctl, vmctl_json: Json) -> None:
    before = {t["id"] for t in vmctl_json("template", "list")}
    result = vmctl("run", str(TESTAPPS / "fsreader" / "main.js"))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "files: config.json,message.txt",
        "message: read through the fs module",
        "exists: true false",
        "{ files: 2, message: 'read through the fs module' }",
    ]
    assert {t["id"] for t in vmctl_json("template", "list")} == before  # template deleted
    assert all(s["status"] == "closed" for s in vmctl_json("session", "list"))


def test_run_exits_2_when_the_file_times_out(vmctl: Vmctl) -> None:
    result = vmctl("run", str(TESTAPPS / "loop" / "main.js"), "--timeout-ms", "300")
    assert result.exit_code == 2
    assert result.stdout.splitlines()[-1].endswith("limit of 300 ms reached")


def test_run_takes_args_and_runs_mjs_as_a_module(vmctl: Vmctl, tmp_path: Path) -> None:
    script = tmp_path / "args.js"
    script.write_text("__ARGS__.n * 2\n")
    assert vmctl("run", str(script), "--args", '{"n": 21}').stdout == "42\n"
    assert vmctl("run", str(TESTAPPS / "esm" / "main.mjs")).stdout == "ESM TOTAL 13!!\n"


def test_run_exits_2_when_the_file_throws(vmctl: Vmctl, tmp_path: Path) -> None:
    script = tmp_path / "throws.js"
    script.write_text("throw new RangeError('out of range')\n")
    result = vmctl("run", str(script))
    assert result.exit_code == 2
    assert result.stdout.startswith("RangeError: out of range")


def test_run_of_a_missing_file_is_a_usage_error(vmctl: Vmctl, tmp_path: Path) -> None:
    assert vmctl("run", str(tmp_path / "nope.js")).exit_code == 2


def test_run_without_a_daemon_starts_one_and_stops_it(tmp_path: Path) -> None:
    home = tmp_path / "home"  # no record here and no VMCTL_URL: nothing names a daemon
    result = invoke(["run", str(TESTAPPS / "hello" / "main.js")], {"VMCTL_HOME": str(home)})
    # hello's main.js needs its startup files: without them greet() is undefined.
    assert result.exit_code == 2
    assert "ReferenceError" in result.stdout
    ok = invoke(["run", str(TESTAPPS / "esm" / "main.mjs")], {"VMCTL_HOME": str(home)})
    assert (ok.exit_code, ok.stdout) == (0, "ESM TOTAL 13!!\n")
    assert not home.exists()  # the temporary daemon had a home of its own
    # The autouse leak check fails this test if the temporary daemon survived.
