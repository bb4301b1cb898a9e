"""A worker that, once past its handshake, tries every act the jail forbids (docs/security.md).

A REPL snippet is a JSON object of targets: ``daemon_pid``, ``daemon_port``, ``store``,
``home_file``, ``other_worktree_file``, ``sibling_pid``. The value (as JSON) maps each
act to ``{"ok": bool, "errno": "EPERM" | ..., "detail": str}``. It stands for code that
got out of the engine: everything here is what such code could ask the kernel for.
``execve`` goes last: if it were allowed, the worker would be gone, and the test would
see the request fail.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import socket
import sys
from collections.abc import Callable

from vmctl.protocol import (
    PROTOCOL_VERSION,
    ExecRepl,
    Hello,
    Ok,
    Shutdown,
    Value,
    decode_request,
    raw_json,
)
from vmctl.protocol import encode as encode_frame

_PTRACE_ATTACH, _PTRACE_DETACH = 16, 17


def send(frame: Hello | Value | Ok) -> None:
    sys.stdout.buffer.write(encode_frame(frame))
    sys.stdout.buffer.flush()


def attempt(act: Callable[[], object]) -> dict[str, object]:
    try:
        detail = act()
    except OSError as exc:
        name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
        return {"ok": False, "errno": name, "detail": str(exc)}
    return {"ok": True, "errno": None, "detail": repr(detail)}


def read(path: str) -> Callable[[], object]:
    def act() -> bytes:
        with open(path, "rb") as file:
            return file.read(1)

    return act


def write(path: str) -> Callable[[], object]:
    def act() -> str:
        with open(path, "w", encoding="utf-8") as file:
            file.write("out")
        return path

    return act


def connect(port: int) -> Callable[[], object]:
    def act() -> str:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return "connected"

    return act


def udp() -> str:
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()
    return "a UDP socket"


def fork() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def ptrace(pid: int) -> Callable[[], object]:
    libc = ctypes.CDLL(None, use_errno=True)

    def act() -> str:
        if libc.ptrace(_PTRACE_ATTACH, pid, None, None) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
        libc.ptrace(_PTRACE_DETACH, pid, None, None)
        return "attached"

    return act


def execve() -> None:
    os.execv("/bin/true", ["true"])


def try_everything(targets: dict[str, object]) -> dict[str, dict[str, object]]:
    daemon_pid = int(str(targets["daemon_pid"]))
    acts: dict[str, Callable[[], object]] = {
        "read /etc/shadow": read("/etc/shadow"),
        "read the store": read(str(targets["store"])),
        "read the daemon's environ": read(f"/proc/{daemon_pid}/environ"),
        "read a file in $HOME": read(str(targets["home_file"])),
        "read another session's worktree": read(str(targets["other_worktree_file"])),
        "write in /tmp": write(f"/tmp/vmctl-escaped-{os.getpid()}"),
        "write in its worktree": write("escaped.txt"),
        "connect to the daemon's port": connect(int(str(targets["daemon_port"]))),
        "open a UDP socket": udp,
        "fork": fork,
        "signal the daemon": lambda: os.kill(daemon_pid, 0),
        "ptrace a sibling": ptrace(int(str(targets["sibling_pid"]))),
        "execve /bin/true": execve,
    }
    return {name: attempt(act) for name, act in acts.items()}


def main() -> None:
    send(Hello(PROTOCOL_VERSION, os.getpid(), "escape", "0", ("exec_repl",), False))
    for line in sys.stdin.buffer:
        request = decode_request(line)
        if isinstance(request, Shutdown):
            break
        if isinstance(request, ExecRepl):
            report = try_everything(json.loads(request.code))
            text = json.dumps(report)
            send(Value(id=request.id, value_type="object", preview=text, json=raw_json(report)))
            send(Ok(id=request.id, cpu_ms=0.0))


if __name__ == "__main__":
    main()
