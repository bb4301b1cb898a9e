"""The Linux system calls the jail makes that Python's ``os`` module does not offer.

Each wrapper raises ``OSError`` with the kernel's errno, so a layer the host refuses
fails the way any other system call does. x86_64 and aarch64 numbers; elsewhere the
jail's layers that need them report themselves missing.
"""

from __future__ import annotations

import ctypes
import os
import platform

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

# Same numbers on x86_64 and aarch64 (the generic table from Linux 5.x on).
_SYS_LANDLOCK_CREATE_RULESET = 444
_SYS_LANDLOCK_ADD_RULE = 445
_SYS_LANDLOCK_RESTRICT_SELF = 446
_SYS_CAPSET = {"x86_64": 126, "aarch64": 91}.get(platform.machine())

PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_GET_SECCOMP = 21
CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
_CAPABILITY_VERSION_3 = 0x20080522


def _check(result: int) -> int:
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))
    return result


def prctl(option: int, arg2: int = 0, arg3: int = 0) -> int:
    return _check(_libc.prctl(option, ctypes.c_ulong(arg2), ctypes.c_ulong(arg3), 0, 0))


def prctl_pointer(option: int, arg2: int, address: int) -> int:
    """prctl with a pointer as its third argument (PR_SET_SECCOMP's program)."""
    return _check(_libc.prctl(option, ctypes.c_ulong(arg2), ctypes.c_void_p(address), 0, 0))


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags))


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def clear_capabilities() -> None:
    """Empty this thread's effective, permitted and inheritable sets (both 32-bit halves)."""
    if _SYS_CAPSET is None:
        raise OSError(38, f"capset: no system call number for {platform.machine()}")
    header = _CapHeader(_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(_libc.syscall(_SYS_CAPSET, ctypes.byref(header), ctypes.byref(data)))


class RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class PathBeneathAttr(ctypes.Structure):
    _pack_ = 1  # the kernel's struct is packed: 12 bytes
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock_abi() -> int:
    """The Landlock ABI version this kernel offers; OSError when it has none."""
    return _check(
        _libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, None, 0, LANDLOCK_CREATE_RULESET_VERSION)
    )


def landlock_create_ruleset(attr: RulesetAttr, size: int) -> int:
    return _check(_libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), size, 0))


def landlock_add_path_rule(ruleset: int, allowed: int, path_fd: int) -> None:
    rule = PathBeneathAttr(allowed, path_fd)
    _check(
        _libc.syscall(
            _SYS_LANDLOCK_ADD_RULE, ruleset, LANDLOCK_RULE_PATH_BENEATH, ctypes.byref(rule), 0
        )
    )


def landlock_restrict_self(ruleset: int) -> None:
    _check(_libc.syscall(_SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0))
