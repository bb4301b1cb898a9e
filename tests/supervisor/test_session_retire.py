"""A session retired while the watcher of its dead worker waits for the session's lock.

The chaos test found it (seed 1122): a worker was killed just after a restart of its
session took the session's lock. The worker's watcher saw the death first and queued for
that lock to mark the session crashed; the restart then retired the session and waited
for the watcher, which waited for the restart's lock: the session, and every request that
touched it, hung for ever. The interleaving is staged here on a real manager (store, fork
server, worker), holding the lock as a restart or a close holds it around its retire. The
retire decides the session's state; the death is still counted as a crash.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from supervisor.handles import Run
from vmctl.supervisor.config import DaemonConfig
from vmctl.supervisor.metrics import Metrics
from vmctl.supervisor.sessions import open_session_manager

RETIRE_BOUND = 10.0  # the kill ladder of a worker that is already dead takes no time


def test_a_retire_under_the_lock_does_not_wait_for_a_watcher_queued_for_it(
    tmp_path: Path, worktree: Path, run: Run
) -> None:
    home = tmp_path / "home"
    config = DaemonConfig(
        home=str(home),
        db_path=str(home / "vmctl.db"),
        worktree_roots=(str(tmp_path),),
        pool_size=0,
        heartbeat_interval=0,
        sandbox="off",
    )

    metrics = Metrics()

    async def main() -> tuple[str, str | None]:
        async with open_session_manager(config, metrics) as manager:
            template = await manager.templates.create("t", None)
            session = await manager.create_session(template.id, "w", "0" * 40, str(worktree))
            live = manager._live[session.id]
            async with manager._locks.hold(session.id):  # as restart_session holds it
                os.kill(live.handle.pid, signal.SIGKILL)
                await live.handle.wait_exited()
                for _ in range(10):  # the watcher wakes and queues for the lock
                    await asyncio.sleep(0)
                assert live.watcher is not None and not live.watcher.done()
                async with asyncio.timeout(RETIRE_BOUND):
                    await manager._retire(session.id, "the session was restarted")
            assert live.watcher.done()
            stored = await manager.get_session(session.id)
            return stored.status, live.retired_because

    status, why = run(main())
    # The retire, not the death, decided the session's state (the watcher marked nothing);
    # the death still counts as the crash it was.
    assert (status, why) == ("ready", "the session was restarted")
    crashes = metrics.registry.get_sample_value("vmctl_worker_crashes_total", {"cause": "signal"})
    assert crashes == 1
