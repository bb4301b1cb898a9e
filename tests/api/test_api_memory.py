"""What an idle forked session costs in memory: its worker shares the fork server's pages.

The bounds are about twice the figures measured on the development machine (4 idle
sessions after one ``1+1`` each: PSS about 7 MiB, USS about 4 MiB; docs/benchmarks.md has
the benchmark's own row), so that they hold on a busier CI machine yet fail when a change
makes every worker copy the fork server's heap (a fresh interpreter is 20 MiB and more).
"""

from __future__ import annotations

import statistics
from pathlib import Path

import psutil

from real_daemon import running_daemon, start_session

MIB = 1024 * 1024
SESSIONS = 4
IDLE_PSS_BOUND = 14 * MIB
IDLE_USS_BOUND = 8 * MIB


def test_idle_forked_sessions_share_most_of_their_memory(tmp_path: Path) -> None:
    with running_daemon(tmp_path / "home") as daemon, daemon.client() as client:
        pids = []
        for _ in range(SESSIONS):
            session = start_session(client, tmp_path)
            answer = client.post(
                "/executions/repl", json={"session_id": session["id"], "input": "1+1"}
            )
            assert answer.status_code == 201, answer.text
            pids.append(session["runtime_meta"]["pid"])
        workers = [psutil.Process(pid) for pid in pids]
        assert all("vmctl.worker.forkserver" in w.parent().cmdline() for w in workers)
        infos = [w.memory_full_info() for w in workers]
        daemon.close_open_sessions()
    assert statistics.median(info.uss for info in infos) < IDLE_USS_BOUND
    assert statistics.median(info.pss for info in infos) < IDLE_PSS_BOUND
