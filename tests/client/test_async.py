"""AsyncClient: the same surface, awaited; each test runs its own event loop."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from cli.cutting_proxy import cutting_proxy

from client.scripts import TICKS
from real_daemon import Daemon
from vmctl.api.models import Event, Session
from vmctl.client import AsyncClient, Conflict, NotFound, Run

LINES = 2000


def test_a_session_runs_code_and_closes(daemon: Daemon, tmp_path: Path) -> None:
    async def main() -> tuple[Run, Session, Session]:
        async with AsyncClient(daemon.url, daemon.token) as client:
            async with client.session(f"t-{uuid.uuid4()}", tmp_path) as session:
                run = await session.repl("console.log('x'); 1 + 1")
            return run, session.record, await client.get_session(session.id)

    run, closed, found = asyncio.run(main())
    assert (run.ok, run.value, run.console) == (True, 2, ["x"])
    assert closed.status == found.status == "closed"


def test_errors_are_the_same_families(daemon: Daemon, tmp_path: Path) -> None:
    async def main() -> None:
        async with AsyncClient(daemon.url, daemon.token) as client:
            with pytest.raises(NotFound) as missing:
                await client.get_execution(str(uuid.uuid4()))
            assert missing.value.code == "EXECUTION_NOT_FOUND"
            template = await client.create_template(f"t-{uuid.uuid4()}")
            with pytest.raises(Conflict) as taken:
                await client.create_template(template.name)
            assert taken.value.code == "TEMPLATE_NAME_TAKEN"

    asyncio.run(main())


class Boom(Exception):
    pass


def test_the_session_is_closed_when_the_block_raises(daemon: Daemon, tmp_path: Path) -> None:
    async def main() -> str:
        async with AsyncClient(daemon.url, daemon.token) as client:
            with pytest.raises(Boom):
                async with client.session(f"t-{uuid.uuid4()}", tmp_path) as session:
                    raise Boom
            return (await client.get_session(session.id)).status

    assert asyncio.run(main()) == "closed"


def test_live_iteration_and_cancel(
    daemon: Daemon, gated_template: str, tmp_path: Path, gate: Path
) -> None:
    async def main() -> tuple[list[str], Run, Run]:
        client = AsyncClient(daemon.url, daemon.token)
        async with client, client.session(gated_template, tmp_path) as session:
            running = await session.repl(TICKS, wait=False)
            texts = []
            async for event in running:
                texts.append(event.payload.get("text", ""))
                if event.payload.get("text") == "tick 5":
                    assert (await client.get_execution(running.id)).status == "running"
                    gate.touch()
            ended = await running.wait()
            gate.unlink()
            again = await session.repl(TICKS, wait=False)
            cancelled = await again.cancel()
            return texts, ended, cancelled

    texts, ended, cancelled = asyncio.run(main())
    assert ended.ok and texts[1:6] == [f"tick {n}" for n in range(1, 6)]
    assert cancelled.status == "cancelled"


def test_a_dropped_stream_is_resumed(daemon: Daemon, tmp_path: Path) -> None:
    async def long_execution() -> str:
        client = AsyncClient(daemon.url, daemon.token)
        async with client, client.session(f"t-{uuid.uuid4()}", tmp_path) as session:
            code = f"for (let i = 1; i <= {LINES}; i++) console.log('line ' + i); 'end'"
            return (await session.repl(code)).id

    async def follow(url: str, execution_id: str) -> list[Event]:
        client = AsyncClient(url, daemon.token)
        async with client, client.stream_events(execution_id) as stream:
            return [event async for event in stream]

    execution_id = asyncio.run(long_execution())
    with cutting_proxy(daemon.port, cuts=[40_000, 40_000]) as proxy:
        events = asyncio.run(follow(proxy.url, execution_id))
        assert proxy.cut == 2
    assert [event.seq for event in events] == list(range(1, LINES + 3))
