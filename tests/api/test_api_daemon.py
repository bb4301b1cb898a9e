"""The daemon's own lifetime: SIGTERM, SIGKILL, and what the next start recovers."""

from __future__ import annotations

import concurrent.futures
import contextlib
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from real_daemon import Daemon, running_daemon, session_body, wait_until


def _start_session(daemon: Daemon, tree: Path, wall_ms: int = 30_000) -> dict[str, Any]:
    with daemon.client() as client:
        template = client.post("/templates", json={"name": f"t{time.monotonic_ns()}"}).json()
        client.put(
            f"/templates/{template['id']}/settings",
            json={"limits": {"wall_ms": wall_ms, "cpu_ms": wall_ms}},
        )
        session: dict[str, Any] = client.post(
            "/sessions", json=session_body(template["id"], tree)
        ).json()
        assert session["status"] == "ready"
        return session


def _busy(daemon: Daemon) -> bool:
    with daemon.client() as client:
        busy: int = client.get("/runtime/summary").json()["busy_sessions"]
        return busy > 0


def test_sigterm_cancels_running_executions_and_exits_zero(tmp_path: Path) -> None:
    home = tmp_path / "home"
    tree = tmp_path
    with running_daemon(home) as daemon:
        session = _start_session(daemon, tree)
        pid = session["runtime_meta"]["pid"]
        with concurrent.futures.ThreadPoolExecutor(1) as pool, daemon.client() as client:
            answer = pool.submit(
                client.post,
                "/executions/repl",
                json={"session_id": session["id"], "input": "while (true) {}"},
            )
            wait_until(lambda: _busy(daemon))
            started = time.monotonic()
            assert daemon.stop(signal.SIGTERM) == 0
            elapsed = time.monotonic() - started
            response = answer.result(timeout=10)
        assert elapsed < 5.0
        assert response.status_code == 201 and response.json()["status"] == "cancelled"
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    # The next daemon sees the session as crashed (restartable) and the execution as cancelled.
    with running_daemon(home) as daemon, daemon.client() as client:
        after = client.get(f"/sessions/{session['id']}").json()
        assert after["status"] == "crashed" and "shut down" in after["last_error"]
        executions = client.get("/executions", params={"session_id": session["id"]}).json()
        assert [e["status"] for e in executions] == ["cancelled"]
        restarted = client.post(f"/sessions/{session['id']}/restart")
        assert restarted.json()["status"] == "ready"
        client.post(f"/sessions/{session['id']}/close")


def test_sigkill_leaves_no_worker_and_next_start_recovers(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with running_daemon(home) as daemon:
        session = _start_session(daemon, tmp_path)
        worker = psutil.Process(session["runtime_meta"]["pid"])
        # Forked by the fork server: the daemon's death must reach it through that.
        forkserver = worker.parent()
        assert "vmctl.worker.forkserver" in forkserver.cmdline()
        assert forkserver.ppid() == daemon.proc.pid
        with concurrent.futures.ThreadPoolExecutor(1) as pool, daemon.client() as client:
            answer = pool.submit(
                client.post,
                "/executions/repl",
                json={"session_id": session["id"], "input": "while (true) {}"},
            )
            wait_until(lambda: _busy(daemon))
            daemon.stop(signal.SIGKILL)
            # Parent-death signals: the daemon's takes the fork server, whose takes the worker.
            _, alive = psutil.wait_procs([forkserver, worker], timeout=5)
            assert not alive
            # The connection died with the daemon; that is the point.
            with contextlib.suppress(httpx.HTTPError):
                answer.result(timeout=10)
    with running_daemon(home) as daemon, daemon.client() as client:
        after = client.get(f"/sessions/{session['id']}").json()
        assert after["status"] == "crashed"
        assert "daemon stopped" in after["last_error"]
        execution = client.get("/executions", params={"session_id": session["id"]}).json()[0]
        assert execution["status"] == "cancelled" and execution["ended_at"]
        events = client.get(f"/executions/{execution['id']}/events").json()
        assert events[-1]["type"] == "system"
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        assert "recovered 1 session(s) and 1 execution(s)" in daemon.log()
