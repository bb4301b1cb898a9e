"""Each jail layer alone, in a forked child: what it stops, and what it leaves working.

tests/api/test_api_jail.py proves the whole jail through a daemon; these say which
layer does what, so a test there can name the layer that stopped an act.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from vmctl.protocol.jail import JailSpec, Layer
from vmctl.sandbox import identity, jail, kernel
from vmctl.sandbox.probe import probe

HOST = probe()
READY = jail.prepare()
Act = Callable[[], object]


def _outcome(act: Act) -> str:
    try:
        act()
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, "?")
    return "ok"


def in_jail(layers: tuple[Layer, ...], worktree: Path, acts: dict[str, Act]) -> dict[str, str]:
    """Fork, apply ``layers`` in the child, try each act there: act -> "ok" or an errno name."""
    if missing := [name for name in layers if not HOST.layer(name).available]:
        pytest.skip(f"this host lacks {missing}")
    spec = JailSpec(
        layers=layers,
        worktree=str(worktree),
        uid=HOST.worker_uid,
        gid=HOST.worker_gid,
        landlock_abi=HOST.landlock_abi,
    )
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        try:
            os.close(read_end)
            os.chdir(worktree)
            if "netns" in layers:
                jail.enter_empty_network()
            jail.apply(spec, READY)
            report = {name: _outcome(act) for name, act in acts.items()}
            os.write(write_end, json.dumps(report).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    result: dict[str, str] = json.loads(data)
    return result


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def read(path: str | Path) -> Act:
    return lambda: Path(path).read_bytes()


def connect(port: int) -> Act:
    def act() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass

    return act


def spawn_thread() -> None:
    thread = threading.Thread(target=lambda: None)
    thread.start()
    thread.join()


def fork_child() -> None:
    pid = os.fork()
    if pid == 0:  # pragma: no cover
        os._exit(0)
    os.waitpid(pid, 0)


def test_landlock_alone_lets_it_read_its_worktree_and_python_and_nothing_else(
    worktree: Path, tmp_path: Path, listener: int
) -> None:
    (worktree / "mine.js").write_text("1")
    secret = tmp_path / "secret.txt"
    secret.write_text("no")
    report = in_jail(
        ("landlock",),
        worktree,
        {
            "read its worktree": read(worktree / "mine.js"),
            "import from the stdlib": lambda: __import__("xml.dom.minidom"),
            "read /etc/shadow": read("/etc/shadow"),
            "read beside its worktree": read(secret),
            "read /proc/1/environ": read("/proc/1/environ"),
            "write in its worktree": lambda: (worktree / "out").write_text("x"),
            "write in /tmp": lambda: Path("/tmp/vmctl-landlock-test").write_text("x"),
            "connect over TCP": connect(listener),
        },
    )
    assert report == {
        "read its worktree": "ok",
        "import from the stdlib": "ok",
        "read /etc/shadow": "EACCES",
        "read beside its worktree": "EACCES",
        "read /proc/1/environ": "EACCES",
        "write in its worktree": "EACCES",
        "write in /tmp": "EACCES",
        # ABI 4 and later handle TCP connect with no rule: denied.
        "connect over TCP": "EACCES" if HOST.landlock_abi >= 4 else "ok",
    }


def test_seccomp_alone_stops_processes_sockets_and_foreign_signals(worktree: Path) -> None:
    parent = os.getpid()
    report = in_jail(
        ("seccomp",),
        worktree,
        {
            "start a thread": spawn_thread,
            "signal itself": lambda: os.kill(os.getpid(), 0),
            "a unix socket pair": lambda: socket.socketpair()[0].close(),
            "fork": fork_child,
            "execve": lambda: os.execv("/bin/true", ["true"]),
            "open a TCP socket": lambda: socket.socket().close(),
            "open a unix socket": lambda: socket.socket(socket.AF_UNIX).close(),
            "signal its parent": lambda: os.kill(parent, 0),
            "unshare": lambda: kernel.unshare(kernel.CLONE_NEWNET),
        },
    )
    assert report == {
        "start a thread": "ok",
        "signal itself": "ok",
        "a unix socket pair": "ok",
        "fork": "EPERM",
        "execve": "EPERM",
        "open a TCP socket": "EPERM",
        "open a unix socket": "EPERM",
        "signal its parent": "EPERM",
        "unshare": "EPERM",
    }


def test_a_network_namespace_alone_has_no_route_to_the_host(worktree: Path, listener: int) -> None:
    report = in_jail(("netns",), worktree, {"connect to a host port": connect(listener)})
    assert report["connect to a host port"] in ("ENETUNREACH", "ECONNREFUSED")


def test_the_uid_layer_alone_drops_to_the_worker_user(worktree: Path, tmp_path: Path) -> None:
    if not HOST.root:
        pytest.skip("only a root daemon drops to the worker user")
    os.chmod(worktree, 0o755)
    private = tmp_path / "private.txt"
    private.write_text("root's")
    os.chmod(private, 0o600)
    report = in_jail(
        ("uid", "capabilities"),
        worktree,
        {
            "read a root-only file": read(private),
            "signal init": lambda: os.kill(1, 0),
            "become root again": lambda: os.setuid(0),
        },
    )
    assert report == {
        "read a root-only file": "EACCES",
        "signal init": "EPERM",
        "become root again": "EPERM",
    }


def test_a_worker_user_blocked_by_the_path_is_named_with_the_directory() -> None:
    with tempfile.TemporaryDirectory() as name:
        top = Path(name)
        os.chmod(top, 0o755)
        tree = top / "a" / "b"
        tree.mkdir(parents=True)
        os.chmod(top / "a", 0o700)
        reason = identity.unreadable(str(tree), 65534, 65534)
        assert reason == f"{top / 'a'} (mode 0700) denies uid 65534 search"
        os.chmod(top / "a", 0o755)
        assert identity.unreadable(str(tree), 65534, 65534) is None
        os.chmod(tree, 0o711)  # searchable, not listable
        assert (
            identity.unreadable(str(tree), 65534, 65534)
            == f"{tree} (mode 0711) denies uid 65534 read"
        )
