"""Per-job cgroups (memory, pids, cpu), v1 or v2, detected at run time.

A job's cgroups nest under the launcher's own cgroup (read from ``/proc/self/cgroup``), so a
launcher that is itself confined passes its limits on. ``JobCgroup.create`` makes them,
the sandbox helper joins them before anything else runs, and ``close()`` (always, in ``finally``)
kills whatever is left in them and removes them.

Example::

    cg = JobCgroup.create("job-7-ab12", memory_bytes=2 << 30, pids=256, cpus=2)
    try:
        ...  # start the helper with cg.procs_files()
    finally:
        cg.close()
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from bedside.errors import SandboxError

V1_CONTROLLERS = ("memory", "pids", "cpu")
CPU_PERIOD_US = 100_000


def _mounts() -> list[tuple[str, str, set[str]]]:
    out: list[tuple[str, str, set[str]]] = []
    try:
        text = Path("/proc/mounts").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[2] in ("cgroup", "cgroup2"):
            out.append((parts[1], parts[2], set(parts[3].split(","))))
    return out


def _own_paths() -> dict[str, str]:
    """Controller (or "" for v2) -> this process's cgroup path."""
    own: dict[str, str] = {}
    try:
        text = Path("/proc/self/cgroup").read_text()
    except OSError:
        return own
    for line in text.splitlines():
        _hid, ctrls, path = line.split(":", 2)
        for c in ctrls.split(",") if ctrls else [""]:
            own[c] = path
    return own


def v1_dirs() -> dict[str, Path]:
    """Where a v1 job cgroup would be created per controller (the launcher's own cgroup)."""
    own = _own_paths()
    dirs: dict[str, Path] = {}
    for mnt, fstype, opts in _mounts():
        if fstype != "cgroup":
            continue
        for c in V1_CONTROLLERS:
            if c in opts and c in own and c not in dirs:
                dirs[c] = Path(mnt) / own[c].lstrip("/")
    return dirs


def v2_dir() -> Path | None:
    """The launcher's own v2 cgroup if memory and pids can be delegated below it."""
    own = _own_paths()
    for mnt, fstype, _opts in _mounts():
        if fstype != "cgroup2" or "" not in own:
            continue
        d = Path(mnt) / own[""].lstrip("/")
        try:
            ctrls = set((d / "cgroup.controllers").read_text().split())
        except OSError:
            continue
        if {"memory", "pids"} <= ctrls:
            return d
    return None


def detect() -> tuple[str, str]:
    """("v1" | "v2" | "none", detail) for what this host lets the launcher use."""
    dirs = v1_dirs()
    usable = [c for c, d in dirs.items() if os.access(d, os.W_OK)]
    if {"memory", "pids"} <= set(usable):
        return "v1", f"cgroup v1 controllers: {', '.join(sorted(usable))}"
    d = v2_dir()
    if d is not None and os.access(d, os.W_OK):
        return "v2", f"cgroup v2 at {d}"
    return "none", "no writable memory+pids cgroup (v1) nor a delegated v2 subtree"


@dataclass
class JobCgroup:
    version: str
    dirs: dict[str, Path] = field(default_factory=dict)  # controller (or "v2") -> dir
    closed: bool = False

    @classmethod
    def create(cls, name: str, memory_bytes: int, pids: int, cpus: float) -> JobCgroup:
        version, detail = detect()
        if version == "none":
            raise SandboxError(f"cgroups are not usable here: {detail}.")
        cg = cls(version=version)
        try:
            if version == "v1":
                for c, base in v1_dirs().items():
                    d = base / name
                    d.mkdir()
                    cg.dirs[c] = d
                mem = cg.dirs["memory"]
                (mem / "memory.limit_in_bytes").write_text(str(memory_bytes))
                memsw = mem / "memory.memsw.limit_in_bytes"
                if memsw.exists():  # no swapping around the limit
                    memsw.write_text(str(memory_bytes))
                (cg.dirs["pids"] / "pids.max").write_text(str(pids))
                # A CFS quota at or above the host's core count limits nothing but still
                # throttles bursty multi-threaded code at period edges: skip it then.
                if "cpu" in cg.dirs and cpus < (os.cpu_count() or 1):
                    (cg.dirs["cpu"] / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
                    (cg.dirs["cpu"] / "cpu.cfs_quota_us").write_text(str(int(cpus * CPU_PERIOD_US)))
            else:
                v2base = v2_dir()
                if v2base is None:
                    raise OSError("the v2 cgroup disappeared")
                base = v2base
                sub = (base / "cgroup.subtree_control").read_text().split()
                for c in ("memory", "pids", "cpu"):
                    if c not in sub:
                        (base / "cgroup.subtree_control").write_text(f"+{c}")
                d = base / name
                d.mkdir()
                cg.dirs["v2"] = d
                (d / "memory.max").write_text(str(memory_bytes))
                if (d / "memory.swap.max").exists():
                    (d / "memory.swap.max").write_text("0")
                (d / "pids.max").write_text(str(pids))
                if (d / "cpu.max").exists() and cpus < (os.cpu_count() or 1):
                    (d / "cpu.max").write_text(f"{int(cpus * CPU_PERIOD_US)} {CPU_PERIOD_US}")
        except OSError as e:
            cg.close()
            raise SandboxError(f"could not set up the job's cgroups ({version}): {e}.") from e
        return cg

    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs.values()]

    def pids(self) -> set[int]:
        found: set[int] = set()
        for d in self.dirs.values():
            try:
                found.update(int(x) for x in (d / "cgroup.procs").read_text().split())
            except OSError:
                continue
        return found

    def oom_killed(self) -> bool:
        """Did the kernel OOM-kill something in this cgroup (or hit the limit)?"""
        if self.version == "v1" and "memory" in self.dirs:
            ctl = self._kv(self.dirs["memory"] / "memory.oom_control")
            if ctl.get("oom_kill", 0) > 0:
                return True
            return (
                _read_int(self.dirs["memory"] / "memory.failcnt") > 0
                and ctl.get("under_oom", 0) > 0
            )
        if self.version == "v2":
            ev = self._kv(self.dirs["v2"] / "memory.events")
            return ev.get("oom_kill", 0) > 0
        return False

    def peak_memory_mb(self) -> float | None:
        if self.version == "v1" and "memory" in self.dirs:
            v = _read_int(self.dirs["memory"] / "memory.max_usage_in_bytes")
        elif self.version == "v2":
            v = _read_int(self.dirs["v2"] / "memory.peak")
        else:
            return None
        return round(v / 2**20, 1) if v > 0 else None

    def kill_all(self, timeout_s: float = 5.0) -> None:
        """SIGKILL every process in the cgroup until none is left (forks race, so loop)."""
        if self.version == "v2" and (self.dirs["v2"] / "cgroup.kill").exists():
            with contextlib.suppress(OSError):
                (self.dirs["v2"] / "cgroup.kill").write_text("1")
        deadline = time.monotonic() + timeout_s
        while True:
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                return
            time.sleep(0.01)

    def close(self) -> None:
        """Kill what is left and remove the cgroup directories. Idempotent."""
        if self.closed:
            return
        self.kill_all()
        for d in self.dirs.values():
            for _ in range(200):  # rmdir fails (EBUSY) while a killed task is still exiting
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)
        self.closed = True

    @staticmethod
    def _kv(path: Path) -> dict[str, int]:
        out: dict[str, int] = {}
        try:
            for line in path.read_text().splitlines():
                k, _, v = line.partition(" ")
                if v.strip().lstrip("-").isdigit():
                    out[k] = int(v)
        except OSError:
            pass
        return out


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return 0
