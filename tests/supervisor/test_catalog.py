"""The catalog: templates read once and kept, forgotten around every change, never kept stale."""

from __future__ import annotations

import asyncio

import msgspec

from supervisor.stores import given_template
from vmctl.api.models import Limits, Settings
from vmctl.supervisor.sessions.catalog import Catalog
from vmctl.supervisor.store import Store
from vmctl.supervisor.store.models import new_id


def _with_wall_ms(template_id: str, wall_ms: int) -> Settings:
    return Settings(vm_id=template_id, limits=msgspec.structs.replace(Limits(), wall_ms=wall_ms))


def test_an_entry_is_read_once_and_kept(runner: asyncio.Runner, store: Store) -> None:
    catalog = Catalog(store)
    template = runner.run(given_template(store))
    first = runner.run(catalog.entry(template.id))
    assert first is not None and first.template == template
    runner.run(store.put_settings(_with_wall_ms(template.id, 123)))  # behind its back
    assert runner.run(catalog.entry(template.id)) is first


def test_a_change_is_read_back_at_once(runner: asyncio.Runner, store: Store) -> None:
    catalog = Catalog(store)
    template = runner.run(given_template(store))
    runner.run(catalog.entry(template.id))

    async def change() -> None:
        async with catalog.changing(template.id):
            await store.put_settings(_with_wall_ms(template.id, 123))

    runner.run(change())
    entry = runner.run(catalog.entry(template.id))
    assert entry is not None and entry.settings.limits.wall_ms == 123


def test_a_read_that_overlapped_a_change_is_not_kept(runner: asyncio.Runner, store: Store) -> None:
    catalog = Catalog(store)
    template = runner.run(given_template(store))

    async def read_during_change() -> None:
        async with catalog.changing(template.id):
            # A read that started before the write and ends after it may be stale.
            reading = asyncio.ensure_future(catalog.entry(template.id))
            await asyncio.sleep(0)
            await store.put_settings(_with_wall_ms(template.id, 456))
            await reading

    runner.run(read_during_change())
    entry = runner.run(catalog.entry(template.id))
    assert entry is not None and entry.settings.limits.wall_ms == 456


def test_an_unknown_template_is_none_and_not_kept(runner: asyncio.Runner, store: Store) -> None:
    catalog = Catalog(store)
    assert runner.run(catalog.entry(new_id())) is None


def test_a_template_without_stored_settings_has_the_defaults(
    runner: asyncio.Runner, store: Store
) -> None:
    catalog = Catalog(store)
    template = runner.run(given_template(store))
    entry = runner.run(catalog.entry(template.id))
    assert entry is not None and entry.settings == Settings(vm_id=template.id)
