"""The seccomp filter every sandboxed job runs under, compiled to raw BPF.

Allow by default, and deny with EPERM what a text classifier never needs:

- ``socket()`` of any family but ``AF_UNIX`` (so AF_INET, AF_INET6, AF_NETLINK, AF_PACKET,
  AF_VSOCK ... all fail, even on a host without a network namespace, tier C);
- io_uring (it can open sockets without the ``socket`` syscall), ptrace and cross-process memory
  access, BPF, perf events, keyrings, userfaultfd, mount/namespace calls and kexec.

A syscall from a foreign ABI (i386, x32) kills the process (libseccomp's default bad-arch action),
so the filter cannot be side-stepped through ``int 0x80``.

Example::

    bpf = build_bpf()          # bytes, ready for ``bwrap --seccomp FD`` or prctl
"""

from __future__ import annotations

import errno
import functools
import socket
import tempfile

from bedside.errors import SandboxError

DENIED_SYSCALLS = (
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "bpf",
    "perf_event_open",
    "keyctl",
    "add_key",
    "request_key",
    "userfaultfd",
    "mount",
    "umount2",
    "pivot_root",
    "setns",
    "unshare",
    "kexec_load",
    "open_by_handle_at",
)

INSTALL_HINT = "Install it with `pip install pyseccomp` and `apt-get install libseccomp2`."


def available() -> tuple[bool, str]:
    """Whether a filter can be built here, and why not."""
    try:
        build_bpf()
    except SandboxError as e:
        return False, str(e)
    return True, "pyseccomp + libseccomp"


@functools.lru_cache(maxsize=1)
def build_bpf() -> bytes:
    """Compile the filter to BPF bytes (``struct sock_filter`` array)."""
    try:
        import pyseccomp as sc
    except (ImportError, OSError) as e:  # OSError: libseccomp.so missing
        raise SandboxError(f"seccomp is not available: {e}.", hint=INSTALL_HINT) from e
    try:
        flt = sc.SyscallFilter(sc.ALLOW)
        flt.add_rule(sc.ERRNO(errno.EPERM), "socket", sc.Arg(0, sc.NE, socket.AF_UNIX))
        for name in DENIED_SYSCALLS:
            try:
                flt.add_rule(sc.ERRNO(errno.EPERM), name)
            except OSError:  # a syscall this kernel/arch does not know
                continue
        with tempfile.TemporaryFile() as f:
            flt.export_bpf(f)
            f.seek(0)
            data = f.read()
    except OSError as e:
        raise SandboxError(f"could not build the seccomp filter: {e}.", hint=INSTALL_HINT) from e
    if not data or len(data) % 8:
        raise SandboxError(f"the seccomp filter came out malformed ({len(data)} bytes).")
    return data
