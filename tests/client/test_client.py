"""The synchronous client: typed results, each error family with its code, the token found
as the CLI finds it, and a session as a context manager."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from client.scripts import TICKS
from real_daemon import Daemon, free_port
from vmctl.api.models import Event, Execution, Limits, Session, Template
from vmctl.client import (
    ApiError,
    Client,
    Conflict,
    DaemonUnreachable,
    InvalidRequest,
    LimitExceeded,
    NotFound,
    Unauthorized,
    Unprocessable,
)


def test_answers_are_the_api_structs(client: Client, tmp_path: Path) -> None:
    template = client.create_template(f"t-{uuid.uuid4()}")
    session = client.create_session(template.id, tmp_path)
    execution = client.repl(session.id, "console.log('hi'); 6 * 7")
    events = client.list_events(execution.id)
    assert isinstance(template, Template) and isinstance(session, Session)
    assert (session.status, session.worktree_path) == ("ready", str(tmp_path))
    assert isinstance(execution, Execution) and execution.status == "ok"
    assert execution.result is not None and execution.result["json"] == 42
    assert all(isinstance(event, Event) for event in events)
    assert [event.type for event in events] == ["input_echo", "console", "value"]
    assert [s.id for s in client.list_sessions("ready")].count(session.id) == 1
    assert client.close_session(session.id).status == "closed"


def test_a_run_has_the_value_the_console_and_the_events(client: Client, tmp_path: Path) -> None:
    with client.session(f"t-{uuid.uuid4()}", tmp_path) as session:
        run = session.repl("console.log('a'); console.warn('b'); ({ n: [1, 2] })")
        later = session.repl("typeof globalThis.kept")
    assert (run.status, run.ok, run.value, run.preview) == (
        "ok",
        True,
        {"n": [1, 2]},
        "{ n: [ 1, 2 ] }",
    )
    assert (run.console, run.output) == (["a", "b"], "a\nb\n")
    assert [event.seq for event in run.events] == [1, 2, 3, 4]
    assert later.value == "undefined"


def test_a_javascript_exception_is_data_not_an_error(client: Client, tmp_path: Path) -> None:
    with client.session(f"t-{uuid.uuid4()}", tmp_path) as session:
        run = session.repl("throw new TypeError('nope')")
    assert (run.status, run.ok, run.value) == ("error", False, None)
    assert run.exception is not None and "TypeError: nope" in run.exception["message"]


def test_a_limit_is_data_in_a_run_and_an_error_to_a_waiting_request(
    client: Client, tmp_path: Path
) -> None:
    template = client.create_template(f"t-{uuid.uuid4()}")
    client.update_settings(template.id, limits=Limits(wall_ms=200))
    with client.session(template.id, tmp_path) as session:
        run = session.repl("while (true) {}")
        with pytest.raises(LimitExceeded) as caught:
            client.repl(session.id, "while (true) {}")
    assert run.status == "timeout" and run.error is not None
    assert run.error["code"] == "EXECUTION_TIMEOUT"
    assert (caught.value.status, caught.value.code) == (422, "EXECUTION_TIMEOUT")
    assert caught.value.details["limit"] == "wall_ms"


Call = Callable[[Client], object]


@pytest.mark.parametrize(
    ("call", "family", "status", "code"),
    [
        (lambda c: c.get_session(str(uuid.uuid4())), NotFound, 404, "SESSION_NOT_FOUND"),
        (lambda c: c.get_execution("not-a-uuid"), InvalidRequest, 400, "VALIDATION_ERROR"),
        (lambda c: c.template_id("no such name"), NotFound, 404, "TEMPLATE_NOT_FOUND"),
        (lambda c: c.list_sessions("asleep"), InvalidRequest, 400, "VALIDATION_ERROR"),
    ],
)
def test_each_refusal_is_an_api_error_of_its_family_with_its_code(
    client: Client, call: Call, family: type[ApiError], status: int, code: str
) -> None:
    with pytest.raises(family) as caught:
        call(client)
    assert (caught.value.status, caught.value.code) == (status, code)
    assert caught.value.message and str(caught.value).endswith(f"({code})")


def test_a_refused_module_and_a_taken_name(client: Client) -> None:
    template = client.create_template(f"t-{uuid.uuid4()}")
    with pytest.raises(Unprocessable) as refused:
        client.add_module(template.id, "math")
    assert refused.value.code == "MODULE_NOT_ALLOWED"
    with pytest.raises(Conflict) as taken:
        client.create_template(template.name)
    assert taken.value.code == "TEMPLATE_NAME_TAKEN"


def test_a_busy_session_is_a_conflict(
    client: Client, gated_template: str, tmp_path: Path, gate: Path
) -> None:
    with client.session(gated_template, tmp_path) as session:
        running = session.repl(TICKS, wait=False)
        with pytest.raises(Conflict) as caught:
            session.repl("1")
        gate.touch()
        assert running.wait().ok
    assert caught.value.code == "SESSION_BUSY"


def test_a_daemon_not_there_is_unreachable() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with Client(url, "token") as client, pytest.raises(DaemonUnreachable) as caught:
        client.health()
    assert url in str(caught.value) and "vmctl up" in str(caught.value)


# -- the token ------------------------------------------------------------------------------


def test_the_token_comes_from_the_environment(
    daemon: Daemon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert daemon.token is not None
    monkeypatch.setenv("VMCTL_HOME", str(tmp_path))  # no token file there
    monkeypatch.setenv("VMCTL_AUTH_TOKEN", daemon.token)
    with Client(daemon.url) as client:
        assert isinstance(client.list_templates(), list)


def test_the_token_comes_from_the_home_file(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VMCTL_HOME", str(daemon.home))
    monkeypatch.delenv("VMCTL_AUTH_TOKEN", raising=False)
    with Client(daemon.url) as client:
        assert isinstance(client.list_templates(), list)


def test_the_url_comes_from_the_environment(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VMCTL_URL", daemon.url)
    with Client(token=daemon.token) as client:
        assert client.base_url == daemon.url
        assert client.health().status == "ok"


def test_without_the_token_it_is_unauthorized(
    daemon: Daemon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VMCTL_HOME", str(tmp_path))
    monkeypatch.delenv("VMCTL_AUTH_TOKEN", raising=False)
    with Client(daemon.url) as client, pytest.raises(Unauthorized) as caught:
        client.list_templates()
    assert (caught.value.status, caught.value.code) == (401, "UNAUTHORIZED")


# -- the session context manager ------------------------------------------------------------


class Boom(Exception):
    pass


def test_the_session_is_closed_when_the_block_raises(client: Client, tmp_path: Path) -> None:
    with pytest.raises(Boom), client.session(f"t-{uuid.uuid4()}", tmp_path) as session:
        assert session.repl("globalThis.x = 1").ok
        raise Boom
    assert client.get_session(session.id).status == "closed"


def test_a_template_name_no_template_has_is_created_and_kept(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"made-{uuid.uuid4()}"
    monkeypatch.chdir(tmp_path)
    with client.session(template=name) as first:
        assert first.record.worktree_path == str(tmp_path)  # the current directory
    with client.session(template=name) as second:
        assert second.record.vm_id == first.record.vm_id
    assert [t.name for t in client.list_templates()].count(name) == 1
    assert client.get_session(second.id).status == "closed"


def test_run_file_gets_its_args_and_env(client: Client, tmp_path: Path) -> None:
    (tmp_path / "main.js").write_text("console.log(__ENV__.who); __ARGS__.n * 2")
    with client.session(f"t-{uuid.uuid4()}", tmp_path) as session:
        run = session.run_file("main.js", args={"n": 21}, env={"who": "me"})
    assert (run.value, run.console) == (42, ["me"])
