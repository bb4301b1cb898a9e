"""Which jail layers each worker gets: what the host offers, under ``--sandbox``.

The host is probed once (vmctl/sandbox/probe.py). Per worker, :meth:`SandboxPolicy.jail_for`
keeps the layers that apply to it: the uid layer only when the worker user can read what
the worker reads (its worktree, and for a spawned worker the Python installation), a
forked worker's network namespace only when the fork server has entered one, Landlock
and seccomp for a spawned worker only when its command is a Python program (they are
applied in the same process before the program's first line; another program would
need an exec, which the filter forbids). Under ``strict`` a worker that would lack a
required layer is refused; under ``auto`` it starts with what it can have, and each
distinct reason is logged once; ``off`` applies nothing.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import cast, get_args

from vmctl.protocol.jail import LAYERS, JailSpec, Layer, SandboxMode
from vmctl.sandbox import identity
from vmctl.sandbox.jail import VMCTL_PACKAGE
from vmctl.sandbox.probe import HostReport, probe
from vmctl.sandbox.run import python_program
from vmctl.supervisor.workers.spawn import SpawnSpec

logger = logging.getLogger(__name__)

_MAX_REASONS_LOGGED = 256  # a bound on the set that remembers what was already logged


class SandboxRefused(Exception):
    """Under ``--sandbox strict``, a worker that would lack a layer is not started."""


class SandboxPolicy:
    """The daemon's ``--sandbox`` mode over the host's report."""

    def __init__(self, mode: SandboxMode, host: HostReport) -> None:
        self.mode = mode
        self.host = host
        self._logged: set[str] = set()

    @property
    def wants_netns(self) -> bool:
        """Whether the fork server is to put itself in an empty network namespace."""
        return self.mode != "off" and self.host.layer("netns").available

    async def jail_for(self, spec: SpawnSpec, *, forked: bool, forkserver_netns: bool) -> JailSpec:
        """The jail of ``spec``'s worker; :class:`SandboxRefused` under strict if it lacks one."""
        blocked = None
        if self._checks_uid():  # it stats the paths: off the loop (a worktree may be slow)
            blocked = await asyncio.to_thread(self._uid_blocked, spec, forked=forked)
        return self._jail(spec, forked, forkserver_netns, blocked)

    def jail_for_here(self, spec: SpawnSpec, *, forked: bool, forkserver_netns: bool) -> JailSpec:
        """:meth:`jail_for` on the calling thread (sync: it stats paths, so not on the loop)."""
        blocked = self._uid_blocked(spec, forked=forked) if self._checks_uid() else None
        return self._jail(spec, forked, forkserver_netns, blocked)

    def _checks_uid(self) -> bool:
        return self.mode != "off" and self.host.layer("uid").available

    def _jail(
        self, spec: SpawnSpec, forked: bool, forkserver_netns: bool, uid_blocked: str | None
    ) -> JailSpec:
        """The jail, given why the uid layer cannot be applied (None: it can)."""
        if self.mode == "off":
            return JailSpec(layers=(), worktree=spec.cwd)
        layers: list[Layer] = []
        missing: list[str] = []
        for name in LAYERS:
            report = self.host.layer(name)
            if not report.available:
                if report.required:
                    missing.append(f"{name}: {report.detail}")
                continue
            if name == "uid":
                reason = uid_blocked
            else:
                reason = self._why_not(name, spec, forked=forked, forkserver_netns=forkserver_netns)
            if reason is None:
                layers.append(name)
            else:
                missing.append(f"{name}: {reason}")
        if missing and self.mode == "strict":
            raise SandboxRefused(
                "--sandbox strict refuses a worker without every jail layer; " + "; ".join(missing)
            )
        for reason in missing:
            self._log_once(reason)
        return JailSpec(
            layers=tuple(layers),
            worktree=spec.cwd,
            uid=self.host.worker_uid if "uid" in layers else None,
            gid=self.host.worker_gid if "uid" in layers else None,
            landlock_abi=self.host.landlock_abi,
        )

    def _why_not(
        self, name: Layer, spec: SpawnSpec, *, forked: bool, forkserver_netns: bool
    ) -> str | None:
        """Why an available layer cannot be applied to this worker, or None."""
        if name == "netns" and forked and not forkserver_netns:
            return "the fork server could not enter a network namespace"
        if name in ("landlock", "seccomp") and not forked and python_program(spec.argv) is None:
            return f"the command {spec.argv[0]!r} is not a Python program the jail can run"
        return None

    def _uid_blocked(self, spec: SpawnSpec, *, forked: bool) -> str | None:
        uid, gid = self.host.worker_uid, self.host.worker_gid
        assert uid is not None and gid is not None  # the layer is available: the probe set them
        # A forked worker has imported everything already; a spawned one imports as it goes.
        needed = [spec.cwd, VMCTL_PACKAGE]
        if not forked:
            needed += [sys.base_prefix, sys.prefix]
            program = python_program(spec.argv)
            if program is not None and program[0] == "script":
                needed.append(program[1])
        for path in needed:
            if (reason := identity.unreadable(path, uid, gid)) is not None:
                return f"the worker would run as uid {uid}, but {reason}"
        return None

    def _log_once(self, reason: str) -> None:
        if reason in self._logged or len(self._logged) >= _MAX_REASONS_LOGGED:
            return
        self._logged.add(reason)
        logger.warning("a worker starts without a jail layer (--sandbox auto): %s", reason)


async def open_sandbox(mode: str, worker_user: str) -> SandboxPolicy:
    """Probe the host (in a thread: it forks a child and loads libseccomp) and say,
    loudly, what the workers will be without."""
    if mode not in get_args(SandboxMode):
        raise ValueError(f"--sandbox must be one of {', '.join(get_args(SandboxMode))}")
    host = await asyncio.to_thread(probe, worker_user)
    policy = SandboxPolicy(cast(SandboxMode, mode), host)
    if mode == "off":
        logger.warning("--sandbox off: workers run without a jail (for debugging only)")
        return policy
    for report in host.missing():
        if mode == "strict":
            logger.error("--sandbox strict: no worker can start without %s: %s",
                         report.name, report.detail)  # fmt: skip
        else:
            logger.warning("workers run without the %s layer: %s", report.name, report.detail)
    applied = ", ".join(host.available())
    logger.info("sandbox %s: this host provides %s", mode, applied or "no jail layer")
    return policy


def sandbox_summary(policy: SandboxPolicy | None) -> dict[str, object] | None:
    """The ``sandbox`` object of ``GET /api/v1/runtime/summary``."""
    if policy is None:
        return None
    return {
        "mode": policy.mode,
        "layers": [
            {"name": r.name, "available": r.available, "required": r.required, "detail": r.detail}
            for r in policy.host.layers
        ],
        "missing": [r.name for r in policy.host.missing()],
    }
