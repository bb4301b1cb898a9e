"""What every request shares: routing errors, request ids, body size, auth, capacity."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from real_daemon import JSON_BODY, error_code, running_daemon, session_body, wait_until


def test_health(api: httpx.Client) -> None:
    response = api.get("/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/nothing", "/templates/x/y/z", "/executions/a/b/c"])
def test_unknown_route_is_not_found_in_the_envelope(api: httpx.Client, path: str) -> None:
    response = api.get(path)
    assert response.status_code == 404 and error_code(response) == "NOT_FOUND"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/health"),
        ("PUT", "/templates"),
        ("GET", "/executions/repl"),
        ("PATCH", "/sessions"),
    ],
)
def test_wrong_method_is_405_in_the_envelope(api: httpx.Client, method: str, path: str) -> None:
    response = api.request(method, path)
    assert response.status_code == 405 and error_code(response) == "METHOD_NOT_ALLOWED"


def test_request_id_is_echoed_or_made(api: httpx.Client) -> None:
    mine = api.get("/health", headers={"X-Request-Id": "trace-42"})
    assert mine.headers["x-request-id"] == "trace-42"
    made = api.get("/health")
    assert len(made.headers["x-request-id"]) >= 16
    too_long = api.get("/health", headers={"X-Request-Id": "x" * 129})
    assert too_long.headers["x-request-id"] != "x" * 129
    assert api.get("/nothing").headers["x-request-id"]


def test_answers_do_not_name_the_server(api: httpx.Client) -> None:
    for response in (api.get("/health"), api.get("/nothing"), api.post("/templates", json={})):
        assert "server" not in response.headers, response.headers


def test_bodies_over_one_mib_are_refused(api: httpx.Client) -> None:
    big = b'{"name": "' + b"a" * (1024 * 1024) + b'"}'
    response = api.post("/templates", content=big, headers=JSON_BODY)
    assert response.status_code == 413 and error_code(response) == "PAYLOAD_TOO_LARGE"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"name": "'
        for _ in range(20):
            yield b"b" * 65536
        yield b'"}'

    streamed = api.post("/templates", content=chunks(), headers=JSON_BODY)
    assert streamed.status_code == 413 and error_code(streamed) == "PAYLOAD_TOO_LARGE"


def test_deeply_nested_bodies_are_invalid_requests(api: httpx.Client) -> None:
    nested = b"[" * 200_000 + b"]" * 200_000
    body = b'{"session_id": "' + str(uuid.uuid4()).encode() + b'", "path": "a.js", "args": {"a": '
    response = api.post("/executions/run-file", content=body + nested + b"}}", headers=JSON_BODY)
    assert response.status_code == 400 and error_code(response) == "INVALID_REQUEST"
    assert "nested too deeply" in response.json()["error"]["message"]


def test_errors_never_leak_tracebacks(api: httpx.Client) -> None:
    for response in [
        api.post("/templates", content=b"{bad", headers=JSON_BODY),
        api.get(f"/sessions/{uuid.uuid4()}"),
        api.post("/executions/repl", json={"session_id": str(uuid.uuid4()), "input": "1"}),
    ]:
        assert "Traceback" not in response.text and "sqlite" not in response.text.lower()


def test_capacity_holds_under_concurrent_creates_and_restarts(
    tmp_path: Path, worktree: Path
) -> None:
    with (
        running_daemon(tmp_path / "home", ["--max-sessions", "2"]) as running,
        running.client() as client,
    ):
        template = client.post("/templates", json={"name": "cap"}).json()
        body = session_body(template["id"], worktree)

        def create(_: int) -> httpx.Response:
            with running.client() as own:
                return own.post("/sessions", json=body)

        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(create, range(6)))
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [201, 201, 503, 503, 503, 503]
        assert all(error_code(a) == "CAPACITY_EXCEEDED" for a in answers if a.status_code == 503)
        live = [a.json() for a in answers if a.status_code == 201]

        # A crashed session's restart needs a place too.
        os.kill(live[0]["runtime_meta"]["pid"], signal.SIGKILL)
        wait_until(lambda: client.get(f"/sessions/{live[0]['id']}").json()["status"] == "crashed")
        third = client.post("/sessions", json=body)
        assert third.status_code == 201
        refused = client.post(f"/sessions/{live[0]['id']}/restart")
        assert refused.status_code == 503 and error_code(refused) == "CAPACITY_EXCEEDED"
        client.post(f"/sessions/{third.json()['id']}/close")
        assert client.post(f"/sessions/{live[0]['id']}/restart").json()["status"] == "ready"


def test_empty_lists_are_lists(
    api: httpx.Client, make_template: Callable[..., dict[str, Any]]
) -> None:
    template = make_template()
    for path in ["capabilities", "startup-files", "modules", "libraries"]:
        assert api.get(f"/templates/{template['id']}/{path}").json() == []
