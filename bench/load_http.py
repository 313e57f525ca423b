"""Load and faults through the HTTP API: N contributors x 5 submissions POSTed concurrently to a
real uvicorn server on loopback (one API token per contributor), each job the fast stand-in engine
(bedside.testing.standin) in the real tier-A sandbox, 50 clients polling results and the
leaderboard meanwhile; faults: the API server SIGKILLed and started again on the same port
(clients retry), a Ray worker node SIGKILLed mid-run.

    python bench/load_http.py --quick [--pg URL] [--ray]

--quick: 4 contributors, 3 runs (SQLite 2 workers + API restart, PostgreSQL 2 workers, Ray + node
kill), under 3 minutes. Default: --contributors (100) on SQLite and PostgreSQL with 1, 2, 4 workers
and the Ray run; every run stops at --timeout. --pg defaults to $BEDSIDE_TEST_POSTGRES; Ray runs
on a private local cluster (bedside.testing.raynodes) when ray is installed.

Checks per run: every submission accepted exactly once or refused with a reason; the number
accepted per contributor is exactly min(limit, 5) (every 4th contributor has a limit of 3); each
accepted submission's jobs are done with exactly one result (0 lost, 0 run twice).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bedside.store import schema
from bedside.workspace import Workspace

sys.path.insert(0, str(Path(__file__).parent))
import load  # noqa: E402  (bench/load.py: corpus, checks, worker entry point)

PER = 5
HERE = Path(__file__).resolve()


def limit_of(c: int) -> int:
    """Every 4th contributor may submit only 3 of their 5 bundles."""
    return 3 if c % 4 == 0 else PER


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_workspace(root: Path, db_url: str | None) -> tuple[Workspace, str]:
    """A workspace with the tiny corpus of load.py and no contributors yet."""
    ws, owner, _ = load.seed_corpus(root, db_url)
    return ws, owner


def bundle_archives(base: Path, n: int) -> list[bytes]:
    """``n`` distinct tar.gz bundles (one tiny random encoder, a different name in each)."""
    import tomllib

    import tomli_w

    from bedside.testing.tinymodels import make_tiny_bundle

    src = make_tiny_bundle(base / "tiny", kind="encoder", classes=load.CLASSES)
    manifest = tomllib.loads((src / "bedside.toml").read_text())
    files = {p.name: p.read_bytes() for p in src.iterdir() if p.name != "bedside.toml"}
    out = []
    for i in range(n):
        manifest["name"] = f"standin-{i}"
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tf:
            for name, data in [*files.items(), ("bedside.toml", tomli_w.dumps(manifest).encode())]:
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), 0o644
                tf.addfile(info, io.BytesIO(data))
        out.append(buf.getvalue())
    return out


class Server:
    """uvicorn in a child process, killable and restartable on the same port."""

    def __init__(self, root: Path, port: int) -> None:
        self.root, self.port = root, port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE), "_serve", str(self.root), str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=(self.root / "server.log").open("ab"),
        )
        return self.wait_up()

    def wait_up(self, timeout_s: float = 60) -> float:
        import httpx

        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout_s:
            try:
                if httpx.get(f"{self.url}/api/health", timeout=2).status_code == 200:
                    return time.monotonic() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the API server did not answer in {timeout_s} s")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def serve_main(root: str, port: int) -> None:
    import uvicorn

    from bedside.web.app import create_app

    uvicorn.run(
        create_app(Workspace.open(Path(root))), host="127.0.0.1", port=port, log_level="warning"
    )


RETRY = (
    "ConnectError",
    "ReadError",
    "RemoteProtocolError",
    "WriteError",
    "ReadTimeout",
    "ConnectTimeout",
)


def request(method: str, url: str, retries: list[int], **kw: Any) -> Any:
    """One request, retried (up to 60 s) when the connection fails (the server restarting)."""
    import httpx

    end = time.monotonic() + 60
    while True:
        try:
            return httpx.request(method, url, timeout=30, **kw)
        except httpx.HTTPError as e:
            if type(e).__name__ not in RETRY or time.monotonic() > end:
                raise
            retries.append(1)
            time.sleep(0.2)


class Pollers:
    """``n`` client threads polling own results and the leaderboard until stopped."""

    def __init__(self, url: str, tokens: list[str], sub_ids: dict[int, list[int]], n: int) -> None:
        self.url, self.tokens, self.sub_ids, self.n = url, tokens, sub_ids, n
        self.lat: list[float] = []
        self.codes: Counter[str] = Counter()
        self.stop = threading.Event()
        self.pause = threading.Event()  # set while the server is down on purpose
        self.threads = [threading.Thread(target=self._loop, args=(i,)) for i in range(n)]

    def _loop(self, i: int) -> None:
        import httpx

        c = i % len(self.tokens)
        h = {"Authorization": f"Bearer {self.tokens[c]}"}
        with httpx.Client(timeout=30) as client:
            k = 0
            while not self.stop.is_set():
                k += 1
                ids = self.sub_ids.get(c) or []
                path = (
                    f"/api/submissions/{ids[k % len(ids)]}/results"
                    if ids and k % 2
                    else "/api/leaderboard"
                )
                t0 = time.monotonic()
                try:
                    code = str(client.get(self.url + path, headers=h).status_code)
                except httpx.HTTPError as e:
                    code = type(e).__name__
                if self.pause.is_set():
                    self.codes["during_restart:" + code] += 1
                else:
                    self.lat.append(time.monotonic() - t0)
                    self.codes[code] += 1
                time.sleep(0.05)

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.lat)
        n = len(lat)
        ok = self.codes.get("200", 0)
        counted = sum(v for k, v in self.codes.items() if not k.startswith("during_restart"))
        return {
            "clients": self.n,
            "requests": counted,
            "p50_ms": round(lat[n // 2] * 1000, 1) if n else None,
            "p99_ms": round(lat[min(n - 1, int(n * 0.99))] * 1000, 1) if n else None,
            "error_rate": round(1 - ok / counted, 4) if counted else None,
            "codes": dict(self.codes),
        }


def run(
    label: str,
    root: Path,
    db_url: str | None,
    n_contrib: int,
    workers: int,
    archives: list[bytes],
    timeout_s: float,
    ray: Any = None,
    restart_api: bool = False,
    kill_node: bool = False,
    n_pollers: int = 50,
) -> dict[str, Any]:
    ws, owner = make_workspace(root, db_url)
    srv = Server(ws.root, free_port())
    srv.start()
    oh = {"Authorization": f"Bearer {owner}"}
    retries: list[int] = []
    tokens = []
    for c in range(n_contrib):
        r = request(
            "POST",
            f"{srv.url}/api/contributors",
            retries,
            headers=oh,
            json={"name": f"vendor{c}", "max_submissions": limit_of(c), "budget_pflops": 1e6},
        )
        assert r.status_code == 201, r.text
        tokens.append(r.json()["token"])

    cmd = [sys.executable, str(HERE.parent / "load.py"), "_worker", str(ws.root), ray or ""]
    procs: list[subprocess.Popen[bytes]] = []
    sub_ids: dict[int, list[int]] = {}
    outcomes: list[tuple[int, int, int, str, int | None]] = []  # c, k, status, code, sub id
    lock = threading.Lock()
    pollers = Pollers(srv.url, tokens, sub_ids, n_pollers)

    def submit(ck: tuple[int, int]) -> None:
        import httpx

        c, k = ck
        try:
            r = request(
                "POST",
                f"{srv.url}/api/submissions",
                retries,
                headers={"Authorization": f"Bearer {tokens[c]}"},
                files={"bundle": (f"b{c}-{k}.tar.gz", archives[c * PER + k])},
            )
        except (
            httpx.ReadTimeout
        ):  # no answer in 30 s: counted, not retried (a POST is not idempotent)
            with lock:
                outcomes.append((c, k, 0, "no_answer_in_30s", None))
            return
        body = r.json()
        sid = body.get("id") if r.status_code == 201 else None
        code = "accepted" if sid else body.get("error", {}).get("code", str(r.status_code))
        with lock:
            outcomes.append((c, k, r.status_code, code, sid))
            if sid:
                sub_ids.setdefault(c, []).append(int(sid))

    t0 = time.monotonic()
    for _ in range(workers):
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    for t in pollers.threads:
        t.start()
    faults: dict[str, Any] = {}
    pool = ThreadPoolExecutor(max_workers=min(32, n_contrib * PER))
    futs = [pool.submit(submit, (c, k)) for c in range(n_contrib) for k in range(PER)]
    if restart_api:  # kill the server while submissions are in flight, start it again
        while sum(f.done() for f in futs) < len(futs) // 3:
            time.sleep(0.05)
        pollers.pause.set()
        tk = time.monotonic()
        srv.kill()
        srv.start()
        faults["api_restart_recovery_s"] = round(time.monotonic() - tk, 2)
        pollers.pause.clear()
    for f in futs:
        f.result()
    pool.shutdown()
    t_submitted = time.monotonic() - t0
    j = schema.jobs
    node_killed_at: float | None = None
    while time.monotonic() - t0 < timeout_s:
        with ws.store.read() as conn:
            left = conn.execute(
                select(func.count()).select_from(j).where(j.c.state.in_(("queued", "running")))
            ).scalar_one()
            done = conn.execute(
                select(func.count()).select_from(j).where(j.c.state == "done")
            ).scalar_one()
            running = conn.execute(
                select(func.count()).select_from(j).where(j.c.state == "running")
            ).scalar_one()
        if left == 0:
            break
        busy = (
            [n for n in ray_cluster.nodes if n.running("run_on_node")]
            if kill_node and node_killed_at is None and done >= 2 and running and ray is not None
            else []
        )
        if busy:  # kill a node that has a job in flight (Ray may place them all on one)
            faults["node_killed_with_running_jobs"] = running
            faults["tasks_on_killed_node"] = busy[0].running("run_on_node")
            faults["done_at_kill"] = done
            busy[0].kill()
            node_killed_at = time.monotonic()
        for p in list(procs):  # a --once worker exits when idle; keep the pool full
            if p.poll() is not None:
                procs.remove(p)
                procs.append(
                    subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                )
        time.sleep(0.3)
    wall = time.monotonic() - t0
    pollers.stop.set()
    for t in pollers.threads:
        t.join()
    for p in procs:
        p.kill()
        p.wait()
    srv.kill()
    if node_killed_at is not None:
        faults["node_recovery_s"] = requeued_recovery(ws, node_killed_at, t0)
    c = load.check(ws)
    per = Counter(o[0] for o in outcomes if o[3] == "accepted")
    refused = Counter(o[3] for o in outcomes if o[3] != "accepted")
    with ws.store.read() as conn:
        s = schema.submissions
        db_subs = conn.execute(select(func.count()).select_from(s)).scalar_one()
    limits_exact = all(per.get(i, 0) == limit_of(i) for i in range(n_contrib))
    expected = sum(limit_of(i) for i in range(n_contrib))
    res = {
        "run": label,
        "workers": workers,
        "submissions": len(outcomes),
        "accepted": sum(per.values()),
        "accepted_expected": expected,
        "db_submissions": db_subs,
        "refused": dict(refused),
        "limits_exact": limits_exact,
        "submit_s": round(t_submitted, 1),
        "wall_s": round(wall, 1),
        "jobs_per_min": round(c["jobs"] / wall * 60, 1),
        "client_retries": len(retries),
        **c,
        **faults,
        "polling": pollers.summary(),
    }
    pol = res["polling"]
    print(
        f"{label:<34} workers={workers} subs={len(outcomes)} accepted={res['accepted']}/"
        f"{expected} db={db_subs} refused={dict(refused)} limits_exact={limits_exact} "
        f"jobs={c['jobs']} wall={wall:.1f}s {res['jobs_per_min']} jobs/min "
        f"lost={c['not_done']} twice={c['run_twice_to_completion']} attempts={c['attempts']} "
        f"retries={len(retries)} {faults} | polls={pol['requests']} p50={pol['p50_ms']}ms "
        f"p99={pol['p99_ms']}ms err={pol['error_rate']}",
        flush=True,
    )
    ws.store.dispose()
    return res


def requeued_recovery(ws: Workspace, killed_at: float, t0: float) -> float | None:
    """Seconds from the node kill until the last job that was running on it was done again
    (the slowest attempt > 1 to finish), from the jobs' finished_at stamps; None if no job
    needed a second attempt."""
    j = schema.jobs
    with ws.store.read() as conn:
        rows = conn.execute(select(j.c.finished_at).where(j.c.attempts > 1)).scalars().all()
    if not rows:
        return None
    import datetime as dt

    kill_wall = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=time.monotonic() - killed_at)
    stamps = [dt.datetime.fromisoformat(r) if isinstance(r, str) else r for r in rows if r]
    last = max(r if r.tzinfo else r.replace(tzinfo=dt.UTC) for r in stamps)
    return round((last - kill_wall).total_seconds(), 1)


ray_cluster: Any = None


def main() -> None:
    global ray_cluster
    if len(sys.argv) > 1 and sys.argv[1] == "_serve":
        serve_main(sys.argv[2], int(sys.argv[3]))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="4 contributors, 3 runs, < 3 minutes")
    ap.add_argument("--contributors", type=int, default=100)
    ap.add_argument("--ray-contributors", type=int, default=20, help="fewer on Ray (time)")
    ap.add_argument("--pollers", type=int, default=50)
    ap.add_argument("--pg", default=os.environ.get("BEDSIDE_TEST_POSTGRES"))
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--ray-only", action="store_true", help="only the Ray run")
    ap.add_argument("--pg-only", action="store_true", help="only the PostgreSQL runs")
    ap.add_argument("--timeout", type=float, default=300, help="per run")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bedside-loadhttp-"))
    n = 4 if a.quick else a.contributors
    n_ray = 4 if a.quick else min(a.ray_contributors, n)
    archives = bundle_archives(tmp, n * PER)
    plan: list[tuple[str, str | None, int, bool]] = []  # label, backend, workers, restart
    counts = (2,) if a.quick else (1, 2, 4)
    for w in () if a.pg_only else counts:
        plan.append(("sqlite", None, w, w == 2))
    if a.pg:
        for w in counts:
            plan.append(("postgres", a.pg, w, False))
    else:
        print("postgres: left out (no --pg / BEDSIDE_TEST_POSTGRES)")
    out = []
    for i, (name, base, w, restart) in enumerate([] if a.ray_only else plan):
        label = name + (" + API restart" if restart else "")
        url = load.fresh_pg_url(base) if base else None
        out.append(
            run(
                label,
                tmp / f"ws{i}",
                url,
                n,
                w,
                archives,
                a.timeout,
                None,
                restart,
                False,
                a.pollers,
            )
        )
    try:
        import ray  # noqa: F401
    except ImportError:
        a.no_ray = True
        print("ray: left out (pip install -e '.[cluster]')")
    if not a.no_ray:
        from bedside.testing.raynodes import LocalCluster

        os.environ["BEDSIDE_BENCH_STANDIN_S"] = "4"  # tasks in flight when the node dies
        with LocalCluster() as ray_cluster:
            ray_cluster.add_node(cpus=2)
            ray_cluster.add_node(cpus=2)
            out.append(
                run(
                    "ray executor (2 nodes) + node kill",
                    tmp / "wsray",
                    None,
                    n_ray,
                    1,
                    archives,
                    a.timeout,
                    ray_cluster.address,
                    False,
                    True,
                    a.pollers,
                )
            )
    print(json.dumps({"bench": "load_http", "contributors": n, "per": PER, "runs": out}))


if __name__ == "__main__":
    main()
