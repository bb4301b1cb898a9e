"""The web console's doors over plain HTTP: the sign-in, the cookie, what the page may load.

What the page does in a browser is tests/console/test_console_browser.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from real_daemon import Daemon, error_code, running_daemon
from vmctl.supervisor.http.credentials import COOKIE, Token


@contextlib.contextmanager
def _signed_in(daemon: Daemon) -> Iterator[httpx.Client]:
    """A client that went through the page's sign-in, as a browser does: cookie, no header."""
    with httpx.Client(base_url=daemon.url, timeout=30.0) as client:
        answer = client.get("/", params={"token": daemon.token})
        assert answer.status_code == 303 and answer.headers["location"] == "/"
        yield client


def test_the_token_in_the_address_is_traded_for_a_cookie(daemon: Daemon) -> None:
    assert daemon.token is not None
    with httpx.Client(base_url=daemon.url, timeout=30.0) as client:
        answer = client.get("/", params={"token": daemon.token})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/"  # the token leaves the address bar
    assert answer.headers["referrer-policy"] == "no-referrer"
    set_cookie = answer.headers["set-cookie"]
    assert set_cookie.startswith(f"{COOKIE}={Token(daemon.token).cookie};")
    assert daemon.token not in set_cookie  # the cookie is derived from it, not it
    attributes = {part.strip().lower() for part in set_cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= attributes


def test_the_page_needs_the_token_or_the_cookie(daemon: Daemon) -> None:
    with httpx.Client(base_url=daemon.url, timeout=30.0) as client:
        for params in ({}, {"token": "wrong"}, {"token": "é" * 10}):
            locked = client.get("/", params=params)
            assert locked.status_code == 401, params
            assert "vmctl console" in locked.text and "set-cookie" not in locked.headers
        client.cookies.set(COOKIE, "0" * 64)
        assert client.get("/").status_code == 401
        assert client.get("/console/console.js").status_code == 401
        assert client.get("/api/v1/sessions").status_code == 401
    with _signed_in(daemon) as client:
        page = client.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert '<script src="/console/console.js"' in page.text
        # Signed in, the address with the token still drops it; a wrong one is refused.
        again = client.get("/", params={"token": daemon.token})
        assert again.status_code == 303 and again.headers["location"] == "/"
        assert client.get("/", params={"token": "wrong"}).status_code == 401


def test_the_page_may_load_only_the_daemons_own_files(daemon: Daemon) -> None:
    with _signed_in(daemon) as client:
        page = client.get("/")
        script = client.get("/console/console.js")
        style = client.get("/console/console.css")
        unknown = client.get("/console/secret.js")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy and page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert script.status_code == 200 and script.headers["content-type"].startswith(
        "text/javascript"
    )
    assert "textContent" in script.text and "innerHTML" not in script.text
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    assert unknown.status_code == 404 and error_code(unknown) == "NOT_FOUND"


def test_the_cookie_drives_the_api_from_the_daemons_own_origin_only(daemon: Daemon) -> None:
    with _signed_in(daemon) as client:
        listed = client.get("/api/v1/templates")
        assert listed.status_code == 200
        made = client.post(
            "/api/v1/templates", json={"name": "from-the-console"}, headers={"Origin": daemon.url}
        )
        assert made.status_code == 201, made.text
        elsewhere = client.post(
            "/api/v1/templates", json={"name": "x"}, headers={"Origin": "https://evil.example"}
        )
        assert elsewhere.status_code == 403 and error_code(elsewhere) == "FORBIDDEN"
        # A form post (what another site's page can send without asking) is not JSON.
        form = client.post(
            "/api/v1/templates", content=b"name=x", headers={"Content-Type": "text/plain"}
        )
        assert form.status_code == 415
        # A wrong header is not rescued by a good cookie.
        wrong = client.get("/api/v1/templates", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401


def test_without_auth_the_page_is_open(tmp_path: Path) -> None:
    with (
        running_daemon(tmp_path / "home", ["--no-auth"]) as daemon,
        httpx.Client(base_url=daemon.url, timeout=30.0) as client,
    ):
        page = client.get("/")
        assert page.status_code == 200 and "set-cookie" not in page.headers
        assert client.get("/console/console.css").status_code == 200


@pytest.mark.parametrize("path", ["/index.html", "/console/", "/console/../app.py"])
def test_nothing_else_is_served_from_the_console(daemon: Daemon, path: str) -> None:
    with _signed_in(daemon) as client:
        answer = client.get(path)
    assert answer.status_code == 404, path
