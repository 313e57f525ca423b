"""A private local Ray cluster for tests and benchmarks: a head that runs no jobs (0 CPUs) and
worker nodes on loopback that can be added and SIGKILLed (a node that dies mid-job).

Example::

    with LocalCluster() as c:
        node = c.add_node(cpus=2)
        ...
        node.kill()          # raylet and its workers, at once
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ray_bin() -> str:
    found = shutil.which("ray")
    if found is None:
        raise RuntimeError("the `ray` command is not installed: pip install -e '.[cluster]'")
    return found


class Node:
    def __init__(self, proc: subprocess.Popen[bytes], name: str) -> None:
        self.proc, self.name = proc, name

    def running(self, task: str) -> int:
        """How many of this node's Ray workers are executing ``task`` now (a worker renames
        itself ``ray::<task>`` while it runs one)."""
        import psutil  # a dependency of ray[default]

        try:
            procs = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return 0
        n = 0
        for p in procs:
            with contextlib.suppress(psutil.Error):
                n += any(part.startswith(f"ray::{task}") for part in p.cmdline()[:1])
        return n

    def kill(self) -> None:
        """SIGKILL the node's whole process group (raylet, its workers and their sandboxes)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


class LocalCluster:
    def __init__(self, head_cpus: int = 0) -> None:
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.tmp = Path(tempfile.mkdtemp(prefix="bedside-ray-"))
        self.head_cpus = head_cpus
        self.nodes: list[Node] = []
        self._head: subprocess.Popen[bytes] | None = None

    def _start(self, args: list[str], name: str) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"{name}.log").open("wb")
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
        return subprocess.Popen(
            [_ray_bin(), "start", "--block", "--node-ip-address=127.0.0.1", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )

    def start(self) -> LocalCluster:
        self._head = self._start(
            [
                "--head",
                f"--port={self.port}",
                f"--num-cpus={self.head_cpus}",
                "--include-dashboard=false",
                f"--temp-dir={self.tmp / 'ray'}",
            ],
            "head",
        )
        self._wait(lambda: self._alive_nodes() >= 1, "the head")
        return self

    def add_node(self, cpus: int = 2, resources: dict[str, float] | None = None) -> Node:
        import json

        before = self._alive_nodes()
        args = [f"--address={self.address}", f"--num-cpus={cpus}"]
        if resources:
            args.append(f"--resources={json.dumps(resources)}")
        node = Node(self._start(args, f"node{len(self.nodes) + 1}"), f"node{len(self.nodes) + 1}")
        self.nodes.append(node)
        self._wait(lambda: self._alive_nodes() > before, node.name)
        return node

    def _alive_nodes(self) -> int:
        """Active nodes, as ``ray status`` (which needs no dashboard) lists them."""
        r = subprocess.run(
            [_ray_bin(), "status", f"--address={self.address}"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if r.returncode != 0 or "Active:" not in r.stdout:
            return 0
        active = r.stdout.split("Active:", 1)[1].split("Pending:", 1)[0]
        return sum(1 for line in active.splitlines() if "node_" in line)

    def _wait(self, pred: Any, what: str, timeout_s: float = 120) -> None:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if pred():
                return
            time.sleep(0.5)
        logs = "\n".join(p.read_text()[-2000:] for p in self.tmp.glob("*.log"))
        raise RuntimeError(f"Ray {what} did not come up in {timeout_s:g} s:\n{logs}")

    def stop(self) -> None:
        for n in self.nodes:
            n.kill()
        if self._head is not None:
            Node(self._head, "head").kill()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
