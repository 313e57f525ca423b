"""Flower's deployment mode on one machine: a SuperLink and one SuperNode per site, TLS on loopback.

    LocalFederation(folder, sites)   certificates, ``flower-superlink``, one ``flower-supernode``
                                     a site (separate processes on free ports), ``flwr run``;
                                     a context manager that stops every process it started
    deploy(plan, out_dir, initial)   the federated rounds through them: the same plan, ServerApp
                                     and ClientApp as the simulation (:mod:`.flower_app`)

Everything listens on ``127.0.0.1`` and speaks TLS: the SuperLink's one HTTPS port (Fleet,
Control and Runtime APIs) with a certificate from a fresh private CA (:mod:`.tls`), which the
SuperNodes (``--root-certificates``), the SuperExec and ``flwr run`` (its connection's
``root-certificates``) verify; each SuperNode's own Runtime API (for its ClientApp processes)
uses the same certificate. Flower's home (``FLWR_HOME``: installed apps, the CLI's
``config.toml``) is a folder per process under the deployment folder, never ``~/.flwr``; the
update check, telemetry and runtime dependency installation (``uv sync``) are off.

Each site's ClientApp runs every round as a job through
:class:`~bedside.federation.worker.SiteWorker`, so with ``runner = "sandbox"`` (the default)
each site's training runs in its own sandbox, as in the simulation.

Example::

    with LocalFederation(Path("out/deployment"), ["north", "south"]) as fed:
        run_id = fed.submit(app_dir)
        row = fed.wait(run_id, timeout_s=3600)   # the run's `flwr ls` row
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from bedside.errors import ConfigError
from bedside.federation.exchange import State
from bedside.federation.tls import Certificates, make_certificates
from bedside.federation.worker import Plan

INSTALL = "pip install -e '.[federated]'"
BINARIES = ("flower-superlink", "flower-supernode", "flower-superexec", "flwr")
CONNECTION = "bedside"  # the SuperLink connection's name in the CLI's config.toml
PR_SET_PDEATHSIG = 1
try:
    _LIBC: Any = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - not Linux
    _LIBC = None


def require_deployment() -> dict[str, str]:
    """Flower's deployment binaries on PATH, by name; refuses with the install command."""
    try:
        import flwr.cli.flower_config  # noqa: F401  (SuperLink connections: flwr >= 1.42)
    except ImportError:
        raise ConfigError(
            "deployment mode needs Flower 1.42 or newer (its `flwr run APP CONNECTION` form "
            "and the Flower config file); Flower is missing or older.",
            hint=f"Install or upgrade it with `{INSTALL}`.",
        ) from None
    found = {b: shutil.which(b) for b in BINARIES}
    if missing := [b for b, p in found.items() if p is None]:
        raise ConfigError(
            f"Flower's {', '.join(missing)} not found on PATH (Flower is installed, but not "
            "its command-line tools in this environment).",
            hint=f"Activate the environment bedside runs in, or reinstall with `{INSTALL}`.",
        )
    return {b: str(p) for b, p in found.items()}


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on now."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _busy(host: str, port: int, what: str) -> ConfigError:
    return ConfigError(
        f"port {port} on {host} is busy, so the {what} cannot listen there.",
        hint=f"Stop what listens on it (`ss -ltnp | grep :{port}`) or pass another --port "
        "(0 picks a free one).",
    )


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when bedside dies (even by SIGKILL)."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        kids.setdefault(int(fields[1]), []).append(int(entry.name))
    return kids


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Flower's SuperExec starts its own sessions, so a process
    group does not catch them; the parent links in /proc do)."""
    if not Path("/proc").is_dir():  # pragma: no cover - not Linux
        return []
    kids, out, todo = _children(), [], [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def with_home_under(folder: Path) -> list[int]:
    """Processes whose ``FLWR_HOME`` lies under ``folder``: what was started here, even once
    its parent died (a SuperNode's SuperExec outlives a SuperNode that exited)."""
    mark = f"FLWR_HOME={folder}/".encode()
    out = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            env = Path(entry.path, "environ").read_bytes()
        except OSError:
            continue
        if any(v.startswith(mark) for v in env.split(b"\0")):
            out.append(int(entry.name))
    return out


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :].split()[0] not in ("Z", "X")


@dataclass
class FlowerProcess:
    """One Flower process this module started, with its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    handle: IO[bytes]

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def died(self) -> ConfigError:
        """The error for a process that exited; says what to do where the log tells."""
        log = self.tail(60)
        low = log.lower()
        code = self.popen.returncode
        if "address already in use" in low or "errno 98" in low:
            hint = "Another process holds its port; stop it or pass another --port."
        elif "certificate" in low or "ssl" in low or "tls" in low:
            hint = (
                "TLS is misconfigured: a SuperNode's --root-certificates must be the CA that "
                "signed the SuperLink's certificate, which must name the address it is reached "
                "at; check the certificate, key and CA files it was given."
            )
        else:
            hint = f"See its log, {self.log}."
        return ConfigError(
            f"{self.name} exited (code {code}) during the federation; its log ends:\n{log}",
            hint=hint,
        )


class LocalFederation:
    """A SuperLink and one SuperNode per site on loopback, TLS on; stops them all on exit.

    ``folder`` gets ``certs/`` (CA, server certificate and key), ``logs/`` (one log a process),
    ``home/`` (each process's FLWR_HOME) and the CLI's connection in ``home/cli/config.toml``.
    ``port`` is the SuperLink's (0: a free one)."""

    def __init__(
        self,
        folder: Path,
        sites: Sequence[str],
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout_s: float = 90.0,
    ) -> None:
        self.folder = Path(folder).resolve()
        self.sites = list(sites)
        self.host = host
        self.port = port
        self.startup_timeout_s = startup_timeout_s
        self.procs: list[FlowerProcess] = []
        self.certs: Certificates | None = None
        self.bin: dict[str, str] = {}
        self.node_ports: dict[str, int] = {}
        self.superlink: FlowerProcess | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> LocalFederation:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def _env(self, home: str) -> dict[str, str]:
        path = self.folder / "home" / home
        path.mkdir(parents=True, exist_ok=True)
        return {
            **os.environ,
            "FLWR_HOME": str(path),
            "FLWR_TELEMETRY_ENABLED": "0",
            "FLWR_DISABLE_UPDATE_CHECK": "1",
            "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
            "PYTHONUNBUFFERED": "1",
        }

    def _spawn(self, name: str, cmd: list[str]) -> FlowerProcess:
        logs = self.folder / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log = logs / f"{name}.log"
        handle = log.open("wb")
        popen = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=self._env(name),
            cwd=self.folder,
            start_new_session=True,  # a Ctrl-C in the terminal reaches bedside, which stops all
            preexec_fn=_die_with_parent,
        )
        proc = FlowerProcess(name, popen, log, handle)
        self.procs.append(proc)
        return proc

    def start(self) -> None:
        """Certificates, the SuperLink (ready once a TLS handshake against the CA succeeds),
        then one SuperNode a site (ready once the SuperLink activated it)."""
        self.bin = require_deployment()
        if self.port == 0:
            self.port = free_port(self.host)
        elif not port_is_free(self.host, self.port):
            raise _busy(self.host, self.port, "SuperLink")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.certs = certs = make_certificates(self.folder / "certs", (self.host, "localhost"))
        link = self._spawn(
            "superlink",
            [
                self.bin["flower-superlink"],
                "--ssl-ca-certfile",
                str(certs.ca),
                "--ssl-certfile",
                str(certs.cert),
                "--ssl-keyfile",
                str(certs.key),
                "--host",
                self.host,
                "--port",
                str(self.port),
                "--disable-runtime-dependency-installation",
            ],
        )
        self._wait_tls(link)
        self.superlink = link
        nodes = [self.add_supernode(site, wait=False) for site in self.sites]
        for node in nodes:
            self._wait_activated(link, node)
        cli = self.folder / "home" / "cli"
        cli.mkdir(parents=True, exist_ok=True)
        (cli / "config.toml").write_text(
            f'[superlink]\ndefault = "{CONNECTION}"\n\n'
            f"[superlink.{CONNECTION}]\n"
            f"address = {json.dumps(self.address)}\n"
            f"root-certificates = {json.dumps(str(certs.ca))}\n"
        )

    def add_supernode(
        self, site: str, root_certificates: Path | None = None, wait: bool = True
    ) -> FlowerProcess:
        """Start ``flower-supernode`` for ``site`` (``--node-config "site='SITE'"``), trusting
        ``root_certificates`` (default: the federation's CA); with ``wait``, until the SuperLink
        activated it. Its own Runtime API (for its ClientApp processes) is TLS too."""
        assert self.certs is not None and self.superlink is not None, "start() first"
        certs = self.certs
        self.node_ports[site] = free_port(self.host)
        node = self._spawn(
            f"supernode-{site}",
            [
                self.bin["flower-supernode"],
                "--root-certificates",
                str(root_certificates or certs.ca),
                "--superlink",
                self.address,
                "--node-config",
                f"site='{site}'",
                "--host",
                self.host,
                "--port",
                str(self.node_ports[site]),
                "--ssl-certfile",
                str(certs.cert),
                "--ssl-keyfile",
                str(certs.key),
                "--ssl-ca-certfile",
                str(certs.ca),
            ],
        )
        if wait:
            self._wait_activated(self.superlink, node)
        return node

    def _wait_tls(self, proc: FlowerProcess) -> None:
        assert self.certs is not None
        ctx = ssl.create_default_context(cafile=str(self.certs.ca))
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                raise proc.died()
            try:
                with (
                    socket.create_connection((self.host, self.port), timeout=3) as sock,
                    ctx.wrap_socket(sock, server_hostname=self.host),
                ):
                    return
            except ssl.SSLError as e:
                raise ConfigError(
                    f"the SuperLink on {self.address} does not pass a TLS handshake against "
                    f"its CA ({self.certs.ca}): {e}.",
                    hint="TLS is misconfigured: the certificate must be signed by that CA and "
                    f"name {self.host}; delete {self.certs.ca.parent} to make fresh ones.",
                ) from None
            except OSError:
                time.sleep(0.5)
        raise ConfigError(
            f"the SuperLink did not listen on {self.address} within "
            f"{self.startup_timeout_s:.0f} s; its log ends:\n{proc.tail()}",
            hint=f"See {proc.log}.",
        )

    def _wait_activated(self, link: FlowerProcess, node: FlowerProcess) -> None:
        """Until the SuperLink logs the activation of the SuperNode's id."""
        deadline = time.monotonic() + self.startup_timeout_s
        node_id = None
        while time.monotonic() < deadline:
            if node_id is None:
                found = re.search(r"SuperNode ID: (\d+)", node.tail(400))
                node_id = found.group(1) if found else None
            if node_id is not None and f"Activated node_id={node_id}" in link.tail(2000):
                return
            for proc in (link, node):
                if proc.popen.poll() is not None:
                    raise proc.died()
            time.sleep(0.5)
        log = node.tail()
        tls = "ssl" in log.lower() or "certificate" in log.lower()
        raise ConfigError(
            f"{node.name} did not connect to the SuperLink on {self.address} within "
            f"{self.startup_timeout_s:.0f} s; its log ends:\n{log}",
            hint=(
                "Its TLS handshake fails: --root-certificates must be the CA that signed the "
                "SuperLink's certificate."
                if tls
                else f"See {node.log} and {link.log}."
            ),
        )

    def stop(self, grace_s: float = 10.0) -> None:
        """Stop every process started here, SuperNodes first, and whatever they started
        (SuperExec, ServerApp and ClientApp processes, sandboxed jobs): SIGTERM, then SIGKILL
        after ``grace_s``."""
        below: list[int] = []
        for proc in reversed(self.procs):
            if proc.popen.poll() is None:
                below += descendants(proc.popen.pid)
                with contextlib.suppress(ProcessLookupError):
                    proc.popen.terminate()
        if Path("/proc").is_dir():
            below += with_home_under(self.folder / "home")
        deadline = time.monotonic() + grace_s
        for proc in reversed(self.procs):
            try:
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait(timeout=5)
            proc.handle.close()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            left = [p for p in below if alive(p)]
            for p in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(p, sig)
            end = time.monotonic() + 3.0
            while any(alive(p) for p in left) and time.monotonic() < end:
                time.sleep(0.1)
        self.procs = []
        self.superlink = None

    # -- runs -------------------------------------------------------------------------------

    def check_running(self) -> None:
        """Raise (with its log) if a process started here has exited."""
        for proc in self.procs:
            if proc.popen.poll() is not None:
                raise proc.died()

    def flwr(self, *args: str, timeout_s: float = 120.0) -> dict[str, Any]:
        """``flwr ARGS --format json`` against this SuperLink; the JSON it prints (refuses
        with Flower's own message when it says ``success: false``)."""
        cmd = [self.bin["flwr"], *args, "--format", "json"]
        try:
            res = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                env=self._env("cli"),
                cwd=self.folder,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ConfigError(
                f"`flwr {args[0]}` got no answer from the SuperLink on {self.address} within "
                f"{timeout_s:.0f} s.",
                hint=f"Check the connection in {self.folder / 'home' / 'cli' / 'config.toml'} "
                f"(TLS, root-certificates) and {self.folder / 'logs' / 'superlink.log'}.",
            ) from None
        start = res.stdout.find("{")
        try:
            out: dict[str, Any] = json.JSONDecoder().raw_decode(res.stdout[start:])[0]
        except (ValueError, IndexError):
            raise ConfigError(
                f"`{' '.join(cmd[:3])}` printed no JSON (exit {res.returncode}): "
                f"{(res.stdout + res.stderr).strip()[-800:]}"
            ) from None
        if not out.get("success"):
            msg = str(out.get("error-message", out))
            hint = f"See the logs in {self.folder / 'logs'}."
            if "unavailable" in msg.lower() or "certificate" in msg.lower():
                hint = (
                    f"`flwr` could not reach the SuperLink over TLS on {self.address}: check "
                    f"the connection in {self.folder / 'home' / 'cli' / 'config.toml'}."
                )
            raise ConfigError(f"`flwr {args[0]}` failed: {msg}", hint=hint)
        return out

    def submit(self, app_dir: Path) -> int:
        """``flwr run APP_DIR bedside``: the run's id."""
        out = self.flwr("run", str(Path(app_dir).resolve()), CONNECTION)
        return int(out["run-id"])

    def status(self, run_id: int) -> dict[str, Any]:
        """The run's row of ``flwr ls --run-id``."""
        out = self.flwr("ls", CONNECTION, "--run-id", str(run_id))
        return dict(out["runs"][0])

    def wait(self, run_id: int, timeout_s: float, poll_s: float = 3.0) -> dict[str, Any]:
        """Poll ``flwr ls`` until the run finished; its last row. Raises when a process died or
        after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.check_running()
            row = self.status(run_id)
            if str(row.get("status", "")).startswith("finished"):
                return row
            if time.monotonic() > deadline:
                raise ConfigError(
                    f"Flower run {run_id} did not finish within {timeout_s:.0f} s "
                    f"(status {row.get('status')!r}); every process was stopped.",
                    hint=f"See the logs in {self.folder / 'logs'}; raise round_timeout_s for "
                    "slow sites.",
                )
            time.sleep(poll_s)


def deploy(
    plan: Plan,
    out_dir: Path,
    initial: State,
    drop: dict[str, Any] | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """The federated rounds in Flower's deployment mode on this machine: the result
    ``federated.json`` of the ServerApp, plus ``deployment`` (run id, status, addresses)."""
    from bedside.federation.flower_app import write_app, write_plan

    out_dir = Path(out_dir).resolve()
    folder = out_dir / "deployment"
    (out_dir / "federated.json").unlink(missing_ok=True)
    plan_file = write_plan(folder / "plan.json", plan, out_dir, initial, drop)
    app_dir = write_app(folder / "app", plan_file)
    cfg = plan.cfg
    limit = timeout_s or cfg.round_timeout_s * (cfg.rounds + 1) + 300
    sites = [s["name"] for s in plan.config["sites"]]
    with LocalFederation(folder, sites, host=host, port=port) as fed:
        run_id = fed.submit(app_dir)
        row = fed.wait(run_id, limit)
        address, node_ports = fed.address, dict(fed.node_ports)
    result = out_dir / "federated.json"
    if row.get("status") != "finished:completed" or not result.is_file():
        raise ConfigError(
            f"Flower run {run_id} ended {row.get('status')!r} "
            f"({row.get('status-details', 'no details')}) without results.",
            hint=f"See the ServerApp's and the sites' logs in {folder / 'logs'}.",
        )
    fed_res: dict[str, Any] = json.loads(result.read_text())
    fed_res["deployment"] = {
        "run_id": run_id,
        "status": row["status"],
        "superlink": f"https://{address}",
        "supernodes": {s: f"https://{host}:{p}" for s, p in node_ports.items()},
        "tls": True,
        "network_traffic": row.get("network-traffic"),
        "logs": str(folder / "logs"),
    }
    return fed_res
