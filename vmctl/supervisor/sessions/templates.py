"""Templates: runtime profiles, their settings and what they name, checked and stored.

:class:`Templates` is what the API's template routes call. It checks what a
client may not store (an unknown engine, a limit past its maximum, a module
outside the catalog, a path out of the worktree) and writes through the
store, whose errors it turns into domain errors in one place (``errors.store_call``).
A route first gets the template (``TEMPLATE_NOT_FOUND`` before anything about
its body), then hands it to the method that changes it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, TypeVar

import msgspec

from vmctl.api.models import (
    Capability,
    Lifecycle,
    Limits,
    Resolver,
    Runtime,
    Settings,
    StartupFile,
    Template,
    TemplateDetail,
)
from vmctl.supervisor.config import LIFECYCLE_MAXIMUM_MS, LIMIT_MAXIMUMS, DaemonConfig
from vmctl.supervisor.sessions.catalog import Catalog
from vmctl.supervisor.sessions.errors import Invalid, not_found, store_call, validation_error
from vmctl.supervisor.sessions.names import check_library_name, check_module
from vmctl.supervisor.sessions.paths import clean_relative_path
from vmctl.supervisor.store import Store
from vmctl.supervisor.store.models import new_id, utc_now

S = TypeVar("S", Limits, Resolver, Runtime, Lifecycle)


class Templates:
    """The templates of one store; ``config`` says which engines exist; ``changed`` is
    told the id of each template written to or deleted (the warm pool drains it)."""

    def __init__(
        self, store: Store, config: DaemonConfig, changed: Callable[[str], None] | None = None
    ) -> None:
        self._store = store
        self._config = config
        self._changed = changed or (lambda template_id: None)
        # Templates, settings and startup files as sessions read them; every write below
        # goes through _changing, so none is served stale once it has been answered.
        self.catalog = Catalog(store)

    @contextlib.asynccontextmanager
    async def _changing(self, template_id: str) -> AsyncIterator[None]:
        """Around every write of a template's rows: the catalog forgets it (before and
        after), and once the write succeeded ``changed`` is told (the pool drains it)."""
        async with self.catalog.changing(template_id):
            yield
        self._changed(template_id)

    # -- templates --------------------------------------------------------------------

    async def create(self, name: str, engine: str | None) -> Template:
        if not name.strip():
            raise validation_error("name", "name must not be blank")
        engine = engine if engine is not None else "quickjs"
        if self._config.worker_command(engine) is None:
            known = ", ".join(sorted(self._config.engines))
            raise validation_error("engine", f"Unknown engine {engine!r} (known: {known}, goja)")
        now = utc_now()
        template = Template(id=new_id(), name=name, engine=engine, created_at=now, updated_at=now)
        await store_call(self._store.create_template(template, Settings(vm_id=template.id)))
        return template

    async def list_all(self) -> list[Template]:
        return await self._store.list_templates()

    async def get(self, template_id: str) -> Template:
        entry = await self.catalog.entry(template_id)
        if entry is None:
            raise not_found("template", template_id)
        return entry.template

    async def detail(self, template_id: str) -> TemplateDetail:
        detail = await self._store.get_template_detail(template_id)
        if detail is None:
            raise not_found("template", template_id)
        return detail

    async def delete(self, template: Template) -> None:
        async with self._changing(template.id):
            await store_call(self._store.delete_template(template.id))

    async def settings(self, template_id: str) -> Settings:
        """The template's settings (the defaults if it has none stored)."""
        entry = await self.catalog.entry(template_id)
        return _affordable(entry.settings) if entry is not None else Settings(vm_id=template_id)

    async def put_settings(
        self,
        template: Template,
        limits: Mapping[str, Any],
        resolver: Mapping[str, Any],
        runtime: Mapping[str, Any],
        lifecycle: Mapping[str, Any] | None = None,
    ) -> Settings:
        """Merge the keys given into the current settings (the others keep theirs)."""
        current = await self.settings(template.id)
        settings = Settings(
            vm_id=template.id,
            limits=_patched(current.limits, limits),
            resolver=_patched(current.resolver, resolver),
            runtime=_patched(current.runtime, runtime),
            lifecycle=_patched(current.lifecycle, lifecycle or {}),
        )
        _check_settings(settings)
        async with self._changing(template.id):
            await store_call(self._store.put_settings(settings))
        return settings

    # -- what a template names --------------------------------------------------------

    async def add_capability(
        self, template: Template, kind: str, name: str, enabled: bool, config: dict[str, Any]
    ) -> Capability:
        capability = Capability(
            id=new_id(), vm_id=template.id, kind=kind, name=name, enabled=enabled, config=config
        )
        async with self._changing(template.id):  # its updated_at changes
            await store_call(self._store.add_capability(capability))
        return capability

    async def list_capabilities(self, template: Template) -> list[Capability]:
        return await self._store.list_capabilities(template.id)

    async def add_startup_file(
        self, template: Template, path: str, order_index: int, mode: str
    ) -> StartupFile:
        cleaned = clean_relative_path(path)
        if mode != "eval":
            raise Invalid(
                "STARTUP_MODE_UNSUPPORTED",
                f"Startup mode {mode!r} is not supported (only 'eval')",
                {"mode": mode},
            )
        startup = StartupFile(
            id=new_id(), vm_id=template.id, path=cleaned, order_index=order_index, mode="eval"
        )
        async with self._changing(template.id):  # its updated_at changes
            await store_call(self._store.add_startup_file(startup))
        return startup

    async def list_startup_files(self, template: Template) -> list[StartupFile]:
        return await self._store.list_startup_files(template.id)

    async def startup_files(self, template_id: str) -> tuple[StartupFile, ...]:
        """The startup files a session of the template runs (none if it is gone)."""
        entry = await self.catalog.entry(template_id)
        return entry.startup if entry is not None else ()

    async def add_module(self, template: Template, name: str) -> str:
        async with self._changing(template.id):
            await store_call(self._store.add_module(template.id, check_module(name)))
        return name

    async def remove_module(self, template: Template, name: str) -> None:
        async with self._changing(template.id):
            await self._store.remove_module(template.id, name)

    async def add_library(self, template: Template, name: str) -> str:
        async with self._changing(template.id):
            await store_call(self._store.add_library(template.id, check_library_name(name)))
        return name

    async def remove_library(self, template: Template, name: str) -> None:
        async with self._changing(template.id):
            await self._store.remove_library(template.id, name)


def _patched(current: S, given: Mapping[str, Any]) -> S:
    """Keys given replace the current values; keys left out keep theirs."""
    fields = {
        key: tuple(value) if isinstance(value, list) else value for key, value in given.items()
    }
    return msgspec.structs.replace(current, **fields)


def _affordable(settings: Settings) -> Settings:
    """``settings`` with each limit past its maximum lowered to it: a template stored when
    the maxima were higher runs (and is next stored) within today's."""
    over = {
        name: maximum
        for name, maximum in LIMIT_MAXIMUMS.items()
        if getattr(settings.limits, name) > maximum
    }
    if not over:
        return settings
    limits = msgspec.structs.replace(settings.limits, **over)
    return msgspec.structs.replace(settings, limits=limits)


def _check_settings(settings: Settings) -> None:
    for name, maximum in LIMIT_MAXIMUMS.items():
        value = getattr(settings.limits, name)
        if not 0 < value <= maximum:
            raise validation_error(
                f"limits.{name}",
                f"limits.{name} must be a positive integer no larger than {maximum}, got {value}",
                maximum=maximum,
            )
    for name in ("idle_timeout_ms", "max_lifetime_ms"):
        value = getattr(settings.lifecycle, name)
        if value is not None and not 0 < value <= LIFECYCLE_MAXIMUM_MS:
            raise validation_error(
                f"lifecycle.{name}",
                f"lifecycle.{name} must be null or a positive integer no larger than"
                f" {LIFECYCLE_MAXIMUM_MS}, got {value}",
                maximum=LIFECYCLE_MAXIMUM_MS,
            )
    for extension in settings.resolver.extensions:
        if not extension.startswith(".") or "/" in extension:
            raise validation_error(
                "resolver.extensions", f"Extension {extension!r} must look like '.js'"
            )
