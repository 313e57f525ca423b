"""The sandbox's first process: set up isolation in order, then exec the job (or bwrap).

Runs as ``python -I -S _exec.py CONFIG_JSON`` (standard library only, no bedside imports, no
``preexec_fn`` in the launcher, so it is safe to start from a threaded worker). In order:

1. join the job's cgroups (every descendant is then accounted and killable);
2. (root only) a private mount namespace in which each bind source is staged under a 0755
   directory, or re-exposed through tmpfs masks over its 0700 ancestors (tier B), so that the
   unprivileged sandbox uid can reach the Python env and the job files -- and nothing else;
3. a network namespace (tier B; tier A gets one from bubblewrap);
4. rlimits; 5. drop to the sandbox uid; 6. die with the launcher (PDEATHSIG); 7. no_new_privs +
   a seccomp BPF filter (tiers B and C; tier A hands the filter to bubblewrap); 8. exec.

Exit codes 120..127 mean this helper itself failed (a platform error), with the reason on stderr.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import struct
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_NO_NEW_PRIVS = 38
PR_SET_PDEATHSIG = 1
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
HELPER_FAILED = 121

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
_libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4


def _fail(msg: str) -> None:
    sys.stderr.write(f"bedside-sandbox: {msg}\n")
    sys.stderr.flush()
    os._exit(HELPER_FAILED)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        _fail(f"{what} failed: {os.strerror(err)}")


def _mount(
    src: str | None, dst: str, fstype: str | None, flags: int, data: str | None = None
) -> None:
    enc = [None if x is None else x.encode() for x in (src, dst, fstype)]
    rc = _libc.mount(enc[0], enc[1], enc[2], flags, None if data is None else data.encode())
    _check(rc, f"mount {src} -> {dst}")


def _make_mountpoint(path: str, is_dir: bool) -> None:
    if is_dir:
        os.makedirs(path, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.exists(path):
            with open(path, "w"):
                pass


def _stage(cfg: dict) -> None:
    """Private mount namespace: bind each source under the 0755 staging dir (tier A reads them
    there through bwrap), or expose them in place behind tmpfs masks (tier B)."""
    flags = CLONE_NEWNS | (CLONE_NEWNET if cfg.get("netns") else 0)
    _check(_libc.unshare(flags), "unshare(mount/net namespace)")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    stage = cfg["stage_dir"]
    binds = cfg.get("stage_binds", [])  # [[src, name, ro]]
    for src, name, _ro in binds:
        dst = os.path.join(stage, name)
        _make_mountpoint(dst, os.path.isdir(src))
        _mount(src, dst, None, MS_BIND | MS_REC)
    masks = cfg.get("masks", [])
    if not masks:
        return
    # Tier B: hide each 0700 ancestor behind a 0755 tmpfs, then put the needed paths back.
    for m in masks:
        _mount("tmpfs", m, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
    for src, name, ro in binds:
        staged = os.path.join(stage, name)
        _make_mountpoint(src, os.path.isdir(staged))
        _mount(staged, src, None, MS_BIND | MS_REC)
        if ro:
            _mount(None, src, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _load_seccomp(path: str) -> None:
    with open(path, "rb") as f:
        bpf = f.read()
    n = len(bpf) // 8
    buf = ctypes.create_string_buffer(bpf, len(bpf))
    prog = struct.pack("HxxxxxxQ", n, ctypes.addressof(buf))  # struct sock_fprog
    prog_buf = ctypes.create_string_buffer(prog, len(prog))
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
    rc = _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(prog_buf), 0, 0)
    _check(rc, "prctl(SECCOMP_MODE_FILTER)")


def main() -> None:
    cfg = json.loads(sys.argv[1])
    pid = str(os.getpid())
    for procs in cfg.get("cgroup_procs", []):
        try:
            with open(procs, "w") as f:
                f.write(pid)
        except OSError as e:
            _fail(f"cannot join cgroup {procs}: {e}")
    if cfg.get("stage_dir"):
        _stage(cfg)
    elif cfg.get("netns"):
        _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
    for name, value in cfg.get("rlimits", {}).items():
        try:
            resource.setrlimit(getattr(resource, name), (int(value[0]), int(value[1])))
        except (OSError, ValueError) as e:
            _fail(f"setrlimit {name}={value}: {e}")
    uid = cfg.get("uid")
    if uid is not None and os.getuid() != uid:
        try:
            os.setgroups([])
            os.setgid(int(cfg["gid"]))
            os.setuid(int(uid))
        except OSError as e:
            _fail(f"cannot drop to uid {uid}: {e}")
    # Die with the launcher (a SIGKILLed worker leaves no job behind). Set after the uid change,
    # which clears it; a launcher already gone means nobody waits for us.
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PDEATHSIG)")
    if os.getppid() != cfg.get("parent_pid", os.getppid()):
        _fail("the launcher exited before the job started")
    if cfg.get("seccomp_file"):
        _load_seccomp(cfg["seccomp_file"])
    if cfg.get("cwd"):
        os.chdir(cfg["cwd"])
    sfd = cfg.get("status_fd")
    if sfd is not None:
        if cfg.get("status_dup") is not None:  # tier A: the trampoline inside bwrap marks exec
            os.dup2(sfd, int(cfg["status_dup"]))
        else:  # tiers B, C: this is the last step before the job's own code
            os.write(sfd, b"exec\n")
        os.close(sfd)
    argv = cfg["argv"]
    try:
        os.execve(argv[0], argv, cfg["env"])
    except OSError as e:
        _fail(f"cannot exec {argv[0]}: {e}")


if __name__ == "__main__":
    main()
