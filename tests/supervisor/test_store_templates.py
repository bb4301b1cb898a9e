"""The store's templates and what they name: settings, capabilities, startup files,
modules, libraries."""

from __future__ import annotations

import asyncio

import pytest

from supervisor.stores import (
    T0,
    T1,
    a_template,
    given_session,
    given_template,
    read_template,
    sql,
    stored_events,
)
from vmctl.api.models import Capability, Limits, Runtime, SessionStatus, Settings, StartupFile
from vmctl.supervisor.store import (
    Duplicate,
    RowNotFound,
    Store,
    TemplateInUse,
    TemplateNameTaken,
)
from vmctl.supervisor.store.models import new_id


def test_a_template_comes_back_with_its_modules_and_libraries_sorted(
    runner: asyncio.Runner, store: Store
) -> None:
    template = a_template()
    template.exposed_modules = ["zlib", "fs"]
    template.libraries = ["lodash"]
    runner.run(store.create_template(template, Settings(vm_id=template.id)))
    runner.run(store.add_library(template.id, "dayjs"))

    got = runner.run(read_template(store, template.id))

    assert got is not None
    assert (got.exposed_modules, got.libraries) == (["fs", "zlib"], ["dayjs", "lodash"])
    assert got.updated_at > template.updated_at  # adding a library changes the template


def test_getters_return_none_for_unknown_ids(runner: asyncio.Runner, store: Store) -> None:
    unknown = new_id()
    assert runner.run(store.get_template_detail(unknown)) is None
    assert runner.run(store.get_template_for_sessions(unknown)) is None
    assert runner.run(store.get_session(unknown)) is None
    assert runner.run(store.get_execution(unknown)) is None
    assert runner.run(store.events_after(unknown, 0, 10)) == []
    assert runner.run(stored_events(store, unknown)) == []
    assert runner.run(store.list_executions(unknown)) == []


def test_templates_are_listed_newest_first_even_within_one_millisecond(
    runner: asyncio.Runner, store: Store
) -> None:
    older = a_template("older", created_at=T0)
    tied = [a_template(f"tied-{i}", created_at=T1) for i in range(3)]
    for template in [older, *tied]:
        runner.run(store.create_template(template, Settings(vm_id=template.id)))

    names = [t.name for t in runner.run(store.list_templates())]

    assert names == ["tied-2", "tied-1", "tied-0", "older"]


def test_a_taken_template_name_is_refused(runner: asyncio.Runner, store: Store) -> None:
    runner.run(given_template(store, "same"))
    second = a_template("same")

    with pytest.raises(TemplateNameTaken) as caught:
        runner.run(store.create_template(second, Settings(vm_id=second.id)))

    assert caught.value.name == "same"
    assert runner.run(store.get_template_detail(second.id)) is None


def test_template_detail_holds_settings_capabilities_and_ordered_startup_files(
    runner: asyncio.Runner, store: Store
) -> None:
    template = runner.run(given_template(store))
    vm_id = template.id
    capabilities = [
        Capability(id=new_id(), vm_id=vm_id, kind="net", name="http", config={"a": [1]}),
        Capability(id=new_id(), vm_id=vm_id, kind="fs", name="read", enabled=True),
    ]
    files = [
        StartupFile(id=new_id(), vm_id=vm_id, path="b.js", order_index=1),
        StartupFile(id=new_id(), vm_id=vm_id, path="z.js", order_index=0),
        StartupFile(id=new_id(), vm_id=vm_id, path="a.js", order_index=1),
    ]
    for capability in capabilities:
        runner.run(store.add_capability(capability))
    for startup_file in files:
        runner.run(store.add_startup_file(startup_file))

    detail = runner.run(store.get_template_detail(vm_id))

    assert detail is not None
    assert detail.settings == Settings(vm_id=vm_id)
    assert detail.capabilities == capabilities  # in the order they were added
    assert [f.path for f in detail.startup_files] == ["z.js", "a.js", "b.js"]
    assert runner.run(store.list_capabilities(vm_id)) == capabilities
    assert runner.run(store.list_startup_files(vm_id)) == detail.startup_files


def test_put_settings_replaces_them_and_bumps_updated_at(
    runner: asyncio.Runner, store: Store
) -> None:
    template = runner.run(given_template(store))
    settings = Settings(vm_id=template.id, limits=Limits(cpu_ms=7), runtime=Runtime(esm=True))

    runner.run(store.put_settings(settings))

    detail = runner.run(store.get_template_detail(template.id))
    assert detail is not None and detail.settings == settings
    assert detail.template.updated_at > template.updated_at


def test_put_settings_of_an_unknown_template_raises_not_found(
    runner: asyncio.Runner, store: Store
) -> None:
    with pytest.raises(RowNotFound) as caught:
        runner.run(store.put_settings(Settings(vm_id="nope")))
    assert (caught.value.resource, caught.value.id) == ("template", "nope")


def test_duplicate_capabilities_and_startup_paths_name_their_key(
    runner: asyncio.Runner, store: Store
) -> None:
    vm_id = runner.run(given_template(store)).id
    runner.run(store.add_capability(Capability(id=new_id(), vm_id=vm_id, kind="k", name="n")))
    runner.run(store.add_startup_file(StartupFile(id=new_id(), vm_id=vm_id, path="a.js")))

    with pytest.raises(Duplicate) as capability:
        runner.run(store.add_capability(Capability(id=new_id(), vm_id=vm_id, kind="k", name="n")))
    with pytest.raises(Duplicate) as startup_file:
        runner.run(store.add_startup_file(StartupFile(id=new_id(), vm_id=vm_id, path="a.js")))

    assert capability.value.key == {"kind": "k", "name": "n"}
    assert startup_file.value.key == {"path": "a.js"}
    assert len(runner.run(store.list_capabilities(vm_id))) == 1


def test_sub_resources_of_an_unknown_template_raise_not_found(
    runner: asyncio.Runner, store: Store
) -> None:
    vm_id = new_id()
    writes = [
        store.add_capability(Capability(id=new_id(), vm_id=vm_id, kind="k", name="n")),
        store.add_startup_file(StartupFile(id=new_id(), vm_id=vm_id, path="a.js")),
        store.add_module(vm_id, "fs"),
        store.add_library(vm_id, "lodash"),
    ]
    for write in writes:
        with pytest.raises(RowNotFound, match=f"template {vm_id} not found"):
            runner.run(write)
    assert runner.run(store.list_capabilities(vm_id)) == []
    assert runner.run(store.list_startup_files(vm_id)) == []


def test_modules_and_libraries_are_idempotent_and_removable(
    runner: asyncio.Runner, store: Store
) -> None:
    vm_id = runner.run(given_template(store)).id

    added = [runner.run(store.add_module(vm_id, "fs")) for _ in range(2)]
    added += [runner.run(store.add_library(vm_id, "lodash")) for _ in range(2)]
    assert added == [True, False, True, False]

    removed = [runner.run(store.remove_module(vm_id, "fs")) for _ in range(2)]
    removed += [runner.run(store.remove_library(vm_id, "lodash")) for _ in range(2)]
    assert removed == [True, False, True, False]

    got = runner.run(read_template(store, vm_id))
    assert got is not None and (got.exposed_modules, got.libraries) == ([], [])


def test_deleting_a_template_takes_its_sub_resources_with_it(
    runner: asyncio.Runner, store: Store, db_path: str
) -> None:
    template = a_template("gone")
    template.exposed_modules, template.libraries = ["fs"], ["lodash"]
    runner.run(store.create_template(template, Settings(vm_id=template.id)))
    kept = runner.run(given_template(store, "kept"))
    for vm_id in (template.id, kept.id):
        runner.run(store.add_capability(Capability(id=new_id(), vm_id=vm_id, kind="k", name="n")))
        runner.run(store.add_startup_file(StartupFile(id=new_id(), vm_id=vm_id, path="a.js")))

    assert runner.run(store.delete_template(template.id)) is True

    assert runner.run(store.get_template_detail(template.id)) is None
    tables = ("settings", "capabilities", "startup_files", "template_modules", "template_libraries")
    for table in tables:
        query = f"SELECT count(*) FROM {table} WHERE template_id = '{template.id}'"
        assert sql(db_path, query) == [(0,)]
    kept_detail = runner.run(store.get_template_detail(kept.id))
    assert kept_detail is not None and len(kept_detail.capabilities) == 1


def test_deleting_an_unknown_template_returns_false(runner: asyncio.Runner, store: Store) -> None:
    assert runner.run(store.delete_template(new_id())) is False


@pytest.mark.parametrize("status", ["starting", "ready", "crashed"])
def test_a_template_with_a_session_not_closed_is_in_use(
    runner: asyncio.Runner, store: Store, status: SessionStatus
) -> None:
    session = runner.run(given_session(store, status))

    with pytest.raises(TemplateInUse) as caught:
        runner.run(store.delete_template(session.vm_id))

    assert caught.value.session_ids == [session.id]
    assert runner.run(store.get_template_detail(session.vm_id)) is not None


def test_a_template_whose_sessions_are_closed_can_go_and_they_stay(
    runner: asyncio.Runner, store: Store
) -> None:
    session = runner.run(given_session(store, "closed"))

    assert runner.run(store.delete_template(session.vm_id)) is True

    assert runner.run(store.get_session(session.id)) == session  # history outlives the template
