"""Run one job directory in isolation and say how it ended.

    Launcher (abstract)            launch(job_dir, spec, limits) -> LaunchResult
    ├── BwrapLauncher     tier A   bubblewrap (all namespaces) + seccomp + rlimits + cgroups + uid
    ├── NamespaceLauncher tier B   network + mount namespace + seccomp + rlimits + cgroups + uid
    ├── RlimitLauncher    tier C   seccomp + rlimits (+ cgroups when the host has them)
    ├── PlainLauncher     none     a plain subprocess: tests and benchmarks only, never by policy
    └── FakeLauncher      -        writes canned outputs, for unit tests of the worker

Every process launcher starts ``_exec.py`` (see there) which sets the isolation up in order and
execs the job; the parent watches wall time, cancellation and the output quota, and in
``finally`` kills every process of the job (process group, cgroup, and an environment marker
scan), removes its cgroups and its staging directory.

``test_command`` (a constructor argument, never reachable from the CLI, the policy or a bundle)
replaces the engine entrypoint with arbitrary argv: the attack tests use it. ``{job}`` in it
becomes the job directory as seen inside the sandbox.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bedside.config import JobLimits
from bedside.errors import SandboxError
from bedside.jobs.outputs import footprint, reported_error_class
from bedside.jobs.spec import JobSpec
from bedside.sandbox import cgroups, seccomp

SANDBOX_UID = 65534  # nobody
SANDBOX_GID = 65534
LOG_TAIL_BYTES = 64 * 1024
JOB_MOUNT = "/job"
STAGE_PREFIX = "bedside-job-"  # + launcher pid: a dead launcher's leftovers can be swept
CGROUP_PREFIX = "bedside-"
HELPER = Path(__file__).with_name("_exec.py")
HELPER_FAILED = 121
QUOTA_EVERY_S = 0.05  # page-cache writes run at ~1.5 GB/s: at most ~75 MB overshoot
STATUS_FD = 9  # where tier A's status fd sits inside bwrap (sh redirects fds 0-9 only)
# Error classes a job may report for itself in out/error.json. platform_error is the launcher's
# alone: a job must not be able to make its failure not count.
JOB_ERROR_CLASSES = {
    "timeout",
    "out_of_memory",
    "invalid_output",
    "invalid_input",
    "model_error",
    "budget_exhausted",
}
ENTRYPOINT = ("{python}", "-m", "bedside.engine.entrypoint", "{job}")


@dataclass
class LaunchResult:
    exit_code: int | None
    error_class: str | None  # None: the process ended cleanly (its output is still checked)
    wall_s: float
    peak_rss_mb: float | None
    tier: str
    timed_out: bool = False
    oom: bool = False
    cancelled: bool = False
    message: str = ""  # owner-only detail
    log_tail: str = ""  # owner-only: the last LOG_TAIL_BYTES of stdout+stderr

    @property
    def ok(self) -> bool:
        return self.error_class is None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Mount:
    src: Path
    dest: str
    ro: bool = True


Poll = Callable[[], None]
Cancel = Callable[[], bool]


class Launcher(ABC):
    """Runs a job directory; ``tier`` is recorded with every result."""

    tier: str = "none"

    @abstractmethod
    def launch(
        self,
        job_dir: Path,
        spec: JobSpec,
        limits: JobLimits,
        *,
        should_cancel: Cancel | None = None,
        on_poll: Poll | None = None,
    ) -> LaunchResult: ...


# -- helpers -------------------------------------------------------------------------------


def python_paths() -> list[Path]:
    """Directories the interpreter needs: prefixes, site-packages and ``.pth`` path entries
    (editable installs), without duplicates or nested entries."""
    import site

    cands: list[Path] = [Path(sys.base_prefix), Path(sys.prefix), Path(sys.executable).parent]
    sites = [Path(p) for p in site.getsitepackages()]
    cands += sites
    for sp in sites:
        for pth in sorted(sp.glob("*.pth")) if sp.is_dir() else []:
            with contextlib.suppress(OSError):
                for line in pth.read_text().splitlines():
                    line = line.strip()
                    if line and not line.startswith(("#", "import")) and Path(line).is_dir():
                        cands.append(Path(line))
    out: list[Path] = []
    for c in sorted({p.resolve() for p in cands if p.exists()}, key=lambda p: len(p.parts)):
        if str(c).startswith(("/usr/", "/etc/")) or c == Path("/usr"):
            continue
        if not any(c == o or o in c.parents for o in out):
            out.append(c)
    return out


def _blocking_ancestor(path: Path) -> Path | None:
    """The topmost ancestor of ``path`` that others cannot traverse (mode without o+x)."""
    for anc in reversed(path.parents):  # from / down
        if anc == Path("/"):
            continue
        try:
            if not os.stat(anc).st_mode & stat.S_IXOTH:
                return anc
        except OSError:
            return None
    return None


def dir_size(path: Path, cap: int) -> int:
    """What ``path`` is charged against the output quota: file and directory blocks, and at least
    one block per entry (``jobs.outputs.footprint``); stops counting once past ``cap``."""
    return footprint(path, cap)


def _read_tail(path: Path, n: int = LOG_TAIL_BYTES) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - n))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def kill_marked(token: str) -> int:
    """SIGKILL every process whose environment carries ``BEDSIDE_JOB_TOKEN=token``. Returns how
    many were found (a straggler that left its process group and cgroup, e.g. on tier C)."""
    needle = f"BEDSIDE_JOB_TOKEN={token}".encode()
    found = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue
        if needle in env.split(b"\0"):
            found += 1
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)
    return found


def sandbox_env(
    spec: JobSpec, limits: JobLimits, tier: str, token: str, scratch: str
) -> dict[str, str]:
    """The job's whole environment: an allowlist, nothing inherited from the host."""
    threads = str(max(1, min(spec.threads, limits.cpus)))
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": scratch,
        "TMPDIR": scratch,
        "HF_HOME": f"{scratch}/hf",
        "XDG_CACHE_HOME": f"{scratch}/cache",
        "MPLCONFIGDIR": f"{scratch}/mpl",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TORCH_FORCE_WEIGHTS_ONLY_LOAD": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "BEDSIDE_SANDBOX_TIER": tier,
        "BEDSIDE_JOB_TOKEN": token,
    }
    if limits.gpu and "CUDA_VISIBLE_DEVICES" in os.environ:
        env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
    return env


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            with contextlib.suppress(OSError):
                os.chown(os.path.join(root, n), uid, gid, follow_symlinks=False)


@dataclass
class _Run:
    """Everything one launch owns; ``cleanup`` releases all of it."""

    stage: Path
    token: str = field(default_factory=lambda: secrets.token_hex(8))
    cg: cgroups.JobCgroup | None = None
    status_fd: int = -1
    fds: list[int] = field(default_factory=list)

    def cleanup(self, pgid: int | None) -> None:
        if pgid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        if self.cg is not None:
            self.cg.close()
        kill_marked(self.token)
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds.clear()
        for _ in range(50):  # staging mounts vanish with the last process of their namespace
            try:
                shutil.rmtree(self.stage)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.02)


class ProcessLauncher(Launcher):
    """Shared machinery: spawn, watch (wall time, cancel, quota), classify, clean up."""

    use_helper = True
    drop_uid = False

    def __init__(
        self,
        *,
        test_command: Sequence[str] | None = None,
        use_cgroups: bool | None = None,
        poll_s: float = 0.1,
        sandbox_uid: int = SANDBOX_UID,
    ) -> None:
        self.test_command = list(test_command) if test_command else None
        self.use_cgroups = cgroups.detect()[0] != "none" if use_cgroups is None else use_cgroups
        self.poll_s = poll_s
        self.sandbox_uid = sandbox_uid

    # -- hooks ----------------------------------------------------------------------------
    def job_path(self, job_dir: Path) -> str:
        """The job directory as the job sees it."""
        return str(job_dir)

    def scratch_path(self, run: _Run) -> str:
        return str(run.stage / "scratch")

    def plan(
        self,
        run: _Run,
        job_dir: Path,
        spec: JobSpec,
        limits: JobLimits,
        env: dict[str, str],
        argv: list[str],
    ) -> dict[str, Any]:
        """Helper config (argv, env, rlimits, uid, ...) for this tier."""
        return {"argv": argv, "env": env}

    # -- the launch -------------------------------------------------------------------------
    def _uid(self) -> int | None:
        return self.sandbox_uid if self.drop_uid and os.geteuid() == 0 else None

    def _argv(self, job_dir: Path) -> list[str]:
        tmpl = self.test_command or list(ENTRYPOINT)
        jp = self.job_path(job_dir)
        return [a.replace("{job}", jp).replace("{python}", sys.executable) for a in tmpl]

    def rlimits(self, limits: JobLimits) -> dict[str, tuple[int, int]]:
        mem = int(limits.memory_gb * 2**30)
        cpu_s = int(limits.wall_time_s * limits.cpus) + 60
        fsize = int(limits.output_quota_mb * 2**20)
        return {
            # Address space, not RSS: torch maps far more than it touches, so leave headroom; the
            # cgroup holds the real line where there is one.
            "RLIMIT_AS": (mem + 4 * 2**30, mem + 4 * 2**30),
            "RLIMIT_CPU": (cpu_s, cpu_s + 5),
            "RLIMIT_FSIZE": (fsize, fsize),
            "RLIMIT_NOFILE": (4096, 4096),
            "RLIMIT_CORE": (0, 0),
            # per uid across all jobs of the sandbox uid; the pids cgroup is the per-job line
            "RLIMIT_NPROC": (limits.pids * 4, limits.pids * 4),
        }

    def launch(
        self,
        job_dir: Path,
        spec: JobSpec,
        limits: JobLimits,
        *,
        should_cancel: Cancel | None = None,
        on_poll: Poll | None = None,
    ) -> LaunchResult:
        job_dir = Path(job_dir).resolve()
        out_dir, ckpt_dir = spec.path(job_dir, "out"), spec.path(job_dir, "checkpoints")
        out_dir.mkdir(exist_ok=True)
        ckpt_dir.mkdir(exist_ok=True)
        run = _Run(stage=Path(tempfile.mkdtemp(prefix=f"{STAGE_PREFIX}{os.getpid()}-")))
        os.chmod(run.stage, 0o755)
        t0 = time.monotonic()
        pgid: int | None = None
        try:
            uid = self._uid()
            scratch = run.stage / "scratch"
            scratch.mkdir(mode=0o700)
            if uid is not None:
                for d in (out_dir, ckpt_dir):
                    _chown_tree(d, uid, SANDBOX_GID)
                os.chown(scratch, uid, SANDBOX_GID)
            if self.use_cgroups:
                run.cg = cgroups.JobCgroup.create(
                    f"{CGROUP_PREFIX}{os.getpid()}-{spec.job_id}-{run.token}",
                    memory_bytes=int(limits.memory_gb * 2**30),
                    pids=limits.pids,
                    cpus=limits.cpus,
                )
            status = run.stage / "status"
            run.status_fd = _high_fd(os.open(status, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
            run.fds.append(run.status_fd)
            env = sandbox_env(spec, limits, self.tier, run.token, self.scratch_path(run))
            cfg = self.plan(run, job_dir, spec, limits, env, self._argv(job_dir))
            cfg.setdefault("cwd", str(job_dir))
            cfg["cgroup_procs"] = run.cg.procs_files() if run.cg else []
            cfg["status_fd"] = run.status_fd
            cfg["parent_pid"] = os.getpid()
            log_path = run.stage / "log"
            with open(log_path, "wb") as log:
                if self.use_helper:
                    cmd = [sys.executable, "-I", "-S", str(HELPER), json.dumps(cfg)]
                    env_for_popen: dict[str, str] = {}
                else:
                    cmd, env_for_popen = cfg["argv"], cfg["env"]
                proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env_for_popen,
                    start_new_session=True,
                    pass_fds=tuple(run.fds),
                    cwd=cfg.get("cwd") if not self.use_helper else None,
                )
            pgid = proc.pid
            for fd in run.fds:  # the child has its copies
                with contextlib.suppress(OSError):
                    os.close(fd)
            run.fds.clear()
            code, maxrss_kb, why = self._watch(
                proc, limits, out_dir, ckpt_dir, t0, should_cancel, on_poll
            )
            wall = time.monotonic() - t0
            started = not self.use_helper or self._started(status)
            return self._classify(code, why, wall, maxrss_kb, run, out_dir, log_path, started)
        finally:
            run.cleanup(pgid)

    def _watch(
        self,
        proc: subprocess.Popen[bytes],
        limits: JobLimits,
        out_dir: Path,
        ckpt_dir: Path,
        t0: float,
        should_cancel: Cancel | None,
        on_poll: Poll | None,
    ) -> tuple[int, int, str]:
        """Wait for the process; kill it on wall time, cancellation or a blown output quota.
        Returns (wait status code, max rss in KB, reason or "")."""
        quota = int(limits.output_quota_mb * 2**20)
        why = ""
        last_slow = last_quota = 0.0

        def over_quota() -> bool:
            return dir_size(out_dir, quota) > quota or dir_size(ckpt_dir, quota) > quota

        while True:
            pid, wstatus, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(wstatus)
                if not why and over_quota():
                    why = "quota"
                return proc.returncode, int(ru.ru_maxrss), why
            now = time.monotonic()
            if not why:
                if now - t0 > limits.wall_time_s:
                    why = "timeout"
                elif now - last_quota >= QUOTA_EVERY_S:
                    # RLIMIT_FSIZE caps each file; the total is checked here, so a job can
                    # overshoot by what it writes in QUOTA_EVERY_S (see docs/threat-model.md).
                    last_quota = now
                    if over_quota():
                        why = "quota"
                if not why and now - last_slow >= 1.0:
                    last_slow = now
                    if should_cancel is not None and should_cancel():
                        why = "cancelled"
                    if on_poll is not None:
                        with contextlib.suppress(Exception):  # progress is best effort
                            on_poll()
                if why:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(proc.pid, signal.SIGKILL)
            time.sleep(min(self.poll_s, QUOTA_EVERY_S))

    @staticmethod
    def _started(status: Path) -> bool:
        try:
            return "exec" in status.read_text()
        except OSError:
            return False

    def _classify(
        self,
        code: int,
        why: str,
        wall: float,
        maxrss_kb: int,
        run: _Run,
        out_dir: Path,
        log_path: Path,
        started: bool,
    ) -> LaunchResult:
        peak = run.cg.peak_memory_mb() if run.cg else None
        if peak is None and maxrss_kb:
            peak = round(maxrss_kb / 1024, 1)
        tail = _read_tail(log_path)
        res = LaunchResult(
            exit_code=code,
            error_class=None,
            wall_s=round(wall, 3),
            peak_rss_mb=peak,
            tier=self.tier,
            log_tail=tail,
        )
        oom = bool(run.cg and run.cg.oom_killed())
        reported = _reported_error(out_dir)
        if why == "cancelled":
            res.cancelled, res.error_class, res.message = (
                True,
                "cancelled",
                "cancelled by the owner",
            )
        elif why == "timeout" or code in (-signal.SIGXCPU, 128 + signal.SIGXCPU):
            res.timed_out, res.error_class, res.message = (
                True,
                "timeout",
                "wall-time or CPU-time limit reached",
            )
        elif why == "quota":
            res.error_class, res.message = "invalid_output", "the job's output exceeded its quota"
        elif code == 0:
            pass
        elif not started or (code == HELPER_FAILED and "bedside-sandbox:" in tail):
            res.error_class, res.message = (
                "platform_error",
                "the sandbox failed to start: " + _last_line(tail),
            )
        elif oom or reported == "out_of_memory" or "MemoryError" in tail[-4000:]:
            res.oom, res.error_class, res.message = (
                True,
                "out_of_memory",
                "the job ran out of its memory limit",
            )
        elif reported in JOB_ERROR_CLASSES:
            res.error_class, res.message = reported, f"the job reported {reported}"
        else:
            res.error_class, res.message = "model_error", f"the job exited with code {code}"
        return res


def _high_fd(fd: int) -> int:
    """Move ``fd`` to a number >= 10, so that fd 9 stays free for the status trampoline."""
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return new


def _reported_error(out_dir: Path) -> str | None:
    return reported_error_class(out_dir)  # read through jobs.outputs: no link is followed


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "(no output)"


# -- the tiers -----------------------------------------------------------------------------


class PlainLauncher(ProcessLauncher):
    """No isolation at all: a plain subprocess. For tests and benchmarks; never chosen by policy."""

    tier = "none"
    use_helper = False

    def plan(self, run, job_dir, spec, limits, env, argv):  # type: ignore[no-untyped-def]
        return {"argv": argv, "env": env}


class RlimitLauncher(ProcessLauncher):
    """Tier C: seccomp + rlimits (+ cgroups when present); same uid, same filesystem view."""

    tier = "C"

    def plan(self, run, job_dir, spec, limits, env, argv):  # type: ignore[no-untyped-def]
        bpf = run.stage / "seccomp.bpf"
        bpf.write_bytes(seccomp.build_bpf())
        return {"argv": argv, "env": env, "rlimits": self.rlimits(limits), "seccomp_file": str(bpf)}


class NamespaceLauncher(ProcessLauncher):
    """Tier B: a network namespace (no network at all), a private mount namespace that masks
    0700 directories above the Python env and the job, the unprivileged uid, seccomp, rlimits,
    cgroups. Needs root (to create the namespaces and drop the uid)."""

    tier = "B"
    drop_uid = True

    def plan(self, run, job_dir, spec, limits, env, argv):  # type: ignore[no-untyped-def]
        if os.geteuid() != 0:
            raise SandboxError(
                "tier B needs root to create its namespaces and to switch to the sandbox uid.",
                hint="Run the worker as root, or install bubblewrap (`apt-get install bubblewrap`) for tier A.",
            )
        bpf = run.stage / "seccomp.bpf"
        bpf.write_bytes(seccomp.build_bpf())
        os.chmod(bpf, 0o644)
        os.chmod(run.stage / "scratch", 0o700)
        needed = [Mount(p, str(p)) for p in python_paths()]
        needed.append(Mount(job_dir, str(job_dir), ro=False))
        bundle = spec.path(job_dir, "bundle").resolve()
        if bundle.exists():
            needed.append(Mount(bundle, str(bundle)))
        masks = sorted({str(a) for m in needed if (a := _blocking_ancestor(m.src)) is not None})
        stage = run.stage / "m"
        stage.mkdir(mode=0o700)
        binds = [[str(m.src), f"{i}", m.ro] for i, m in enumerate(needed)]
        return {
            "argv": argv,
            "env": env,
            "rlimits": self.rlimits(limits),
            "seccomp_file": str(bpf),
            "stage_dir": str(stage),
            "stage_binds": binds,
            "masks": masks,
            "netns": True,
            "uid": self._uid(),
            "gid": SANDBOX_GID,
            "cwd": str(job_dir),
        }


class BwrapLauncher(ProcessLauncher):
    """Tier A: bubblewrap with every namespace, no network, a minimal read-only filesystem."""

    tier = "A"
    drop_uid = True

    def __init__(self, *, bwrap: str | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.bwrap = bwrap or shutil.which("bwrap") or "/usr/bin/bwrap"

    def job_path(self, job_dir: Path) -> str:
        return JOB_MOUNT

    def scratch_path(self, run: _Run) -> str:
        return "/tmp"

    def plan(self, run, job_dir, spec, limits, env, argv):  # type: ignore[no-untyped-def]
        if not os.path.exists(self.bwrap):
            raise SandboxError(
                "bubblewrap is not installed.", hint="Install it with `apt-get install bubblewrap`."
            )
        mounts = [Mount(p, str(p)) for p in python_paths()]
        mounts.append(Mount(job_dir / "spec.json", f"{JOB_MOUNT}/spec.json"))
        for name in ("bundle", "inputs"):
            src = (job_dir / name).resolve()
            if src.exists():
                mounts.append(Mount(src, f"{JOB_MOUNT}/{name}"))
        mounts.append(Mount(spec.path(job_dir, "out"), f"{JOB_MOUNT}/out", ro=False))
        mounts.append(
            Mount(spec.path(job_dir, "checkpoints"), f"{JOB_MOUNT}/checkpoints", ro=False)
        )
        cfg: dict[str, Any] = {"env": {"PATH": "/usr/bin:/bin"}, "rlimits": self.rlimits(limits)}
        uid = self._uid()
        if uid is not None:
            # bwrap runs as the sandbox uid and could not reach sources under 0700 dirs (root's
            # home, the workspace): bind them under a 0755 staging dir in a private mount namespace.
            stage = run.stage / "m"
            stage.mkdir()
            os.chmod(stage, 0o755)
            cfg.update(stage_dir=str(stage), uid=uid, gid=SANDBOX_GID)
            cfg["stage_binds"] = [[str(m.src), str(i), m.ro] for i, m in enumerate(mounts)]
            sources = [str(stage / str(i)) for i in range(len(mounts))]
        else:
            sources = [str(m.src) for m in mounts]
        bpf_fd = _high_fd(os.open(run.stage, os.O_TMPFILE | os.O_RDWR, 0o600))
        os.write(bpf_fd, seccomp.build_bpf())
        os.lseek(bpf_fd, 0, os.SEEK_SET)
        run.fds.append(bpf_fd)
        args = [
            self.bwrap,
            "--unshare-all",
            "--unshare-user",
            "--disable-userns",
            "--die-with-parent",
            "--new-session",
            "--clearenv",
            "--hostname",
            "sandbox",
            "--ro-bind",
            "/usr",
            "/usr",
        ]
        for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
            if os.path.islink(top):
                args += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                args += ["--ro-bind", top, top]
        for f in (
            "/etc/ld.so.cache",
            "/etc/passwd",
            "/etc/group",
            "/etc/nsswitch.conf",
            "/etc/localtime",
        ):
            args += ["--ro-bind-try", f, f]
        quota = int(limits.output_quota_mb * 2**20)
        args += [
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--size",
            str(quota),
            "--tmpfs",
            "/tmp",
            "--dir",
            JOB_MOUNT,
        ]
        if limits.gpu:
            for dev in sorted(Path("/dev").glob("nvidia*")):
                args += ["--dev-bind-try", str(dev), str(dev)]
        for m, src in zip(mounts, sources, strict=True):
            args += ["--ro-bind" if m.ro else "--bind", src, m.dest]
        for k, v in env.items():
            args += ["--setenv", k, v]
        # The trampoline marks that the sandbox is set up and the job starts: a failure before
        # that is the platform's, after it the job's.
        tramp = f'echo exec >&{STATUS_FD}; exec {STATUS_FD}>&-; exec "$@"'
        args += [
            "--chdir",
            JOB_MOUNT,
            "--seccomp",
            str(bpf_fd),
            "--",
            "/bin/sh",
            "-c",
            tramp,
            "sh",
            *argv,
        ]
        cfg["argv"] = args
        cfg["status_dup"] = STATUS_FD
        cfg["cwd"] = None  # bwrap --chdir
        return cfg


class FakeLauncher(Launcher):
    """For unit tests of the worker and pipeline: no process; ``behaviour(job_dir, spec)`` writes
    whatever outputs the test wants and returns an error class (None for success)."""

    tier = "fake"

    def __init__(
        self, behaviour: Callable[[Path, JobSpec], str | None] | None = None, tier: str = "A"
    ) -> None:
        self.behaviour = behaviour or write_uniform_predictions
        self.tier = tier
        self.calls: list[int] = []

    def launch(self, job_dir, spec, limits, *, should_cancel=None, on_poll=None):  # type: ignore[no-untyped-def]
        self.calls.append(spec.job_id)
        t0 = time.monotonic()
        (Path(job_dir) / spec.out).mkdir(exist_ok=True)
        err = self.behaviour(Path(job_dir), spec)
        if should_cancel is not None and should_cancel():
            err = "cancelled"
        if on_poll is not None:
            on_poll()
        return LaunchResult(
            exit_code=0 if err is None else 1,
            error_class=err,
            wall_s=round(time.monotonic() - t0, 3),
            peak_rss_mb=1.0,
            tier=self.tier,
            timed_out=err == "timeout",
            oom=err == "out_of_memory",
            cancelled=err == "cancelled",
            message=err or "",
        )


def write_uniform_predictions(job_dir: Path, spec: JobSpec) -> str | None:
    """A FakeLauncher behaviour: equal probabilities for every holdout row, plus the progress and
    compute records a real job writes."""
    import pandas as pd

    rows = pd.read_parquet(spec.path(job_dir, "holdout_texts"))["row_id"].tolist()
    names = [c["name"] for c in spec.classes]
    k = len(names)
    out = spec.path(job_dir, "out")
    (out / "predictions.json").write_text(
        json.dumps({"classes": names, "row_ids": rows, "probs": [[1 / k] * k for _ in rows]})
    )
    (out / "progress.jsonl").write_text(
        json.dumps({"ts": time.time(), "stage": "predict", "step": 1, "total": 1}) + "\n"
    )
    from bedside.contracts import Compute

    compute = Compute(flops=1e12, wall_s=0.01, peak_rss_mb=1.0, device="cpu")
    (out / "compute.json").write_text(json.dumps(compute.to_dict()))
    return None
