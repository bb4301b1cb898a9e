"""``vmctl doctor``: the jail's layers on this host and in the running daemon."""

from __future__ import annotations

import json

from cli.runner import Vmctl
from vmctl.sandbox.probe import probe


def test_doctor_lists_every_layer_of_the_host_and_of_the_daemon(vmctl: Vmctl) -> None:
    host = probe()
    result = vmctl("doctor")
    lines = result.output.splitlines()
    assert lines[0].startswith("This host, probed now")
    for layer in host.layers:
        mark = "ok" if layer.available else ("--" if not layer.required else "NO")
        assert sum(line.split()[:2] == [mark, layer.name] for line in lines) == 2, layer
    assert any(line.startswith("The daemon at http://127.0.0.1:") for line in lines)
    assert "(--sandbox auto)" in result.output
    assert result.exit_code == (1 if host.missing() else 0)


def test_doctor_json_names_what_is_missing(vmctl: Vmctl) -> None:
    result = vmctl("--json", "doctor")
    report = json.loads(result.output)
    assert [layer["name"] for layer in report["host"]] == [
        "netns", "no_new_privs", "landlock", "capabilities", "uid", "seccomp"
    ]  # fmt: skip
    assert report["daemon"]["mode"] == "auto"
    assert report["missing"] == report["daemon"]["missing"]


def test_doctor_without_a_daemon_still_probes_the_host(vmctl: Vmctl) -> None:
    result = vmctl("--server-url", "http://127.0.0.1:9", "doctor")
    assert "No daemon report: cannot reach the vmctl daemon" in result.output
    assert "landlock" in result.output
