"""How the CLI finds the token (``--token``, ``$VMCTL_AUTH_TOKEN``, ``$VMCTL_HOME/token``),
and the access options of ``vmctl up``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from click.testing import Result

from cli.runner import invoke
from real_daemon import Daemon, free_port
from vmctl.cli.daemon import stop
from vmctl.cli.daemon_record import read_record


def vmctl_away(daemon: Daemon, home: Path, *args: str, token_env: str | None = None) -> Result:
    """``vmctl`` against ``daemon`` with a VMCTL_HOME that holds no token."""
    env = {"VMCTL_HOME": str(home), "VMCTL_AUTH_TOKEN": token_env}
    return invoke(["--server-url", daemon.url, *args], env)


def test_the_token_file_of_the_home_is_found(daemon: Daemon) -> None:
    result = invoke(
        ["--server-url", daemon.url, "template", "list"], {"VMCTL_HOME": str(daemon.home)}
    )
    assert result.exit_code == 0, result.output


def test_without_the_token_the_error_says_where_it_is(daemon: Daemon, tmp_path: Path) -> None:
    result = vmctl_away(daemon, tmp_path, "template", "list")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Missing or wrong bearer token (UNAUTHORIZED)")
    assert str(tmp_path / "token") in result.stderr and "--token" in result.stderr


def test_token_option_then_environment(daemon: Daemon, tmp_path: Path) -> None:
    assert daemon.token is not None
    given = vmctl_away(daemon, tmp_path, "--token", daemon.token, "template", "list")
    assert given.exit_code == 0, given.output
    from_env = vmctl_away(daemon, tmp_path, "template", "list", token_env=daemon.token)
    assert from_env.exit_code == 0, from_env.output
    option_wins = vmctl_away(
        daemon, tmp_path, "--token", daemon.token, "template", "list", token_env="wrong"
    )
    assert option_wins.exit_code == 0, option_wins.output
    wrong_option = vmctl_away(
        daemon, tmp_path, "--token", "wrong", "template", "list", token_env=daemon.token
    )
    assert wrong_option.exit_code == 1 and "(UNAUTHORIZED)" in wrong_option.stderr


def test_the_environment_wins_over_the_file(daemon: Daemon) -> None:
    env = {"VMCTL_HOME": str(daemon.home), "VMCTL_AUTH_TOKEN": "wrong"}
    result = invoke(["--server-url", daemon.url, "template", "list"], env)
    assert result.exit_code == 1 and "(UNAUTHORIZED)" in result.stderr


def test_a_token_that_cannot_be_sent_is_a_usage_error(daemon: Daemon, tmp_path: Path) -> None:
    result = vmctl_away(daemon, tmp_path, "--token", "two words", "template", "list")
    assert result.exit_code == 2
    assert "printable ASCII without spaces" in result.stderr


# -- vmctl up ---------------------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A VMCTL_HOME whose recorded daemon, if a test left one, is stopped afterwards."""
    home = tmp_path / "home"
    yield home
    record = read_record(home)
    if record is not None and psutil.pid_exists(record.pid):
        stop(record.pid)


def vmctl_in(home: Path, *args: str) -> Result:
    return invoke(list(args), {"VMCTL_HOME": str(home)})


@pytest.mark.parametrize("listen", ["0.0.0.0:{port}", "[::]:{port}", "example.org:{port}"])
def test_up_no_auth_is_refused_unless_on_loopback(home: Path, listen: str) -> None:
    address = listen.format(port=free_port())
    result = vmctl_in(home, "up", "--detach", "--no-auth", "--listen", address)
    assert result.exit_code == 2
    assert f"--no-auth is refused with --listen {address}" in result.stderr
    assert not home.exists()  # refused before anything was made or started


@pytest.mark.parametrize(
    "option",
    [
        ["--sandbox", "sometimes"],
        ["--worker-user", "two words"],
        ["--allow-host", "a host:80"],
        ["--allow-origin", "ftp://x"],
        ["--worktree-root", "/no/such/dir"],
        ["--retain", "3w"],
    ],
)
def test_up_refuses_a_bad_access_option(home: Path, option: list[str]) -> None:
    result = vmctl_in(home, "up", "--detach", *option)
    assert result.exit_code == 2, result.output
    assert option[0] in result.stderr


def test_up_passes_the_access_options_and_the_token_through(home: Path, tmp_path: Path) -> None:
    port = free_port()
    options = [
        "--allow-host", "vmctl.example",
        "--allow-origin", "https://ui.example",
        "--worktree-root", str(tmp_path),
        "--sandbox", "off",
        "--worker-user", "65534",
    ]  # fmt: skip
    started = vmctl_in(home, "--token", "given-token", "up", "--detach",
                       "--listen", f"127.0.0.1:{port}", *options)  # fmt: skip
    assert started.exit_code == 0, started.output
    try:
        record = read_record(home)
        assert record is not None
        cmdline = psutil.Process(record.pid).cmdline()
        assert cmdline[-len(options) :] == options
        assert "given-token" not in " ".join(cmdline)  # in its environment: argv is public
        headers = {"Authorization": "Bearer given-token", "Host": "vmctl.example"}
        answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/templates", headers=headers)
        assert answer.status_code == 200
        assert not (home / "token").exists()
        assert oct(os.stat(home).st_mode & 0o777) == oct(0o700)
        assert oct(os.stat(home / "daemon.log").st_mode & 0o777) == oct(0o600)
        assert oct(os.stat(home / "daemon.json").st_mode & 0o777) == oct(0o600)
    finally:
        assert vmctl_in(home, "down").exit_code == 0


def test_up_no_auth_on_loopback_serves_without_the_token(home: Path) -> None:
    port = free_port()
    started = vmctl_in(home, "up", "--detach", "--no-auth", "--listen", f"127.0.0.1:{port}")
    assert started.exit_code == 0, started.output
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/templates")
        assert answer.status_code == 200
    finally:
        assert vmctl_in(home, "down").exit_code == 0
