"""Running the ``vmctl`` command in-process with click's CliRunner, or as a process."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Protocol

from click.testing import CliRunner, Result

from vmctl.cli.main import cli


class Vmctl(Protocol):
    """Run ``vmctl ARGS`` against the test daemon and return click's Result."""

    def __call__(self, *args: str, input: str | None = None) -> Result: ...


def invoke(args: list[str], env: Mapping[str, str | None], input: str | None = None) -> Result:
    """``vmctl ARGS`` with plain output and no VMCTL_URL from the outer environment.

    catch_exceptions=False lets a bug's traceback reach pytest instead of hiding
    in ``result.exception``.
    """
    full_env = {"NO_COLOR": "1", "VMCTL_URL": None, "VMCTL_AUTH_TOKEN": None, **env}
    return CliRunner().invoke(cli, args, input=input, env=full_env, catch_exceptions=False)


# ``vmctl`` as a process of its own, for what CliRunner cannot do: receive a signal. SIGINT
# raises KeyboardInterrupt in the CLI even if the test runner was started with it ignored
# (a child inherits SIG_IGN, and Python then installs no handler).
PROCESS_ARGV = (
    sys.executable,
    "-c",
    "import signal; signal.signal(signal.SIGINT, signal.default_int_handler);"
    " from vmctl.cli.main import main; main()",
)
LINE_TIMEOUT = 20.0
EXIT_TIMEOUT = 30.0


class VmctlProcess:
    """A running ``vmctl ARGS``; two threads collect its stdout and stderr lines as they come."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str]) -> None:
        full_env = {**os.environ, "NO_COLOR": "1", **env}
        full_env.pop("VMCTL_AUTH_TOKEN", None)
        self.proc = subprocess.Popen(
            [*PROCESS_ARGV, *args],
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(name, stream))
            for name, stream in (("stdout", self.proc.stdout), ("stderr", self.proc.stderr))
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, name: str, stream: IO[str] | None) -> None:
        assert stream is not None
        with stream:
            for line in stream:
                with self._changed:
                    self.lines[name].append(line.rstrip("\n"))
                    self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for_line(self, text: str, stream: str = "stdout") -> None:
        """Until a line of ``stream`` contains ``text`` (bounded)."""
        with self._changed:
            found = self._changed.wait_for(
                lambda: (
                    any(text in line for line in self.lines[stream]) or self.proc.poll() is not None
                ),
                LINE_TIMEOUT,
            )
            if not any(text in line for line in self.lines[stream]):
                raise AssertionError(f"no {text!r} on {stream} ({found=}): {self.lines}")

    def interrupt(self) -> None:
        self.proc.send_signal(signal.SIGINT)

    def finish(self) -> tuple[int, list[str], list[str]]:
        """Wait (bounded) for the exit: its code, stdout lines and stderr lines."""
        code = self.proc.wait(EXIT_TIMEOUT)
        for reader in self._readers:
            reader.join(EXIT_TIMEOUT)
        return code, self.lines["stdout"], self.lines["stderr"]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(EXIT_TIMEOUT)
        for reader in self._readers:
            reader.join(EXIT_TIMEOUT)


@contextlib.contextmanager
def vmctl_process(daemon_url: str, home: str, *args: str) -> Iterator[VmctlProcess]:
    """``vmctl --server-url URL ARGS`` with ``home``'s token; killed and reaped however the
    block ends."""
    process = VmctlProcess(["--server-url", daemon_url, *args], {"VMCTL_HOME": home})
    try:
        yield process
    finally:
        process.kill()
