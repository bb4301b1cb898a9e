"""What this host offers the jail, layer by layer, and why not where it does not.

The daemon probes once at its start (its workers get what the probe found, under
``--sandbox``); ``GET /api/v1/runtime/summary`` and ``vmctl doctor`` show the report.
"""

from __future__ import annotations

import errno
import os
import platform
from collections.abc import Callable

import msgspec

from vmctl.protocol.jail import LAYERS, Layer
from vmctl.sandbox import identity, kernel, landlock, seccomp

_LANDLOCK_ERRORS = {
    errno.ENOSYS: "this kernel was built without Landlock (Linux 5.13 or later has it)",
    errno.EOPNOTSUPP: "Landlock is built in but not enabled (add landlock to the lsm= boot option)",
}


class LayerReport(msgspec.Struct, frozen=True):
    name: Layer
    available: bool
    # Whether a worker without it is refused under --sandbox strict. Only the uid layer
    # can be not required: a daemon that is not root has no uid to drop from.
    required: bool
    detail: str


class HostReport(msgspec.Struct, frozen=True):
    layers: tuple[LayerReport, ...]
    root: bool
    worker_uid: int | None = None  # the uid workers drop to (a root daemon only)
    worker_gid: int | None = None
    landlock_abi: int = 0

    def layer(self, name: Layer) -> LayerReport:
        return next(report for report in self.layers if report.name == name)

    def available(self) -> tuple[Layer, ...]:
        return tuple(r.name for r in self.layers if r.available)

    def missing(self) -> tuple[LayerReport, ...]:
        return tuple(r for r in self.layers if r.required and not r.available)


def probe(worker_user: str = "nobody") -> HostReport:
    """Try each layer on this host (netns in a short-lived child)."""
    root = os.geteuid() == 0
    reports: dict[Layer, LayerReport] = {}
    abi = 0
    try:
        abi = kernel.landlock_abi()
        reports["landlock"] = LayerReport("landlock", True, True, landlock.describe(abi))
    except OSError as exc:
        reason = _LANDLOCK_ERRORS.get(exc.errno or 0, f"Landlock is refused: {exc.strerror}")
        reports["landlock"] = LayerReport("landlock", False, True, reason)
    reports["no_new_privs"] = _try("no_new_privs", lambda: kernel.prctl(kernel.PR_GET_NO_NEW_PRIVS))
    if platform.machine() in ("x86_64", "aarch64"):
        reports["capabilities"] = LayerReport(
            "capabilities", True, True, "the worker's capability sets are emptied"
        )
    else:
        reports["capabilities"] = LayerReport(
            "capabilities", False, True, f"no capset number known for {platform.machine()}"
        )
    try:
        seccomp.compile_filter()
        kernel.prctl(kernel.PR_GET_SECCOMP)
        reports["seccomp"] = LayerReport(
            "seccomp", True, True, f"libseccomp filter: {len(seccomp.DENIED)} calls denied, "
            "clone only for threads, signals only to itself"
        )  # fmt: skip
    except (OSError, RuntimeError) as exc:
        reports["seccomp"] = LayerReport("seccomp", False, True, f"no filter: {exc}")
    reports["netns"] = _probe_netns(root)
    uid = gid = None
    if not root:
        detail = f"the daemon is not root: workers keep its uid {os.geteuid()}"
        reports["uid"] = LayerReport("uid", False, False, detail)
    else:
        try:
            uid, gid = identity.resolve_user(worker_user)
        except KeyError:
            detail = f"no user {worker_user!r} to drop to (see --worker-user)"
            reports["uid"] = LayerReport("uid", False, True, detail)
        else:
            if uid == 0:
                detail = f"--worker-user {worker_user!r} is root"
                reports["uid"] = LayerReport("uid", False, True, detail)
            else:
                detail = (
                    f"workers drop to {worker_user} ({uid}:{gid}) when that uid can read "
                    "their worktree"
                )
                reports["uid"] = LayerReport("uid", True, True, detail)
    ordered = tuple(reports[name] for name in LAYERS)
    return HostReport(ordered, root, uid, gid, abi)


def _try(name: Layer, step: Callable[[], object]) -> LayerReport:
    try:
        step()
    except OSError as exc:
        return LayerReport(name, False, True, exc.strerror or str(exc))
    return LayerReport(name, True, True, "set before the worker's first line")


def _probe_netns(root: bool) -> LayerReport:
    """Whether a new network namespace can be made, tried in a child that only does that."""
    flags = kernel.CLONE_NEWNET if root else kernel.CLONE_NEWUSER | kernel.CLONE_NEWNET
    pid = os.fork()
    if pid == 0:  # only system calls here: the parent may have other threads
        try:
            kernel.unshare(flags)
        except BaseException:
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) == 0:
        how = "a new network namespace" if root else "a new user and network namespace"
        return LayerReport("netns", True, True, f"workers run in {how}: no network at all")
    why = "unshare(CLONE_NEWNET) is refused" if root else (
        "unprivileged user namespaces are disabled on this host"
    )  # fmt: skip
    return LayerReport("netns", False, True, why)
