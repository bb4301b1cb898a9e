"""The store's threads: concurrent callers, cancelled callers, a free event loop, closing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from supervisor.stores import (
    a_session,
    an_execution,
    append_console,
    ended,
    given_session,
    given_template,
    recorded,
    sql,
)
from vmctl.supervisor.store import (
    Store,
    open_store,
)
from vmctl.supervisor.store.models import new_id


def test_many_tasks_can_use_the_store_at_once(runner: asyncio.Runner, store: Store) -> None:
    vm_id = runner.run(given_template(store)).id

    async def one_session() -> int:
        session = a_session(vm_id)
        await store.insert_session(session)
        execution = an_execution(session.id)
        await recorded(store, execution, ended(execution), count=10)
        got = await store.get_session(session.id)
        assert got == session
        return len(await store.events_after(execution.id, 0, 100))

    async def scenario() -> list[int]:
        return await asyncio.gather(*(one_session() for _ in range(100)))

    assert runner.run(scenario()) == [10] * 100
    assert len(runner.run(store.list_sessions("ready"))) == 100


def test_a_write_whose_caller_was_cancelled_is_still_done(
    runner: asyncio.Runner, store: Store
) -> None:
    vm_id = runner.run(given_template(store)).id
    session = a_session(vm_id)

    async def scenario() -> list[dict[str, Any]]:
        loop_errors: list[dict[str, Any]] = []
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: loop_errors.append(ctx))
        inserting = asyncio.create_task(store.insert_session(session))
        await asyncio.sleep(0)  # the task runs up to its await: the job is queued
        inserting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await inserting
        # The writer works in order: once a later write is done, the earlier one is too.
        await store.add_module(vm_id, "fs")
        return loop_errors

    assert runner.run(scenario()) == []  # settling the cancelled future did not fail
    assert runner.run(store.get_session(session.id)) == session


def test_the_event_loop_runs_while_a_large_write_is_done(
    runner: asyncio.Runner, store: Store
) -> None:
    session = runner.run(given_session(store))
    running = an_execution(session.id)

    async def scenario() -> int:
        ticks = 0
        log = store.events.open(running)
        while not log.full:  # the largest group a running execution hands the writer
            append_console(log, 1000)
        finishing = asyncio.create_task(log.finish(ended(running)))
        while not finishing.done():
            ticks += 1
            await asyncio.sleep(0.001)
        await finishing
        return ticks

    # Had the write run on the loop, the ticker would have seen the task done at its second tick.
    assert runner.run(scenario()) > 2


def test_closing_finishes_the_writes_already_queued(runner: asyncio.Runner, db_path: str) -> None:
    async def scenario() -> tuple[str, list[bool]]:
        store = await open_store(db_path)
        vm_id = (await given_template(store)).id
        writes = [asyncio.create_task(store.add_module(vm_id, f"m{i}")) for i in range(20)]
        await asyncio.sleep(0)  # all twenty are queued
        await store.aclose()
        return vm_id, await asyncio.gather(*writes)

    vm_id, added = runner.run(scenario())

    assert added == [True] * 20
    assert len(sql(db_path, f"SELECT * FROM template_modules WHERE template_id = '{vm_id}'")) == 20


def test_a_closed_store_refuses_calls_and_closes_again_quietly(
    runner: asyncio.Runner, store: Store
) -> None:
    runner.run(store.aclose())
    runner.run(store.aclose())

    with pytest.raises(RuntimeError, match="the store is closed"):
        runner.run(store.list_templates())
    with pytest.raises(RuntimeError, match="the store is closed"):
        runner.run(store.add_module(new_id(), "fs"))
    assert "closed" in repr(store)
