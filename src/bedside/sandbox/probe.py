"""Which isolation tier this host gives, found by really launching a tiny job in each.

    A  bubblewrap: user, pid, mount, net, ipc, uts namespaces; minimal read-only filesystem;
       seccomp; rlimits; cgroups; unprivileged uid
    B  network + mount namespace, unprivileged uid, seccomp, rlimits, cgroups (needs root)
    C  seccomp + rlimits (+ cgroups when present)

A tier counts only if its tiny job ran, could not open an AF_INET socket, and (A, B) did not run
as root. ``launcher_for_policy`` returns the best launcher and refuses (``SandboxError`` naming
what is missing and how to install it) when the best is below the policy's ``min_tier``.

Example::

    report = probe()
    report.tier          # "A"
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bedside.config import TIERS, JobLimits, Policy
from bedside.errors import SandboxError
from bedside.jobs.spec import JobSpec
from bedside.sandbox import cgroups, seccomp
from bedside.sandbox.launch import (
    CGROUP_PREFIX,
    STAGE_PREFIX,
    BwrapLauncher,
    Launcher,
    NamespaceLauncher,
    ProcessLauncher,
    RlimitLauncher,
)

CHECK = (
    "import json, os, socket\n"
    "r = {'uid': os.getuid()}\n"
    "try:\n"
    "    socket.socket(socket.AF_INET, socket.SOCK_STREAM); r['inet'] = 'open'\n"
    "except OSError as e:\n"
    "    r['inet'] = e.errno\n"
    "print('PROBE' + json.dumps(r))\n"
)
HINTS = {
    "A": "Install bubblewrap (`apt-get install bubblewrap`) and make sure unprivileged user namespaces are enabled.",
    "B": "Run the worker as root (it creates network and mount namespaces and switches to uid 65534).",
    "C": "Install seccomp support: `pip install pyseccomp` and `apt-get install libseccomp2`.",
}
LAUNCHERS: dict[str, type[ProcessLauncher]] = {
    "A": BwrapLauncher,
    "B": NamespaceLauncher,
    "C": RlimitLauncher,
}


@dataclass
class Check:
    ok: bool
    detail: str


@dataclass
class ProbeReport:
    tier: str | None  # best tier that works, None: not even C
    checks: dict[str, Check] = field(default_factory=dict)
    tiers: dict[str, Check] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "tiers": {k: asdict(v) for k, v in self.tiers.items()},
            "checks": {k: asdict(v) for k, v in self.checks.items()},
        }

    def missing_for(self, tier: str) -> str:
        """What stands between this host and ``tier``, and how to get it."""
        bad = [
            f"tier {t}: {self.tiers[t].detail}"
            for t in TIERS
            if t in self.tiers and TIERS.index(t) <= TIERS.index(tier) and not self.tiers[t].ok
        ]
        return "; ".join(bad) or "nothing"


def _try_tier(tier: str) -> Check:
    stage = Path(tempfile.mkdtemp(prefix="bedside-probe-"))
    try:
        os.chmod(stage, 0o755)
        job = stage / "job"
        job.mkdir(mode=0o755)
        os.chmod(job, 0o755)
        spec = JobSpec(job_id=0, kind="phase1", model_kind="encoder", manifest={}, classes=[])
        spec.write(job)
        os.chmod(job / "spec.json", 0o644)
        launcher = LAUNCHERS[tier](
            test_command=[sys.executable, "-I", "-S", "-c", CHECK], poll_s=0.02
        )
        limits = JobLimits(cpus=1, memory_gb=1.0, wall_time_s=30, output_quota_mb=16, pids=64)
        try:
            res = launcher.launch(job, spec, limits)
        except SandboxError as e:
            return Check(False, str(e))
        line = next((ln for ln in res.log_tail.splitlines() if ln.startswith("PROBE")), None)
        if res.exit_code != 0 or line is None:
            last = res.log_tail.strip().splitlines()[-1:] or [res.message or "no output"]
            return Check(False, f"the test launch failed ({res.error_class}): {last[0][:200]}")
        got = json.loads(line[5:])
        if got["inet"] == "open":
            return Check(False, "the test job could open an AF_INET socket")
        if tier in ("A", "B") and got["uid"] == 0 and os.geteuid() == 0:
            return Check(False, "the test job ran as root")
        return Check(
            True, f"test launch ok in {res.wall_s:.2f} s (uid {got['uid']}, AF_INET blocked)"
        )
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _bwrap_version() -> Check:
    path = shutil.which("bwrap")
    if path is None:
        return Check(False, "bwrap not found on PATH (`apt-get install bubblewrap`)")
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        return Check(False, f"{path} does not run: {e}")
    return Check(True, f"{path} ({out})")


def run_probe() -> ProbeReport:
    """Probe now (a few tiny launches, well under a second each)."""
    rep = ProbeReport(tier=None)
    ok, detail = seccomp.available()
    rep.checks["seccomp"] = Check(ok, detail)
    rep.checks["bwrap"] = _bwrap_version()
    cg, cg_detail = cgroups.detect()
    rep.checks["cgroups"] = Check(cg != "none", cg_detail)
    rep.checks["root"] = Check(
        os.geteuid() == 0, f"euid {os.geteuid()} (root can switch to uid 65534 and set cgroups)"
    )
    for tier in reversed(TIERS):  # C, B, A
        if not ok:
            rep.tiers[tier] = Check(False, f"seccomp unavailable: {detail}. {HINTS['C']}")
            continue
        if tier == "A" and not rep.checks["bwrap"].ok:
            rep.tiers[tier] = Check(False, f"{rep.checks['bwrap'].detail}. {HINTS['A']}")
            continue
        if tier == "B" and os.geteuid() != 0:
            rep.tiers[tier] = Check(False, f"not root. {HINTS['B']}")
            continue
        chk = _try_tier(tier)
        if not chk.ok:
            chk = Check(False, f"{chk.detail}. {HINTS[tier]}")
        rep.tiers[tier] = chk
    for tier in TIERS:
        if rep.tiers[tier].ok:
            rep.tier = tier
            break
    return rep


_cache: ProbeReport | None = None
_cache_lock = threading.Lock()


def probe(refresh: bool = False) -> ProbeReport:
    """The host's tier, probed once per process."""
    global _cache
    with _cache_lock:
        if _cache is None or refresh:
            _cache = run_probe()
        return _cache


def launcher_for_policy(policy: Policy, report: ProbeReport | None = None) -> Launcher:
    """The best launcher this host supports, if it meets ``policy.min_tier``."""
    rep = report or probe()
    if rep.tier is None or TIERS.index(rep.tier) > TIERS.index(policy.min_tier):
        found = f"tier {rep.tier}" if rep.tier else "no isolation tier at all"
        raise SandboxError(
            f"the policy requires isolation tier {policy.min_tier} or better, but this host offers {found}: "
            f"{rep.missing_for(policy.min_tier)}",
            hint="Fix the above, or (knowing what it means) lower the policy: `bedside policy set min_tier=B`.",
        )
    return LAUNCHERS[rep.tier]()


def sweep_stale() -> int:
    """Remove what a killed launcher left: staging dirs and cgroups named after a dead pid.
    Returns how many were removed."""
    removed = 0
    tmp = Path(tempfile.gettempdir())
    for d in tmp.glob(f"{STAGE_PREFIX}*"):
        pid = d.name[len(STAGE_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(d, ignore_errors=True)
            removed += 1
    for base in cgroups.v1_dirs().values():
        for d in base.glob(f"{CGROUP_PREFIX}*"):
            pid = d.name[len(CGROUP_PREFIX) :].split("-", 1)[0]
            if pid.isdigit() and not _alive(int(pid)):
                cg = cgroups.JobCgroup(version="v1", dirs={"x": d})
                cg.close()
                removed += 1
    v2 = cgroups.v2_dir()
    if v2 is not None:
        for d in v2.glob(f"{CGROUP_PREFIX}*"):
            pid = d.name[len(CGROUP_PREFIX) :].split("-", 1)[0]
            if pid.isdigit() and not _alive(int(pid)):
                cgroups.JobCgroup(version="v2", dirs={"v2": d}).close()
                removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
