"""Attacks and faults a job may try, each run through the real launcher, each asserting the
outcome. The job code here is test-only Python (vendor bundles never carry code); it stands in
for a model that found a way to execute code inside the engine."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.sandbox.conftest import CANARY, JobDir, result_code

ISOLATING = ["A", "B"]  # tiers that run as an unprivileged uid in their own network namespace


class _TcpServer:
    """Counts connections to a loopback port on the host."""

    def __init__(self, kind: int = socket.SOCK_STREAM) -> None:
        self.sock = socket.socket(socket.AF_INET, kind)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.hits = 0
        self.sock.settimeout(0.2)
        self.kind = kind
        if kind == socket.SOCK_STREAM:
            self.sock.listen(8)
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self.kind == socket.SOCK_STREAM:
                    conn, _ = self.sock.accept()
                    conn.close()
                else:
                    self.sock.recvfrom(100)
                self.hits += 1
            except (TimeoutError, OSError):
                continue

    def close(self) -> int:
        time.sleep(0.3)
        self._stop.set()
        self._t.join()
        self.sock.close()
        return self.hits


@pytest.mark.parametrize("tier", ["A", "B", "C"])
def test_tcp_and_udp_to_host_loopback_reach_nothing(jobdir: JobDir, tier: str) -> None:
    tcp, udp = _TcpServer(), _TcpServer(socket.SOCK_DGRAM)
    code = result_code(
        f"""
attempt('tcp', lambda: socket.create_connection(('127.0.0.1', {tcp.port}), timeout=2))
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    return s.sendto(b'x' * 10, ('127.0.0.1', {udp.port}))
attempt('udp', udp)
attempt('inet6', lambda: socket.socket(socket.AF_INET6, socket.SOCK_STREAM))
attempt('netlink', lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0))
attempt('packet', lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0))
"""
    )
    res, r = jobdir.run(tier, code)
    assert res.exit_code == 0, res.log_tail
    assert tcp.close() == 0 and udp.close() == 0
    for name in ("tcp", "udp", "inet6", "netlink", "packet"):
        assert r[name][0] == "denied", (name, r[name])
    assert "PermissionError" in r["tcp"][1]  # seccomp's EPERM, before any namespace question


@pytest.mark.parametrize("tier", ["A", "B", "C"])
def test_dns_fails(jobdir: JobDir, tier: str) -> None:
    res, r = jobdir.run(
        tier, result_code("attempt('dns', lambda: socket.getaddrinfo('example.com', 443))")
    )
    assert res.exit_code == 0, res.log_tail
    assert r["dns"][0] == "denied"


def test_unix_socket_on_the_host_is_out_of_reach(jobdir: JobDir) -> None:
    d = Path(tempfile.mkdtemp(prefix="bedside-test-sock-"))
    d.chmod(0o755)
    path = d / "host.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    path.chmod(0o777)  # permissions are not what stops it: the mount namespace is
    srv.listen(1)
    srv.settimeout(0.5)
    try:
        code = result_code(
            f"""
def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect({str(path)!r})
    return 'connected'
attempt('unix', conn)
"""
        )
        res, r = jobdir.run("A", code)
        assert res.exit_code == 0, res.log_tail
        assert r["unix"][0] == "denied"
        with pytest.raises(TimeoutError):
            srv.accept()
    finally:
        srv.close()
        path.unlink()
        d.rmdir()


@pytest.mark.parametrize("tier", ISOLATING)
def test_secrets_on_the_host_cannot_be_read(jobdir: JobDir, tier: str) -> None:
    code = result_code(
        f"""
attempt('corpus', lambda: open({str(jobdir.corpus_file)!r}, 'rb').read())
attempt('db', lambda: open({str(jobdir.db_file)!r}, 'rb').read())
attempt('shadow', lambda: open('/etc/shadow').read())
attempt('root_home', lambda: os.listdir('/root'))
attempt('uid', lambda: os.getuid())
"""
    )
    res, r = jobdir.run(tier, code)
    assert res.exit_code == 0, res.log_tail
    for name in ("corpus", "db", "shadow"):
        assert r[name][0] == "denied", (name, r[name])
    assert r["uid"] == ["ok", "65534"]
    assert CANARY not in res.log_tail and "SECRET-DB" not in res.log_tail
    if tier == "A":  # /root is not even there; in B it is an empty tmpfs mask
        assert r["root_home"][0] == "denied" or r["root_home"][1] in ("[]", "['.pyenv']")


@pytest.mark.parametrize("tier", ISOLATING)
def test_cannot_write_the_corpus_the_inputs_or_usr(jobdir: JobDir, tier: str) -> None:
    code = result_code(
        f"""
attempt('corpus', lambda: open({str(jobdir.corpus_file)!r}, 'ab').write(b'x'))
attempt('usr', lambda: open('/usr/bedside-pwned', 'w').write('x'))
attempt('inputs', lambda: open('inputs/holdout_texts.parquet', 'ab').write(b'x'))
attempt('spec', lambda: open('spec.json', 'a').write('x'))
attempt('out', lambda: open('out/ok.txt', 'w').write('fine'))
"""
    )
    res, r = jobdir.run(tier, code)
    assert res.exit_code == 0, res.log_tail
    for name in ("corpus", "usr", "inputs", "spec"):
        assert r[name][0] == "denied", (name, r[name])
    assert r["out"][0] == "ok"
    assert not Path("/usr/bedside-pwned").exists()
    assert (jobdir.job / "out" / "ok.txt").read_text() == "fine"
    assert (jobdir.job / "out" / "ok.txt").stat().st_uid == 65534


@pytest.mark.parametrize("tier", ["A", "C"])
def test_memory_bomb_is_out_of_memory(jobdir: JobDir, tier: str) -> None:
    code = "chunks = []\nwhile True:\n    chunks.append(bytearray(32 * 2**20))\n"
    res, _ = jobdir.run(tier, code, memory_gb=0.5)
    assert res.error_class == "out_of_memory", (res, res.log_tail[-500:])
    assert res.oom


def test_fork_bomb_stops_at_the_pids_limit(jobdir: JobDir) -> None:
    code = result_code(
        """
import time
n = 0
def bomb():
    global n
    while True:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        n += 1
attempt('fork', bomb)
r['forked'] = n
"""
    )
    res, r = jobdir.run("A", code, pids=32)
    assert r["fork"][0] == "denied"  # BlockingIOError: the pids cgroup said no
    assert r["forked"] < 32
    assert _marked_processes("time.sleep(60)") == []


def _marked_processes(marker: str) -> list[int]:
    """Pids on the host whose command line contains ``marker``."""
    found = []
    for e in os.scandir("/proc"):
        if not e.name.isdigit() or int(e.name) == os.getpid():
            continue
        try:
            with open(f"/proc/{e.name}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(e.name))
        except OSError:
            continue
    return found


@pytest.mark.parametrize("tier", ["A", "B", "C"])
def test_endless_loop_with_double_forked_daemon_times_out_and_nothing_survives(
    jobdir: JobDir, tier: str
) -> None:
    marker = f"bedside-daemon-marker-{tier}-{os.getpid()}"
    code = (
        "import os, subprocess, sys, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        f"        os.execv(sys.executable, [sys.executable, '-c', 'import time\\nwhile True: time.sleep(1)', {marker!r}])\n"
        "    os._exit(0)\n"
        "while True:\n"
        "    pass\n"
    )
    t0 = time.monotonic()
    res, _ = jobdir.run(tier, code, wall_time_s=2)
    assert res.error_class == "timeout" and res.timed_out
    assert time.monotonic() - t0 < 15
    assert _marked_processes(marker) == []


def test_output_quota_caps_one_big_file_and_many_small_ones(jobdir: JobDir) -> None:
    big = result_code(
        """
def fill():
    with open('out/big.bin', 'wb') as f:
        for _ in range(64):
            f.write(b'x' * 2**20)
attempt('big', fill)
"""
    )
    res, r = jobdir.run("A", big, output_quota_mb=4)
    assert r["big"][0] == "denied" and "File too large" in r["big"][1]
    assert (jobdir.job / "out" / "big.bin").stat().st_size <= 4 * 2**20
    (jobdir.job / "out" / "big.bin").unlink()

    many = "i = 0\nwhile True:\n    open(f'out/f{i}.bin', 'wb').write(b'x' * 2**20)\n    i += 1\n"
    res, _ = jobdir.run("A", many, output_quota_mb=8)
    assert res.error_class == "invalid_output" and "quota" in res.message
    size = sum(p.stat().st_size for p in (jobdir.job / "out").iterdir())
    assert (
        size < 8 * 2**20 + 300 * 2**20
    )  # killed within 0.05 s (plus scheduling delay) of crossing it, not filling the disk


def test_environment_is_an_allowlist(jobdir: JobDir, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "leak")
    res, r = jobdir.run("A", result_code("r['env'] = dict(os.environ)"))
    env = r["env"]
    assert "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert env["HF_HUB_OFFLINE"] == "1" and env["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] == "1"
    assert env["HF_HOME"].startswith("/tmp")


def test_the_sandbox_sees_no_host_processes_and_has_no_capabilities(jobdir: JobDir) -> None:
    code = result_code(
        """
r['pids'] = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())
r['cap'] = [ln for ln in open('/proc/self/status') if ln.startswith('CapEff')][0].split()[1]
attempt('userns', lambda: os.unshare(os.CLONE_NEWUSER) if hasattr(os, 'unshare') else 1 / 0)
"""
    )
    res, r = jobdir.run("A", code)
    assert res.exit_code == 0, res.log_tail
    assert max(r["pids"]) < 10  # its own pid namespace
    assert int(r["cap"], 16) == 0
    assert r["userns"][0] == "denied"
