"""Retention: the manager's hook that prunes the store in the background.

``--retain`` (``DaemonConfig.retain``, default ``30d``) keeps ended executions for an age
or up to a count, with their events and their closed sessions (store/retention.py has
the SQL). A prune runs just after the daemon starts (in the background: a large store
never delays the first request) and every :data:`PRUNE_INTERVAL_SECONDS` after; a
failure is logged and tried again at the next one.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator

from vmctl.supervisor.config import DaemonConfig
from vmctl.supervisor.sessions.background import repeated
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
    prune_once = functools.partial(_prune_once, store, age, keep)
    async with repeated(prune_once, PRUNE_INTERVAL_SECONDS, "prune-store", at_once=True):
        yield


async def _prune_once(store: Store, age: int | None, keep: int | None) -> None:
    """One prune; a failure is logged (tried again at the next), never raised."""
    cutoff = None if age is None else timestamp(time.time() - age)
    try:
        done = await store.prune(cutoff, keep)
    except (StoreError, RuntimeError) as exc:  # RuntimeError: the store is closing
        logger.warning("pruning the store failed (tried again in an hour): %s", exc)
        return
    if done.executions or done.sessions:
        logger.info(
            "retention: pruned %d execution(s) with %d event(s), and %d session(s)",
            done.executions,
            done.events,
            done.sessions,
        )
