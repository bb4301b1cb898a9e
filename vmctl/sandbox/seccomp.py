"""The seccomp filter, through libseccomp: what a worker may never ask the kernel for.

Default allow with an explicit deny list (an allow list for CPython, glibc and
QuickJS would break with each of their releases). Denied calls fail with ``EPERM``,
not a kill, so a blocked attempt is an error the worker (and a test) can see; the one
exception is ``clone3``, which fails with ``ENOSYS`` so glibc falls back to ``clone``,
whose flags the filter can read (clone3 passes them in memory it cannot).

Syscalls of a foreign architecture (the 32-bit ABI through ``int 0x80``) kill the
process: libseccomp's filter admits only the native one.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import struct

from vmctl.sandbox import kernel

_CLONE_THREAD = 0x00010000

# Denied whatever their arguments.
DENIED = (
    # no other program, no new process
    "execve", "execveat", "fork", "vfork",
    # no looking into or moving between processes, namespaces and mounts
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_open", "pidfd_getfd",
    "pidfd_send_signal", "kcmp", "unshare", "setns", "mount", "umount2", "pivot_root",
    "chroot", "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount", "fspick",
    "mount_setattr", "name_to_handle_at", "open_by_handle_at",
    # kernel attack surface no worker needs
    "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "personality",
    # what only a privileged process could do, denied again for a worker left as root
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
    "reboot", "swapon", "swapoff", "iopl", "ioperm", "acct", "quotactl", "syslog",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "sethostname",
    "setdomainname", "mknod", "mknodat", "vhangup", "lookup_dcookie",
    # no new socket of any family: a worker talks only over the pipes it inherited
    "socket",
    # a thread signal needs the thread's pid, which tgkill (below) checks
    "tkill",
)  # fmt: skip

# Signal senders whose first argument is the target process: allowed for itself only.
SELF_ONLY = ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo")


# Stands for the worker's pid in the compiled program (above any pid: pid_max is 2**22),
# so the filter is compiled once where the worker's imports are done and each worker
# only writes its pid into it: libseccomp's compilation takes about 1.5 ms, longer
# than the rest of a forked worker's start.
_SELF = 0x7EC0FFEE
_INSTRUCTION = struct.Struct("=HBBI")  # struct sock_filter: code, jt, jf, k
_BPF_K_OFFSET = 4
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2


class Program:
    """A compiled filter, loaded by a child that writes its own pid into it first.

    Made in the parent: the child only patches a few words of its copy and loads it.
    """

    def __init__(self, code: bytes) -> None:
        self._buffer = ctypes.create_string_buffer(code, len(code))
        self._blanks = tuple(
            index * _INSTRUCTION.size + _BPF_K_OFFSET
            for index, (*_, k) in enumerate(_INSTRUCTION.iter_unpack(code))
            if k == _SELF
        )
        if not self._blanks:  # (libseccomp shares one comparison among the four calls)
            raise RuntimeError("libseccomp compiled the pid comparisons in an unknown way")
        address = ctypes.cast(self._buffer, ctypes.c_void_p)
        self._fprog = _SockFprog(len(code) // _INSTRUCTION.size, address)

    def load(self, own_pid: int) -> None:
        """Install the filter on this process, for its pid; it holds for threads to come."""
        for offset in self._blanks:
            struct.pack_into("=I", self._buffer, offset, own_pid)
        kernel.prctl_pointer(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(self._fprog))


def compile_filter() -> Program:
    """The filter as classic BPF, with :data:`_SELF` where the worker's pid goes.

    Raises ``RuntimeError`` when libseccomp is not installed on this host.
    """
    import pyseccomp as sc  # finds and loads libseccomp: only where a filter is compiled

    deny = sc.ERRNO(errno.EPERM)
    rules = sc.SyscallFilter(defaction=sc.ALLOW)
    for name in DENIED:
        rules.add_rule(deny, name)
    # clone for a thread (CLONE_THREAD set) is allowed; for a process, refused.
    rules.add_rule(deny, "clone", sc.Arg(0, sc.MASKED_EQ, _CLONE_THREAD, 0))
    rules.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    rules.add_rule(deny, "socketpair", sc.Arg(0, sc.NE, socket.AF_UNIX))
    for name in SELF_ONLY:
        rules.add_rule(deny, name, sc.Arg(0, sc.NE, _SELF))
    fd = os.memfd_create("vmctl-seccomp", os.MFD_CLOEXEC)
    try:
        rules.export_bpf(_Fd(fd))
        return Program(os.pread(fd, os.fstat(fd).st_size, 0))
    finally:
        os.close(fd)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class _Fd:
    """What libseccomp's export wants: an object with ``fileno()``."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def fileno(self) -> int:
        return self._fd
