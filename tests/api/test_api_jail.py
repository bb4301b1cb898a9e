"""The jail, proven on this host through a real daemon (docs/security.md).

A fixture worker (testdata/plugins/tries_to_escape.py) stands for code that got out
of the engine: after its handshake it tries each forbidden act, and every one must
fail. Which layer stopped it is read from the failure: seccomp denies with EPERM
(tests/sandbox/test_layers_alone.py shows each layer alone stopping its acts),
Landlock with EACCES. The forked QuickJS worker's own status shows its layers.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from real_daemon import Daemon, error_code, plugin_engine, running_daemon, session_body
from vmctl.sandbox.probe import probe

HOST = probe()
pytestmark = pytest.mark.skipif(
    HOST.missing() != (), reason=f"this host lacks jail layers: {HOST.missing()}"
)

# The act, the layer that stops it first, and the errno that layer answers.
STOPPED_BY = {
    "read /etc/shadow": ("landlock", "EACCES"),
    "read the store": ("landlock", "EACCES"),
    "read the daemon's environ": ("landlock", "EACCES"),
    "read a file in $HOME": ("landlock", "EACCES"),
    "read another session's worktree": ("landlock", "EACCES"),
    "write in /tmp": ("landlock", "EACCES"),
    "write in its worktree": ("landlock", "EACCES"),
    "connect to the daemon's port": ("seccomp", "EPERM"),  # no socket() at all
    "open a UDP socket": ("seccomp", "EPERM"),
    "fork": ("seccomp", "EPERM"),
    "signal the daemon": ("seccomp", "EPERM"),
    "ptrace a sibling": ("seccomp", "EPERM"),
    "execve /bin/true": ("seccomp", "EPERM"),
}


@pytest.fixture
def readable_tmp() -> Iterator[Path]:
    """A directory the worker user may read (pytest's own is its owner's only)."""
    with tempfile.TemporaryDirectory(prefix="vmctl-jail-") as name:
        os.chmod(name, 0o755)
        yield Path(name)


@pytest.fixture
def jail_daemon(tmp_path: Path) -> Iterator[Daemon]:
    args = ["--engine", plugin_engine("escape", "tries_to_escape")]
    with running_daemon(tmp_path / "home", args) as daemon:
        yield daemon


def _session(daemon: Daemon, engine: str, tree: Path) -> dict[str, Any]:
    with daemon.client() as api:
        name = f"{engine}-{tree.name}-{os.urandom(4).hex()}"
        template = api.post("/templates", json={"name": name, "engine": engine}).json()
        session: dict[str, Any] = api.post(
            "/sessions", json=session_body(template["id"], tree)
        ).json()
    assert session["status"] == "ready", session
    return session


def test_a_worker_that_escaped_the_engine_can_do_none_of_the_forbidden_acts(
    jail_daemon: Daemon, readable_tmp: Path
) -> None:
    other = readable_tmp / "other"
    other.mkdir()
    (other / "secret.js").write_text("the other session's code")
    sibling = _session(jail_daemon, "quickjs", other)
    mine = readable_tmp / "mine"
    mine.mkdir()
    with tempfile.NamedTemporaryFile(dir=Path.home(), prefix=".vmctl-jail-") as home_file:
        home_file.write(b"private")
        home_file.flush()
        escape = _session(jail_daemon, "escape", mine)
        meta = escape["runtime_meta"]
        assert {"netns", "no_new_privs", "landlock", "capabilities", "seccomp"} <= set(
            meta["sandbox"]
        )
        targets = {
            "daemon_pid": jail_daemon.proc.pid,
            "daemon_port": jail_daemon.port,
            "store": str(jail_daemon.db_path),
            "home_file": home_file.name,
            "other_worktree_file": str(other / "secret.js"),
            "sibling_pid": sibling["runtime_meta"]["pid"],
        }
        with jail_daemon.client() as api:
            body = {"session_id": escape["id"], "input": json.dumps(targets)}
            execution = api.post("/executions/repl", json=body).json()
    assert execution["status"] == "ok", execution
    report = execution["result"]["json"]
    assert set(report) == set(STOPPED_BY)
    for act, (layer, expected) in STOPPED_BY.items():
        outcome = report[act]
        assert outcome["ok"] is False, f"{act} was allowed: {outcome['detail']}"
        assert outcome["errno"] == expected, f"{act}: {layer} should stop it, got {outcome}"
    assert not list(mine.iterdir())  # and nothing was written


def test_a_forked_quickjs_worker_runs_jailed(daemon: Daemon, readable_tmp: Path) -> None:
    tree = readable_tmp / "tree"
    tree.mkdir()
    os.chmod(tree, 0o755)
    session = _session(daemon, "quickjs", tree)
    meta = session["runtime_meta"]
    pid = meta["pid"]
    worker = psutil.Process(pid)
    assert "vmctl.worker.forkserver" in worker.parent().cmdline()  # forked, not spawned
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    assert status["NoNewPrivs"].strip() == "1"
    assert status["Seccomp"].strip() == "2"  # a filter
    assert int(status["CapEff"], 16) == 0
    assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink(f"/proc/{daemon.proc.pid}/ns/net")
    expected = ["netns", "no_new_privs", "landlock", "capabilities", "seccomp"]
    if HOST.root:  # the tree is readable by the worker user: it drops to it
        expected.insert(4, "uid")
        assert status["Uid"].split()[:3] == [str(HOST.worker_uid)] * 3
    assert meta["sandbox"] == expected
    with daemon.client() as api:
        api.post(f"/sessions/{session['id']}/close")


def test_the_runtime_apis_work_inside_the_jail(daemon: Daemon, readable_tmp: Path) -> None:
    # Each loads or reaches something after the jail is on: random bytes and digests from
    # the host, the lazy URL library, the TypeScript stripper, a timer's sleep.
    tree = readable_tmp / "tree"
    tree.mkdir()
    os.chmod(tree, 0o755)
    session = _session(daemon, "quickjs", tree)
    code = (
        "const bytes: Uint8Array = crypto.getRandomValues(new Uint8Array(16));\n"
        "const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode('abc'));\n"
        "await new Promise((r) => setTimeout(r, 5));\n"
        "[bytes.some((b) => b !== 0), crypto.randomUUID().length,"
        " new Uint8Array(digest)[0], new URL('http://münchen.de/x').hostname]"
    )
    with daemon.client() as api:
        record = api.post(
            "/executions/repl", json={"session_id": session["id"], "input": code}
        ).json()
        assert record["status"] == "ok", record
        assert record["result"]["json"] == [True, 36, 0xBA, "xn--mnchen-3ya.de"]
        api.post(f"/sessions/{session['id']}/close")


def test_a_worktree_the_worker_user_cannot_read_keeps_the_daemon_uid_under_auto(
    daemon: Daemon, tmp_path: Path
) -> None:
    if not HOST.root:
        pytest.skip("only a root daemon drops to the worker user")
    tree = tmp_path / "private"
    tree.mkdir()
    os.chmod(tree, 0o700)
    assert stat.S_IMODE(os.stat(tmp_path).st_mode) & 0o005 == 0  # pytest's tmp is private
    session = _session(daemon, "quickjs", tree)
    meta = session["runtime_meta"]
    assert "uid" not in meta["sandbox"] and "landlock" in meta["sandbox"]
    assert "without a jail layer (--sandbox auto): uid" in daemon.log()
    with daemon.client() as api:
        api.post(f"/sessions/{session['id']}/close")


def test_strict_refuses_a_worker_without_every_layer(tmp_path: Path) -> None:
    if not HOST.root:
        pytest.skip("only a root daemon has a uid layer a worktree can block")
    tree = tmp_path / "private"
    tree.mkdir()
    strict = running_daemon(tmp_path / "home", ["--sandbox", "strict"])
    with strict as daemon, daemon.client() as api:
        template = api.post("/templates", json={"name": "t"}).json()
        response = api.post("/sessions", json=session_body(template["id"], tree))
    assert error_code(response) == "STARTUP_FAILED"
    message = response.json()["error"]["message"]
    assert "--sandbox strict refuses a worker without every jail layer" in message
    assert "uid: the worker would run as uid" in message


def test_off_applies_no_layer_and_says_so(tmp_path: Path) -> None:
    with running_daemon(tmp_path / "home", ["--sandbox", "off"]) as daemon:
        session = _session(daemon, "quickjs", tmp_path)
        meta = session["runtime_meta"]
        assert meta["sandbox"] == []
        with daemon.client() as api:
            summary = api.get("/runtime/summary").json()["sandbox"]
            api.post(f"/sessions/{session['id']}/close")
    assert summary["mode"] == "off"
    assert "--sandbox off: workers run without a jail" in daemon.log()
