"""The per-session lifecycle locks: exclusive per session, dropped with their last user."""

from __future__ import annotations

import asyncio

from vmctl.supervisor.sessions.live import SessionLocks


def test_a_lock_serialises_one_session_and_is_dropped_when_nobody_uses_it() -> None:
    async def main() -> tuple[list[str], list[int]]:
        locks = SessionLocks()
        happened: list[str] = []
        sizes: list[int] = []

        async def second() -> None:
            async with locks.hold("a"):
                happened.append("second holds a")

        async with locks.hold("a"):
            happened.append("first holds a")
            waiting = asyncio.create_task(second())
            await asyncio.sleep(0)  # one loop turn: the task now waits for the lock
            async with locks.hold("b"):  # another session is not blocked
                happened.append("b held meanwhile")
            sizes.append(len(locks))  # a (held, one waiter); b is gone again
            happened.append("first releases a")
        await waiting
        sizes.append(len(locks))
        return happened, sizes

    happened, sizes = asyncio.run(main())
    assert happened == ["first holds a", "b held meanwhile", "first releases a", "second holds a"]
    assert sizes == [1, 0]


def test_a_lock_is_dropped_when_its_holder_fails() -> None:
    async def main() -> int:
        locks = SessionLocks()
        try:
            async with locks.hold("a"):
                raise RuntimeError("boom")
        except RuntimeError:
            pass
        return len(locks)

    assert asyncio.run(main()) == 0
