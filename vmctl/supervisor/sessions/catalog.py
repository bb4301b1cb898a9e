"""The templates an execution runs under, held in memory: read once, forgotten on each change.

Every execution needs its session's template (the modules it exposes) and settings (its
limits, its runtime options), and every session start its startup files too. Read from
the store, that is round trips to the reader thread each time; the :class:`Catalog` keeps
them instead, one entry per template,
filled on first use. Its one writer, :class:`~vmctl.supervisor.sessions.templates.Templates`,
wraps every change of a template's rows in :meth:`Catalog.changing`, so the next read after
the change sees it, and so does every execution that starts after the change was answered.

A read that was under way while a change ran may have read the rows from before it: each
change moves the catalog's generation on, and a read whose generation is no longer the
current one is returned to its caller but not kept.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import msgspec

from vmctl.api.models import Settings, StartupFile, Template
from vmctl.supervisor.store import Store


class Entry(msgspec.Struct, frozen=True):
    """A template as an execution, a session start or a route reads it: its row, its
    settings and its startup files (by order_index, then path)."""

    template: Template
    settings: Settings
    startup: tuple[StartupFile, ...]


class Catalog:
    """The templates of one store, read once each and kept until they change."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._entries: dict[str, Entry] = {}
        self._generation = 0  # moved on by every change (before and after it is written)

    async def entry(self, template_id: str) -> Entry | None:
        """The template, its settings (the defaults if it has none stored; as stored
        otherwise: the caller lowers what is past today's maxima) and its startup files;
        None when there is no such template."""
        entry = self._entries.get(template_id)
        if entry is not None:
            return entry
        generation = self._generation
        read = await self._store.get_template_for_sessions(template_id)
        if read is None:
            return None
        template, settings, startup = read
        if settings is None:
            settings = Settings(vm_id=template_id)
        entry = Entry(template, settings, tuple(startup))
        if generation == self._generation:
            self._entries[template_id] = entry
        return entry

    @contextlib.asynccontextmanager
    async def changing(self, template_id: str) -> AsyncIterator[None]:
        """Around a write of ``template_id``'s rows: the entry is forgotten before and after
        it (whether the write succeeds or not), and no read that overlapped it is kept."""
        self._forget(template_id)
        try:
            yield
        finally:
            self._forget(template_id)

    def _forget(self, template_id: str) -> None:
        self._generation += 1
        self._entries.pop(template_id, None)
