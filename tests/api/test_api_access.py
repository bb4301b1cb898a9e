"""Who may drive the daemon: the token, the Host and Origin checks, JSON bodies only.

api-contract.md, "v1.1 additions" → "Access"; docs/api.md, "Access".
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from real_daemon import (
    Daemon,
    error_code,
    free_port,
    running_daemon,
    session_body,
    wait_until,
)
from vmctl.api_token import TOKEN_ENV, read_token
from vmctl.daemon_options import default_worktree_roots

SUBPROCESS_TIMEOUT = 20.0


def bare(daemon: Daemon, **headers: str) -> httpx.Client:
    """A client that sends no token (and whatever ``headers`` say)."""
    return httpx.Client(base_url=daemon.url + "/api/v1", timeout=30.0, headers=headers)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- the token ------------------------------------------------------------------------


def test_every_route_but_get_health_needs_the_token(daemon: Daemon) -> None:
    with bare(daemon) as client:
        assert client.get("/health").status_code == 200
        for method, path in [
            ("GET", "/templates"),
            ("POST", "/templates"),
            ("GET", "/runtime/summary"),
            ("GET", "/sessions/00000000-0000-4000-8000-000000000000"),
            ("POST", "/health"),
            ("GET", "/no-such-route"),
        ]:
            response = client.request(method, path)
            assert response.status_code == 401, (method, path)
            assert error_code(response) == "UNAUTHORIZED"
        for wrong in ["Bearer wrong", daemon.token or "", f"bearer {daemon.token}", "Bearer"]:
            response = client.get("/templates", headers={"Authorization": wrong})
            assert response.status_code == 401, wrong
    with daemon.client() as client:
        assert client.get("/templates").status_code == 200


def test_the_token_file_is_made_random_and_private(daemon: Daemon) -> None:
    token_file = daemon.home / "token"
    assert daemon.token == read_token(str(daemon.home))
    assert daemon.token is not None and len(daemon.token) >= 43  # 32 bytes, URL-safe base64
    assert mode(token_file) == 0o600
    assert mode(daemon.home) == 0o700
    assert mode(daemon.db_path) == 0o600


def test_files_from_before_are_made_private_and_the_token_kept(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "sessions" / "old").mkdir(parents=True)
    home.chmod(0o755)
    (home / "token").write_text("kept-token\n")
    (home / "token").chmod(0o644)
    (home / "vmctl.db").touch(0o644)  # an empty file is a new store to SQLite
    (home / "sessions" / "old" / "worker.log").write_text("old log\n")
    (home / "sessions" / "old" / "worker.log").chmod(0o644)
    (home / "sessions" / "old").chmod(0o755)
    with running_daemon(home) as running:
        assert running.token == "kept-token"
        with running.client() as client:
            assert client.get("/templates").status_code == 200
        assert mode(home) == 0o700
        assert mode(home / "token") == 0o600
        assert mode(home / "vmctl.db") == 0o600
        assert mode(home / "sessions" / "old") == 0o700
        assert mode(home / "sessions" / "old" / "worker.log") == 0o600


def test_a_session_leaves_only_private_files(
    daemon: Daemon, make_session: Callable[..., dict[str, Any]]
) -> None:
    session = make_session()
    log_dir = daemon.home / "sessions" / session["id"]
    assert mode(log_dir) == 0o700
    assert mode(log_dir / "worker.log") == 0o600


def test_the_environment_token_wins_over_the_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "token").write_text("file-token\n")
    with running_daemon(home, env={TOKEN_ENV: "env-token"}) as running:
        with bare(running, Authorization="Bearer file-token") as client:
            assert client.get("/templates").status_code == 401
        with bare(running, Authorization="Bearer env-token") as client:
            assert client.get("/templates").status_code == 200
    assert (home / "token").read_text() == "file-token\n"


def test_no_auth_serves_without_a_token_on_loopback(tmp_path: Path) -> None:
    with running_daemon(tmp_path / "home", ["--no-auth"]) as running, bare(running) as client:
        assert client.get("/templates").status_code == 200
    assert not (tmp_path / "home" / "token").exists()


@pytest.mark.parametrize("host", ["0.0.0.0", "[::]", "example.org"])
def test_no_auth_is_refused_unless_listening_on_loopback(tmp_path: Path, host: str) -> None:
    argv = [sys.executable, "-m", "vmctl.supervisor", "--no-auth"]
    argv += ["--listen", f"{host}:{free_port()}", "--db", str(tmp_path / "vmctl.db")]
    env = {**os.environ, "VMCTL_HOME": str(tmp_path / "home")}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    assert done.returncode == 2
    assert "--no-auth is refused" in done.stderr and "always needs the token" in done.stderr


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--sandbox", "sometimes"),
        ("--worker-user", "two words"),
        ("--allow-host", "a host:80"),
        ("--allow-origin", "null"),
        ("--worktree-root", "/no/such/dir"),
    ],
)
def test_the_daemon_refuses_a_bad_access_option(tmp_path: Path, option: str, value: str) -> None:
    argv = [sys.executable, "-m", "vmctl.supervisor", option, value]
    env = {**os.environ, "VMCTL_HOME": str(tmp_path / "home")}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    assert done.returncode == 2 and option in done.stderr, done.stderr
    assert not (tmp_path / "home").exists()


def test_an_unusable_token_file_stops_the_start_with_a_reason(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "token").write_text("two words\n")
    argv = [sys.executable, "-m", "vmctl.supervisor", "--listen", f"127.0.0.1:{free_port()}"]
    env = {**os.environ, "VMCTL_HOME": str(home)}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    assert done.returncode == 2
    assert "printable ASCII without spaces" in done.stderr


# -- Host and Origin ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/health", "/templates"])
@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:{port}", "127.0.0.1.evil.example", "0.0.0.0:{port}"]
)
def test_a_host_the_daemon_does_not_answer_is_forbidden(
    daemon: Daemon, host: str, path: str
) -> None:
    with daemon.client() as client:
        response = client.get(path, headers={"Host": host.format(port=daemon.port)})
    assert response.status_code == 403 and error_code(response) == "FORBIDDEN"
    assert "--allow-host" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "host", ["localhost", "LOCALHOST:{port}", "127.0.0.1:{port}", "127.8.9.10", "[::1]:{port}"]
)
def test_loopback_hosts_are_answered(daemon: Daemon, host: str) -> None:
    with daemon.client() as client:
        response = client.get("/templates", headers={"Host": host.format(port=daemon.port)})
    assert response.status_code == 200


def test_a_request_without_a_host_is_forbidden(daemon: Daemon) -> None:
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as sock:
        sock.sendall(b"GET /api/v1/health HTTP/1.0\r\n\r\n")
        answer = sock.makefile("rb").read()
    assert answer.startswith(b"HTTP/1.1 403 ") and b'"FORBIDDEN"' in answer


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "null",
        "http://127.0.0.1:{other}",  # another local server's pages
        "https://127.0.0.1:{port}",
        "http://localhost:{port}/x",
        "http://evil.example:{port}",
    ],
)
def test_a_cross_site_origin_is_forbidden(daemon: Daemon, origin: str) -> None:
    value = origin.format(port=daemon.port, other=daemon.port + 1)
    with daemon.client() as client:
        for response in [
            client.get("/health", headers={"Origin": value}),
            client.post("/templates", json={"name": "x"}, headers={"Origin": value}),
        ]:
            assert response.status_code == 403 and error_code(response) == "FORBIDDEN"
            assert "--allow-origin" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "origin", ["http://127.0.0.1:{port}", "http://localhost:{port}", "http://[::1]:{port}"]
)
def test_the_daemons_own_origin_is_answered(daemon: Daemon, origin: str) -> None:
    with daemon.client() as client:
        response = client.get("/templates", headers={"Origin": origin.format(port=daemon.port)})
    assert response.status_code == 200


def test_allow_host_and_allow_origin_add_to_what_is_answered(tmp_path: Path) -> None:
    args = ["--allow-host", "vmctl.example", "--allow-origin", "https://ui.example:8443"]
    with running_daemon(tmp_path / "home", args) as running, running.client() as client:
        port = running.port
        assert client.get("/templates", headers={"Host": f"VMCTL.example:{port}"}).is_success
        assert client.get("/templates", headers={"Host": "other.example"}).status_code == 403
        for origin in ["https://ui.example:8443", f"http://vmctl.example:{port}"]:
            assert client.get("/templates", headers={"Origin": origin}).is_success, origin
        for origin in ["https://ui.example", "http://ui.example:8443"]:
            assert client.get("/templates", headers={"Origin": origin}).status_code == 403


def test_the_host_check_comes_before_auth(daemon: Daemon) -> None:
    with bare(daemon, Host="evil.example") as client:
        assert client.get("/templates").status_code == 403


# -- JSON bodies only -----------------------------------------------------------------


NOT_JSON = [
    None,
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/jsonx",
]


@pytest.mark.parametrize("content_type", NOT_JSON)
def test_a_body_that_is_not_json_is_unsupported(daemon: Daemon, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    with daemon.client() as client:
        for method, path in [("POST", "/templates"), ("PUT", "/templates/x/settings")]:
            response = client.request(method, path, content=b'{"name": "a"}', headers=headers)
            assert response.status_code == 415, (method, content_type)
            assert error_code(response) == "UNSUPPORTED_MEDIA_TYPE"


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"]
)
def test_json_bodies_are_taken_with_parameters_and_any_case(
    daemon: Daemon, content_type: str
) -> None:
    with daemon.client() as client:
        response = client.post(
            "/templates", content=b'{"name": "typed"}', headers={"Content-Type": content_type}
        )
        assert response.status_code in (201, 409), response.text


def test_a_bodiless_post_needs_no_content_type(daemon: Daemon) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    with daemon.client() as client:
        response = client.post(f"/sessions/{missing}/close")
    assert error_code(response) == "SESSION_NOT_FOUND"


def test_auth_comes_before_the_media_type(daemon: Daemon) -> None:
    with bare(daemon) as client:
        response = client.post("/templates", content=b"x", headers={"Content-Type": "text/plain"})
    assert response.status_code == 401


# -- worktree roots -------------------------------------------------------------------


@pytest.fixture
def rooted(tmp_path: Path) -> Iterator[tuple[Daemon, Path]]:
    """A daemon whose one worktree root is ``tmp_path/root``."""
    root = tmp_path / "root"
    root.mkdir()
    with running_daemon(tmp_path / "home", ["--worktree-root", str(root)]) as running:
        yield running, root


def _template(client: httpx.Client) -> str:
    template_id: str = client.post("/templates", json={"name": "rooted"}).json()["id"]
    return template_id


def test_a_worktree_outside_the_roots_is_an_invalid_path(
    rooted: tuple[Daemon, Path], tmp_path: Path
) -> None:
    daemon, root = rooted
    (root / "inside").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "link").symlink_to(outside)
    with daemon.client() as client:
        template_id = _template(client)
        ok = client.post("/sessions", json=session_body(template_id, root / "inside"))
        assert ok.status_code == 201, ok.text
        for tree in [outside, root / "link", root / "inside" / ".." / ".." / "outside"]:
            response = client.post("/sessions", json=session_body(template_id, tree))
            assert response.status_code == 422 and error_code(response) == "INVALID_PATH", tree
            details = response.json()["error"]["details"]
            assert details["roots"] == [str(root.resolve())]
            assert details["path"] == os.path.normpath(tree)
        daemon.close_open_sessions()


@pytest.mark.parametrize("tree", ["/", "/proc", "/proc/self/cwd", "/sys/kernel", "/dev"])
def test_root_proc_sys_and_dev_are_refused_whatever_the_roots(tmp_path: Path, tree: str) -> None:
    with (
        running_daemon(tmp_path / "home", ["--worktree-root", "/"]) as running,
        running.client() as client,
    ):
        response = client.post("/sessions", json=session_body(_template(client), Path(tree)))
    assert response.status_code == 422 and error_code(response) == "INVALID_PATH", response.text
    assert response.json()["error"]["details"]["roots"] == ["/"]


def test_the_default_roots_are_home_and_the_temporary_directory(tmp_path: Path) -> None:
    roots = list(default_worktree_roots())
    with (
        running_daemon(tmp_path / "home", default_roots=True) as running,
        running.client() as client,
    ):
        template_id = _template(client)
        inside = client.post("/sessions", json=session_body(template_id, tmp_path))
        assert inside.status_code == 201, inside.text
        outside = client.post("/sessions", json=session_body(template_id, Path("/etc")))
        assert outside.status_code == 422 and error_code(outside) == "INVALID_PATH"
        assert outside.json()["error"]["details"]["roots"] == roots
        running.close_open_sessions()


def test_restart_checks_the_roots_again(rooted: tuple[Daemon, Path], tmp_path: Path) -> None:
    daemon, root = rooted
    tree = root / "tree"
    tree.mkdir()
    with daemon.client() as client:
        session = client.post("/sessions", json=session_body(_template(client), tree)).json()
        tree.rename(root / "moved")
        tree.symlink_to(tmp_path)  # the same path now leads out of the roots
        response = client.post(f"/sessions/{session['id']}/restart")
        assert response.status_code == 422 and error_code(response) == "INVALID_PATH"
        # Refused before the old worker was touched: the session runs on.
        assert client.get(f"/sessions/{session['id']}").json()["status"] == "ready"
        daemon.close_open_sessions()


# -- the log ----------------------------------------------------------------------------


def test_every_logged_request_field_is_escaped(daemon: Daemon) -> None:
    marker = uuid.uuid4().hex
    forged = "2026-01-01 00:00:00,000 INFO vmctl.http: forged GET / 200"
    raw_path = f"/api/v1/{marker}%0A{quote(forged)}%1B%5B31m%C3%A9%25%00"
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as sock:
        sock.sendall(f"GET {raw_path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
        assert sock.makefile("rb").readline().startswith(b"HTTP/1.1 401 ")
    wait_until(lambda: marker in daemon.log())
    line = next(line for line in daemon.log().splitlines() if marker in line)
    assert f" GET /api/v1/{marker}%0A2026-01-01%2000:00:00,000%20INFO" in line
    assert line.endswith("ms") and "%1B[31m%C3%A9%25%00 401 " in line
    assert not any(line.startswith("2026-01-01") for line in daemon.log().splitlines())
    assert "\x1b" not in daemon.log()
