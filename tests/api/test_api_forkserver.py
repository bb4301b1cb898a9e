"""The daemon's fork server: quickjs workers are forked from it, and losing it only makes
sessions start the slow way. Each test runs its own daemon, since it kills the fork server.
"""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil

from real_daemon import Daemon, plugin_engine, running_daemon, session_body, wait_until


def _session(client: httpx.Client, tree: Path, engine: str = "quickjs") -> dict[str, Any]:
    name = f"t-{uuid.uuid4()}"
    template = client.post("/templates", json={"name": name, "engine": engine}).json()
    response = client.post("/sessions", json=session_body(template["id"], tree))
    assert response.status_code == 201, response.text
    session: dict[str, Any] = response.json()
    return session


def _parent(session: dict[str, Any]) -> psutil.Process:
    return psutil.Process(session["runtime_meta"]["pid"]).parent()


def _is_forkserver(process: psutil.Process, daemon: Daemon) -> bool:
    command: list[str] = process.cmdline()
    return "vmctl.worker.forkserver" in command and process.ppid() == daemon.proc.pid


def test_quickjs_workers_are_forked_and_plugin_workers_spawned(tmp_path: Path) -> None:
    args = ["--engine", plugin_engine("echo", "echo")]
    with running_daemon(tmp_path / "home", args) as daemon, daemon.client() as client:
        forked = _session(client, tmp_path)
        spawned = _session(client, tmp_path, "echo")
        assert _is_forkserver(_parent(forked), daemon)
        assert _parent(spawned).pid == daemon.proc.pid
        ran = client.post("/executions/repl", json={"session_id": forked["id"], "input": "1+1"})
        assert ran.json()["status"] == "ok"


def test_losing_the_fork_server_crashes_its_sessions_and_new_ones_start_spawned(
    tmp_path: Path,
) -> None:
    with running_daemon(tmp_path / "home") as daemon, daemon.client() as client:
        before = _session(client, tmp_path)
        forkserver = _parent(before)
        assert _is_forkserver(forkserver, daemon)
        os.kill(forkserver.pid, signal.SIGKILL)

        def crashed() -> bool:
            return bool(client.get(f"/sessions/{before['id']}").json()["status"] == "crashed")

        wait_until(crashed)
        after = client.get(f"/sessions/{before['id']}").json()
        assert after["last_error"] == "exit status unknown: its fork server was killed by signal 9"
        again = _session(client, tmp_path)
        assert _parent(again).pid == daemon.proc.pid
        restarted = client.post(f"/sessions/{before['id']}/restart").json()
        assert restarted["status"] == "ready"
        assert _parent(restarted).pid == daemon.proc.pid
    assert "workers are spawned without it" in daemon.log()
