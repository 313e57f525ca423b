"""Run a federation end to end: setup checks, Flower rounds, baselines, the leaderboard.

    prepare(cfg)        open every site, refuse differing classes, validate the bundle
    initial_state(...)  the engine's model (fresh head, LoRA init) -> the exchanged tensors
    simulate(...)       Flower's simulation engine: one ServerApp, one ClientApp per site
    deploy.deploy(...)  Flower's deployment mode: SuperLink + SuperNodes on loopback, TLS on
    local_only(...)     each site's own fine-tune, same recipe and compute
    pooled(...)         every site's records in one place: the upper bound (demo and bench only)

Example::

    cfg = FederationConfig.load(Path("federation.toml"))
    res = run_federation(cfg, out_dir=Path("fed-out"), baselines=("local-only",))
    print(render(res["board"]))
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd

from bedside.errors import ConfigError
from bedside.federation.board import board
from bedside.federation.config import FederationConfig
from bedside.federation.exchange import State, load_state
from bedside.federation.sites import (
    Site,
    check_bundle,
    check_sites,
    holdout_probs,
    read_update,
    round_manifest,
    run_job,
    score_site,
    stage,
)
from bedside.federation.worker import Plan, SiteWorker

INSTALL = "pip install -e '.[federated]'"
ENGINES = ("simulation", "deployment")


def require_flower() -> None:
    try:
        import flwr  # noqa: F401
    except ImportError:
        raise ConfigError(
            "federated training needs Flower (flwr), which is not installed.",
            hint=f"Install it with `{INSTALL}`.",
        ) from None


def prepare(
    cfg: FederationConfig, run: str | None = None, threads: int = 1
) -> tuple[Plan, list[Site]]:
    """Open the sites, check they hold the same classes, validate the bundle: the run's plan."""
    sites = [Site.open(s) for s in cfg.sites]
    names = check_sites(sites)
    manifest = check_bundle(cfg.bundle, names)
    classes = [c.to_dict() for c in sites[0].corpus.classes]
    run = run or f"{cfg.name}-{time.strftime('%Y%m%dT%H%M%S')}"
    return Plan(cfg.to_dict(), manifest, classes, run, threads), sites


def initial_state(plan: Plan) -> State:
    """The exchanged tensors of the model every site would build from the bundle (same seed):
    the classification head for the workspace classes, plus LoRA adapters for ``lora``."""
    from bedside.engine.checkpoint import trainable_state
    from bedside.engine.finetune import apply_lora, build_model
    from bedside.engine.io import with_defaults
    from bedside.engine.modeling import load_tokenizer

    cfg = plan.cfg
    manifest = with_defaults(
        round_manifest(plan.manifest, cfg, cfg.local_epochs), plan.manifest["kind"]
    )
    ctx = SimpleNamespace(
        spec=SimpleNamespace(model_kind=manifest["kind"]),
        bundle=cfg.bundle,
        manifest=manifest,
        class_names=[c["name"] for c in plan.classes],
        seed=cfg.seed + 1,  # the first round's seed (SiteWorker.train_round)
    )
    tok = load_tokenizer(cfg.bundle)
    model = build_model(ctx, tok.pad_token_id)  # type: ignore[arg-type]
    if cfg.method == "lora":
        model = apply_lora(model, manifest["train"]["lora"])
    return {n: t.numpy() for n, t in trainable_state(model).items()}


def simulate(
    plan: Plan, out_dir: Path, initial: State, drop: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Flower's simulation engine (Ray): one virtual SuperNode per site."""
    require_flower()
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    from flwr.simulation import run_simulation

    from bedside.federation.apps import client_app, server_app

    n = len(plan.config["sites"])
    cpus = max(1, min(n, os.cpu_count() or 1))
    run_simulation(
        server_app=server_app(plan, out_dir, initial),
        client_app=client_app(plan, drop),
        num_supernodes=n,
        backend_config={
            "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
            # a fresh local Ray instance, never a cluster this machine happens to run
            "init_args": {"address": "local", "num_cpus": cpus, "include_dashboard": False},
        },
    )
    path = out_dir / "federated.json"
    if not path.is_file():
        raise ConfigError(
            "the Flower run ended without results (see the log above for the ServerApp's error)."
        )
    return dict(json.loads(path.read_text()))


def local_only(plan: Plan) -> list[dict[str, Any]]:
    return [SiteWorker(plan, s["name"]).local_only() for s in plan.config["sites"]]


def pooled(plan: Plan, sites: list[Site], out_dir: Path) -> list[dict[str, Any]]:
    """Every site's training rows in one fine-tune, scored on each site's holdout. It needs
    the records in one place, which a real federation forbids: an upper bound for the demo and
    the benchmark only."""
    cfg = plan.cfg

    def tagged(df: pd.DataFrame, s: Site) -> pd.DataFrame:
        out = df.copy()
        out["row_id"] = s.name + ":" + out["row_id"].astype(str)
        return out

    train = pd.concat([tagged(s.corpus.train, s) for s in sites], ignore_index=True)
    hold = pd.concat([tagged(s.corpus.holdout, s) for s in sites], ignore_index=True)
    fed: dict[str, Any] = {"train": True}
    t0 = time.monotonic()
    if cfg.dp is not None:
        from bedside.federation import dp as dpmod

        vf = float((plan.manifest.get("train") or {}).get("validation_fraction", 0.1))
        rows = max(1, round(len(train) * (1 - vf)))
        bs = int({**plan.manifest.get("train", {}), **cfg.train}.get("batch_size", 16))
        q = dpmod.sample_rate(rows, bs)
        steps = dpmod.planned_steps(rows, bs, cfg.rounds, cfg.local_epochs)
        sigma = dpmod.noise_multiplier(cfg.dp.epsilon, cfg.dp.delta, q, steps)
        fed["dp"] = {
            "noise_multiplier": sigma,
            "max_grad_norm": cfg.dp.max_grad_norm,
            "sample_rate": q,
        }
    d = stage(
        out_dir / "pooled",
        cfg.bundle,
        round_manifest(plan.manifest, cfg, cfg.rounds * cfg.local_epochs),
        plan.classes,
        train,
        hold,
        seed=cfg.seed,
        threads=plan.threads,
        federated=fed,
    )
    run_job(sites[0], d, cfg.runner)
    ids = hold["row_id"].tolist()
    probs = holdout_probs(d, ids, sites[0].classes)
    _, info = read_update(d)
    wall = round(time.monotonic() - t0, 2)
    out = []
    start = 0
    for s in sites:
        m = score_site(s, probs[start : start + s.n_holdout])
        start += s.n_holdout
        m["wall_s"] = wall
        if cfg.dp is not None:
            from bedside.federation import dp as dpmod

            dp = fed["dp"]
            m["epsilon"] = round(
                dpmod.spent_epsilon(
                    dp["noise_multiplier"], dp["sample_rate"], int(info["steps"]), cfg.dp.delta
                ),
                4,
            )
        out.append(m)
    return out


def run_federation(
    cfg: FederationConfig,
    out_dir: Path,
    baselines: tuple[str, ...] = ("local-only",),
    drop: dict[str, Any] | None = None,
    threads: int = 1,
    engine: str = "simulation",
    port: int = 0,
) -> dict[str, Any]:
    """Setup checks, the Flower rounds, the baselines, the leaderboard rows. ``engine`` is
    ``simulation`` (Flower's simulation engine) or ``deployment`` (a SuperLink and a SuperNode
    a site as separate processes on 127.0.0.1 with TLS, :mod:`bedside.federation.deploy`;
    ``port`` is the SuperLink's, 0 a free one). Writes ``out_dir/results.json`` and returns
    the same dict."""
    require_flower()
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}.")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if engine == "deployment":
        from bedside.federation.deploy import require_deployment

        require_deployment()  # before any training: binaries and Flower's version
    plan, sites = prepare(cfg, threads=threads)
    t0 = time.monotonic()
    initial = initial_state(plan)
    if engine == "deployment":
        from bedside.federation.deploy import deploy

        fed = deploy(plan, out_dir, initial, drop, port=port)
    else:
        fed = simulate(plan, out_dir, initial, drop)
    fed["wall_s_total"] = round(time.monotonic() - t0, 2)
    models: dict[str, list[dict[str, Any]]] = {}
    timings: dict[str, float] = {"federated": fed["wall_s_total"]}
    if "local-only" in baselines:
        t = time.monotonic()
        models["local-only"] = local_only(plan)
        timings["local-only"] = round(time.monotonic() - t, 2)
    models["federated"] = [e for e in fed["evaluations"] if "macro_f1" in e]
    if cfg.dp is not None:  # the epsilon each site spent over all rounds
        spent: dict[str, float] = {}
        for rnd in fed["rounds"]:
            for u in rnd["updates"]:
                if u.get("epsilon") is not None:
                    spent[u["site"]] = max(spent.get(u["site"], 0.0), float(u["epsilon"]))
        for e in models["federated"]:
            e["epsilon"] = spent.get(e["site"])
    if "pooled" in baselines:
        t = time.monotonic()
        models["pooled"] = pooled(plan, sites, out_dir)
        timings["pooled"] = round(time.monotonic() - t, 2)
    result = {
        "federation": cfg.name,
        "run": plan.run,
        "config": cfg.to_dict(),
        "classes": [c["name"] for c in plan.classes],
        "rounds": fed["rounds"],
        "state_bytes": fed["state_bytes"],
        "tensors": fed["tensors"],
        "models": models,
        "board": board(models),
        "wall_s": timings,
        "engine": engine,
    }
    if "deployment" in fed:
        result["deployment"] = fed["deployment"]
    (out_dir / "results.json").write_text(json.dumps(result, indent=1))
    return result


def global_model(out_dir: Path) -> State:
    return load_state(Path(out_dir) / "global.safetensors")
