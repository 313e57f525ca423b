"""Flower's deployment mode on 127.0.0.1 with TLS: a real ``flower-superlink``, one
``flower-supernode`` a site and ``flwr run``, each a separate process; every site's round a job in
its own tier-A sandbox. The global model must be exactly FedAvg of the sites' rounds (replayed
here), the SuperLink must refuse plain text and strangers' certificates, and no process may be
left behind."""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
from pathlib import Path

import numpy as np
import pytest

from bedside.errors import ConfigError
from tests.sandbox.conftest import require_tier

pytestmark = [pytest.mark.filterwarnings("ignore::ResourceWarning")]


def flower_processes(root: Path) -> list[str]:
    """Processes whose command line or FLWR_HOME points under ``root``."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmd = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode()
            env = Path(entry.path, "environ").read_bytes().decode(errors="replace")
            state = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and (str(root) in cmd or f"FLWR_HOME={root}" in env):
            found.append(f"{entry.name}: {cmd[:200]}")
    return found


def https_status(host: str, port: int, ca: Path) -> int:
    ctx = ssl.create_default_context(cafile=str(ca))
    conn = http.client.HTTPSConnection(host, port, context=ctx, timeout=10)
    try:
        conn.request("GET", "/")
        return conn.getresponse().status
    finally:
        conn.close()


def test_superlink_speaks_tls_only_and_stops_cleanly(tmp_path: Path) -> None:
    from bedside.federation.deploy import LocalFederation
    from bedside.federation.tls import make_certificates

    folder = tmp_path / "dep"
    with LocalFederation(folder, []) as fed:
        assert fed.certs is not None
        host, port = fed.host, fed.port
        # TLS verified against the federation's CA: an HTTP answer (any status)
        assert 100 <= https_status(host, port, fed.certs.ca) < 600
        # plain text on the same port: no HTTP answer at all
        plain = http.client.HTTPConnection(host, port, timeout=10)
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
            plain.request("GET", "/")
            plain.getresponse()
        plain.close()
        # Flower's own CLI over plain text is refused too
        cfg = folder / "home" / "cli" / "config.toml"
        cfg.write_text(
            cfg.read_text() + f'\n[superlink.plain]\naddress = "{fed.address}"\ninsecure = true\n'
        )
        with pytest.raises(ConfigError, match="flwr ls"):  # refused, or never answered
            fed.flwr("ls", "plain", timeout_s=60)
        assert fed.flwr("ls", "bedside")["success"] is True  # the TLS connection works
        # a client trusting another CA refuses the SuperLink's certificate
        other = make_certificates(tmp_path / "other")
        with pytest.raises(ssl.SSLCertVerificationError):
            https_status(host, port, other.ca)
        # and so does a SuperNode: Flower's TLS error, with what to do
        with pytest.raises(ConfigError, match="supernode-stranger exited") as e:
            fed.add_supernode("stranger", root_certificates=other.ca)
        assert "CERTIFICATE_VERIFY_FAILED" in e.value.message
        assert "TLS is misconfigured" in (e.value.hint or "")
        assert flower_processes(folder)  # the SuperLink and its SuperExec run
    assert flower_processes(folder) == []  # also the stranger's SuperExec, orphaned by it

    # a busy port is refused, with what to do
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        with pytest.raises(ConfigError, match=f"port {busy} on 127.0.0.1 is busy") as e:
            LocalFederation(tmp_path / "busy", [], port=busy).__enter__()
        assert "--port" in (e.value.hint or "")


def test_missing_flower_binaries_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from bedside.federation.deploy import require_deployment

    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ConfigError, match="flower-superlink, flower-supernode") as e:
        require_deployment()
    assert "pip install -e '.[federated]'" in (e.value.hint or "")


@pytest.mark.slow
@pytest.mark.torch
@pytest.mark.sandbox
def test_two_sites_federate_through_superlink_and_supernodes_over_tls(
    fed_bundle: Path, site_dirs: list[Path], tmp_path: Path, clean_env: None
) -> None:
    import tomli_w
    from typer.testing import CliRunner

    from bedside.cli.app import app
    from bedside.federation.exchange import load_state
    from bedside.federation.worker import Plan, SiteWorker

    require_tier("A")
    out = tmp_path / "out"
    config = tmp_path / "federation.toml"
    config.write_text(
        tomli_w.dumps(
            {
                "federation": {
                    "name": "test-net",
                    "bundle": str(fed_bundle),
                    "rounds": 1,
                    "min_sites": 2,
                    "runner": "sandbox",
                },
                "site": [
                    {"name": n, "workspace": str(p)}
                    for n, p in zip(("north", "south"), site_dirs, strict=False)
                ],
            }
        )
    )
    cli = CliRunner().invoke(
        app, ["federation", "deploy", str(config), "--out", str(out), "--no-local-only"]
    )
    assert cli.exit_code == 0, (cli.output, cli.exception)
    assert "| federated |" in cli.output and "finished:completed" in cli.output
    res = json.loads((out / "results.json").read_text())

    dep = res["deployment"]
    assert dep["status"] == "finished:completed" and dep["tls"] is True
    assert dep["superlink"].startswith("https://127.0.0.1:")
    (r1,) = res["rounds"]
    assert sorted(u["site"] for u in r1["updates"]) == ["north", "south"]
    assert not r1["failed"] and not r1["rejected"] and not r1["void"]
    assert sorted(e["site"] for e in res["models"]["federated"]) == ["north", "south"]
    assert all(0.0 <= e["macro_f1"] <= 1.0 for e in res["models"]["federated"])
    # each site's round and evaluation ran as a job in that site's own workspace, in the
    # tier-A sandbox (the launcher's tier, reported back with the update)
    for site in site_dirs[:2]:
        assert (site / "federation" / res["run"] / "round-1" / "out" / "federated").is_dir()
    assert [u["isolation"] for u in r1["updates"]] == ["A", "A"]
    assert [e["isolation"] for e in res["models"]["federated"]] == ["A", "A"]

    # the global model is FedAvg (weighted by training texts) of the two sites' local rounds:
    # replay them here, in-process, from the same plan and initial state
    raw = json.loads((out / "deployment" / "plan.json").read_text())
    plan = Plan(**raw["plan"])
    replay = Plan(
        {**plan.config, "runner": "inprocess"}, plan.manifest, plan.classes, plan.run + "-replay"
    )
    initial = load_state(Path(raw["initial"]))
    rounds = [SiteWorker(replay, s).train_round(initial, 1) for s in ("north", "south")]
    n = np.array([float(rep["examples"]) for _, rep in rounds])
    assert [u["examples"] for u in sorted(r1["updates"], key=lambda u: u["site"])] == [
        rep["examples"] for _, rep in rounds
    ]
    got = load_state(out / "global.safetensors")
    assert set(got) == set(initial)
    moved = max(float(np.abs(got[k] - initial[k]).max()) for k in initial)
    assert moved > 1e-3  # training happened
    for k in initial:
        want = sum(w * u[k] for w, (u, _) in zip(n, rounds, strict=True)) / n.sum()
        np.testing.assert_allclose(got[k], want, rtol=1e-4, atol=1e-6, err_msg=k)

    assert flower_processes(out) == []  # SuperLink, SuperNodes, SuperExecs, apps: all gone
