"""Retention: the manager's hook that prunes the store in the background.

``--retain`` (``DaemonConfig.retain``, default ``30d``) keeps ended executions for an age
or up to a count, with their events and their closed sessions (store/retention.py has
the SQL). A prune runs just after the daemon starts (in the background: a large store
never delays the first request) and every :data:`PRUNE_INTERVAL_SECONDS` after; a
failure is logged and tried again at the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from vmctl.supervisor.config import DaemonConfig
from vmctl.supervisor.store import Store, StoreError
from vmctl.supervisor.store.models import timestamp

logger = logging.getLogger("vmctl.sessions")

PRUNE_INTERVAL_SECONDS = 3600


@contextlib.asynccontextmanager
async def pruned(store: Store, config: DaemonConfig) -> AsyncIterator[None]:
    """Prune now and then every :data:`PRUNE_INTERVAL_SECONDS` until the block ends."""
    age, keep = config.retain
    if age is None and keep is None:
        yield
        return
    pruner = asyncio.create_task(_keep_pruned(store, age, keep), name="prune-store")
    try:
        yield
    finally:
        pruner.cancel()
        await asyncio.wait([pruner])


async def _keep_pruned(store: Store, age: int | None, keep: int | None) -> None:
    while True:
        cutoff = None if age is None else timestamp(time.time() - age)
        try:
            done = await store.prune(cutoff, keep)
        except (StoreError, RuntimeError) as exc:  # RuntimeError: the store is closing
            logger.warning("pruning the store failed (tried again in an hour): %s", exc)
        else:
            if done.executions or done.sessions:
                logger.info(
                    "retention: pruned %d execution(s) with %d event(s), and %d session(s)",
                    done.executions,
                    done.events,
                    done.sessions,
                )
        await asyncio.sleep(PRUNE_INTERVAL_SECONDS)
