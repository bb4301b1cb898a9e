"""Work the sessions room repeats in the background while the daemon serves."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable


@contextlib.asynccontextmanager
async def repeated(
    job: Callable[[], Awaitable[None]], every: float, name: str, *, at_once: bool
) -> AsyncIterator[None]:
    """Run ``job`` every ``every`` seconds in a task (first right away when ``at_once``,
    else after one interval) until the block ends; then stop it and wait for it.

    ``job`` handles its own failures: one that raises ends the repetition.
    """

    async def loop() -> None:
        if at_once:
            await job()
        while True:
            await asyncio.sleep(every)
            await job()

    task = asyncio.create_task(loop(), name=name)
    try:
        yield
    finally:
        task.cancel()
        await asyncio.wait([task])  # its CancelledError is its own, not raised here
