"""How a worker process comes to be: forked by the fork server, or spawned.

The :class:`Launcher` is the one seam between a worker's process (process.py)
and the two ways to start one. A built-in quickjs worker is forked by the fork
server (forkserver.py) when there is one and it is up, in a few milliseconds;
every other worker, and every worker when the fork server is gone, is spawned
with ``subprocess_exec`` and the ``preexec_fn`` of spawn.py. Either way the
process's pipes and exit reach the same ``asyncio.SubprocessProtocol``.

The launcher owns the fork server: :meth:`Launcher.start` starts it (it imports
while the daemon does the rest of its start), :meth:`Launcher.aclose` stops it.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys

from vmctl.protocol.jail import JailSpec, encode_jail
from vmctl.supervisor.metrics import Metrics
from vmctl.supervisor.workers.forkserver import ForkServer
from vmctl.supervisor.workers.sandboxing import SandboxPolicy
from vmctl.supervisor.workers.spawn import SpawnSpec, child_setup, worker_env

logger = logging.getLogger(__name__)


class Launcher:
    """Starts workers; with a ``forkserver``, forks the ones it serves; with a ``sandbox``
    policy, jails each one (without, as in handle and fork-server tests, none is). Each
    start is counted in ``metrics`` (without, in a registry nobody reads)."""

    def __init__(
        self,
        forkserver: ForkServer | None = None,
        sandbox: SandboxPolicy | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._forkserver = forkserver
        self._sandbox = sandbox
        self._starts = (metrics or Metrics()).worker_starts

    @property
    def sandbox(self) -> SandboxPolicy | None:
        return self._sandbox

    async def start(self) -> None:
        """Start the fork server, if there is one (it never raises: it is then gone)."""
        if self._forkserver is not None:
            await self._forkserver.start()

    async def wait_ready(self) -> bool:
        """Wait until the fork server is ready; False when there is none or it failed."""
        return self._forkserver is not None and await self._forkserver.wait_ready()

    async def aclose(self) -> None:
        if self._forkserver is not None:
            await self._forkserver.aclose()
            logger.info("fork server closed")

    def forks(self, spec: SpawnSpec) -> bool:
        """Whether ``spec``'s worker is to be forked (the fork server is up and serves it)."""
        return self._forkserver is not None and self._forkserver.serves(spec)

    def forkserver_alive(self) -> bool:
        return self._forkserver is not None and self._forkserver.alive

    async def launch(
        self, spec: SpawnSpec, protocol: asyncio.SubprocessProtocol, *, fork: bool
    ) -> JailSpec:
        """Start ``spec``'s worker, its pipes and exit going to ``protocol``; return its jail.

        Raises ``OSError`` or ``SubprocessError`` if the spawn fails,
        ``ForkServerError`` if the fork server cannot fork it, and ``SandboxRefused``
        if ``--sandbox strict`` refuses it.
        """
        jail = await self._jail_for(spec, fork=fork)
        if fork:
            assert self._forkserver is not None
            await self._forkserver.fork(spec, protocol, jail)
            self._starts.labels("fork").inc()
            return jail
        argv = spec.argv
        if jail.layers:
            argv = (sys.executable, "-m", "vmctl.sandbox.run", encode_jail(jail), "--", *argv)
        await asyncio.get_running_loop().subprocess_exec(
            lambda: protocol,
            *argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=spec.cwd,
            env=worker_env(spec.cwd, spec.env),
            start_new_session=True,  # its own session and group: killpg reaches all of it
            preexec_fn=child_setup(spec.mem_mb),
        )
        self._starts.labels("spawn").inc()
        return jail

    def jail_for_here(self, spec: SpawnSpec) -> JailSpec:
        """The jail :meth:`launch` would give ``spec``'s worker started now (``SandboxRefused``
        if ``--sandbox strict`` would refuse it): what a worker started earlier must match
        to stand in for it (the warm pool's check at a claim). Sync: it stats paths, so it
        runs off the loop, with the claim's other checks."""
        if self._sandbox is None:
            return JailSpec(layers=(), worktree=spec.cwd)
        netns = self._forkserver is not None and self._forkserver.netns
        return self._sandbox.jail_for_here(spec, forked=self.forks(spec), forkserver_netns=netns)

    async def _jail_for(self, spec: SpawnSpec, *, fork: bool) -> JailSpec:
        if self._sandbox is None:
            return JailSpec(layers=(), worktree=spec.cwd)
        netns = self._forkserver is not None and self._forkserver.netns
        return await self._sandbox.jail_for(spec, forked=fork, forkserver_netns=netns)


SPAWN_ONLY = Launcher()  # what tests and one-off workers use: no fork server
