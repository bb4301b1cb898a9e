"""Which layers the daemon asks for, per worker: the policy over this host's probe."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

import pytest

from vmctl.sandbox.probe import probe
from vmctl.supervisor.workers.sandboxing import SandboxPolicy, SandboxRefused
from vmctl.supervisor.workers.spawn import SpawnSpec

HOST = probe()
WORKER = (sys.executable, "-m", "vmctl.worker")


def _spec(tree: Path, argv: tuple[str, ...] = WORKER) -> SpawnSpec:
    return SpawnSpec(argv=argv, cwd=str(tree), mem_mb=64)


def _jail(mode: str, spec: SpawnSpec, *, forked: bool) -> tuple[str, ...]:
    policy = SandboxPolicy(mode, HOST)  # type: ignore[arg-type]
    jail = asyncio.run(policy.jail_for(spec, forked=forked, forkserver_netns=forked))
    return jail.layers


def test_auto_gives_every_layer_the_host_has_to_a_forked_worker() -> None:
    with tempfile.TemporaryDirectory() as name:
        os.chmod(name, 0o755)
        layers = _jail("auto", _spec(Path(name)), forked=True)
    expected = [r.name for r in HOST.layers if r.available]
    assert list(layers) == expected


def test_a_command_that_is_not_python_gets_neither_landlock_nor_seccomp(worktree: Path) -> None:
    layers = _jail("auto", _spec(worktree, ("/bin/cat",)), forked=False)
    assert "landlock" not in layers and "seccomp" not in layers
    assert "no_new_privs" in layers or not HOST.layer("no_new_privs").available
    if not HOST.missing():
        with pytest.raises(SandboxRefused, match="is not a Python program the jail can run"):
            _jail("strict", _spec(worktree, ("/bin/cat",)), forked=False)


def test_off_asks_for_nothing(worktree: Path) -> None:
    assert _jail("off", _spec(worktree), forked=True) == ()


def test_a_python_plugin_gets_the_whole_jail_when_spawned(worktree: Path) -> None:
    plugin = (sys.executable, str(Path(__file__).parent / "nothing.py"))
    layers = _jail("auto", _spec(worktree, plugin), forked=False)
    assert "landlock" in layers or not HOST.layer("landlock").available
    assert "seccomp" in layers or not HOST.layer("seccomp").available
