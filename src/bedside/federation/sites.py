"""One site of a federation: its workspace, its corpus, and the jobs it runs for the federation.

Everything here runs at the site, with the site's own data. A site stages phase-2 job
directories under ``WS/federation/RUN/`` (train split and holdout *texts*, never holdout labels;
the bundle linked read-only), runs them through the engine, in the site's sandbox
(``runner = "sandbox"``: the launcher its policy asks for, as phase-2 jobs run) or in this
process (``"inprocess"``), and scores predictions with the trusted scorer outside the job.
What leaves a site: the exchanged tensors and aggregate metrics (macro-F1, its bootstrap
replicates, per-class recall, counts), never a record or a per-record output.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bedside.errors import ConfigError, JobError
from bedside.federation.exchange import State, load_state, save_state

if TYPE_CHECKING:
    from bedside.data.corpus import Corpus
    from bedside.federation.config import FederationConfig, SiteConfig
    from bedside.workspace import Workspace

UPDATE = Path("out/federated/update.safetensors")
RESAMPLES = 1000


@dataclass
class Site:
    """A site's workspace and active corpus, opened at the site."""

    name: str
    ws: Workspace
    corpus: Corpus

    @classmethod
    def open(cls, cfg: SiteConfig) -> Site:
        from bedside.data.corpus import load_corpus
        from bedside.workspace import Workspace

        ws = Workspace.open(cfg.workspace)
        return cls(cfg.name, ws, load_corpus(ws))

    @property
    def classes(self) -> list[str]:
        return self.corpus.class_names

    @property
    def n_train(self) -> int:
        return len(self.corpus.train)

    @property
    def n_holdout(self) -> int:
        return len(self.corpus.holdout)


def check_sites(sites: list[Site]) -> list[str]:
    """The shared class list, or a ``ConfigError`` naming the site whose classes differ."""
    first = sites[0]
    for s in sites[1:]:
        if s.classes != first.classes:
            missing = sorted(set(first.classes) - set(s.classes))
            extra = sorted(set(s.classes) - set(first.classes))
            detail = (
                f"missing {missing}, extra {extra}"
                if missing or extra
                else f"same names in another order {s.classes}"
            )
            raise ConfigError(
                f"site {s.name!r} has classes that differ from site {first.name!r}'s "
                f"{first.classes}: {detail}.",
                hint="Every site must hold the same classes in the same order; fix the class "
                "file of that site's corpus (`bedside data add ... --labels`).",
            )
    return list(first.classes)


def check_bundle(bundle: Path, classes: list[str]) -> dict[str, Any]:
    """Every intake rule on the vendor's unpacked bundle (no code run); returns its manifest."""
    from bedside.submissions.validate import validate_dir

    if not bundle.is_dir():
        raise ConfigError(
            f"the federation's bundle {bundle} is not a directory.",
            hint="Point [federation] bundle at an unpacked bedside bundle (see docs/submission-format.md).",
        )
    m = validate_dir(bundle, classes=classes).manifest.to_dict()
    if m.get("kind") not in ("encoder", "classifier"):
        raise ConfigError(
            f"federated fine-tuning takes encoder or classifier bundles; {bundle} is {m.get('kind')!r}."
        )
    return m


def round_manifest(manifest: dict[str, Any], cfg: FederationConfig, epochs: int) -> dict[str, Any]:
    """The bundle's manifest with the federation's method, epochs and [train] overrides."""
    m = json.loads(json.dumps(manifest))
    tr = m.setdefault("train", {})
    tr.update(cfg.train)
    tr["method"] = cfg.method
    tr["epochs"] = epochs
    tr["early_stopping_patience"] = min(
        10, max(int(tr.get("early_stopping_patience") or 2), epochs)
    )
    if cfg.dp is not None:
        tr["windows"] = 1  # a record must be one training row for record-level DP
    # A lexical blend fits a site-local TF-IDF model that no round exchanges: the federated and
    # local-only models would not be the same kind of model, so the federation trains without.
    tr["lexical_blend"] = 0.0
    return m


def stage(
    root: Path,
    bundle: Path,
    manifest: dict[str, Any],
    classes: list[dict[str, str]],
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    *,
    seed: int,
    threads: int,
    federated: dict[str, Any] | None,
    init: State | None = None,
) -> Path:
    """A phase-2 job directory as the pipeline stages one (holdout texts only)."""
    from bedside.jobs.spec import JobSpec
    from bedside.jobs.staging import _open_bundle

    if root.exists():
        shutil.rmtree(root)
    (root / "inputs").mkdir(parents=True)
    for d in (root, root / "inputs"):
        os.chmod(d, 0o755)
    train[["row_id", "text", "label"]].to_parquet(root / "inputs" / "train.parquet", index=False)
    holdout[["row_id", "text"]].to_parquet(root / "inputs" / "holdout_texts.parquet", index=False)
    extra: dict[str, Any] = {}
    if federated is not None:
        fed = dict(federated)
        if init is not None:
            save_state(init, root / "inputs" / "global.safetensors")
            fed["init"] = "inputs/global.safetensors"
        extra["federated"] = fed
    for p in (root / "inputs").iterdir():
        os.chmod(p, 0o644)
    _open_bundle(bundle)
    (root / "bundle").symlink_to(bundle.resolve())
    (root / "out").mkdir()
    (root / "checkpoints").mkdir()
    kind = str(manifest.get("kind") or "encoder")
    JobSpec(
        job_id=0,
        kind="phase2",
        model_kind=kind,
        manifest=manifest,
        classes=classes,
        seed=seed,
        threads=threads,
        device="cpu",
        checkpoint_every=10_000,
        extra=extra,
    ).write(root)
    os.chmod(root / "spec.json", 0o644)
    return root


def run_job(site: Site, job_dir: Path, runner: str) -> str:
    """Run one staged job through the engine; a failure is a ``JobError`` naming the site.
    Returns where it ran: the sandbox tier (``A``, ``B``, ``C``) or ``inprocess``."""
    from bedside.jobs.spec import JobSpec

    spec = JobSpec.read(job_dir)
    if runner == "sandbox":
        from bedside.sandbox.probe import launcher_for_policy

        policy = site.ws.policy()
        result = launcher_for_policy(policy).launch(job_dir, spec, policy.limits)
        if result.error_class is not None:
            raise JobError(
                f"site {site.name!r}: the federated job failed ({result.error_class}): "
                f"{result.message or result.log_tail[-400:]}",
                error_class=result.error_class,
            )
        return str(result.tier)
    from bedside.engine.entrypoint import main

    saved = dict(os.environ)  # the entrypoint points caches into the job's out/
    try:
        code = main([str(job_dir)])
    finally:
        os.environ.clear()
        os.environ.update(saved)
    if code != 0:
        err = job_dir / "out" / "error.json"
        detail = json.loads(err.read_text()) if err.is_file() else {}
        raise JobError(
            f"site {site.name!r}: the federated job failed ({detail.get('error_class')}): "
            f"{detail.get('message', 'see out/log.txt')}",
            error_class=str(detail.get("error_class") or "model_error"),
        )
    return "inprocess"


def read_update(job_dir: Path) -> tuple[State, dict[str, Any]]:
    info = json.loads((job_dir / UPDATE.parent / "update.json").read_text())
    return load_state(job_dir / UPDATE), info


def holdout_probs(job_dir: Path, row_ids: list[str], classes: list[str]) -> np.ndarray:
    """The job's holdout probabilities, checked like any job's (shape, ids, size cap)."""
    from bedside.evaluation.predictions import load_predictions
    from bedside.jobs import outputs
    from bedside.jobs.collect import predictions_cap

    cap = predictions_cap(row_ids, classes)
    raw = outputs.read_bytes(job_dir / "out", "predictions.json", cap)
    return np.asarray(load_predictions(raw, row_ids, classes, max_bytes=cap))


def score_site(site: Site, probs: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """Trusted scoring on the site's holdout; adds the macro-F1 bootstrap replicates (aggregate
    numbers, seeded) so the server can put a CI on the sample-weighted macro-F1."""
    from bedside.evaluation.baseline import length_edges
    from bedside.evaluation.bootstrap import bootstrap_confusions
    from bedside.evaluation.metrics import macro_f1_from_confusion
    from bedside.evaluation.robustness import word_counts
    from bedside.evaluation.scorer import label_indices, score

    hold = site.corpus.holdout
    classes = site.classes
    m = score(
        list(hold["label"]),
        probs,
        classes,
        word_counts(hold["text"]),
        length_edges(site.corpus),
        resamples=RESAMPLES,
        seed=seed,
    )
    t = label_indices(list(hold["label"]), classes)
    cms = bootstrap_confusions(t, probs.argmax(1), len(classes), RESAMPLES, seed)
    return {
        "site": site.name,
        "n": int(m["n"]),
        "macro_f1": float(m["macro_f1"]),
        "macro_f1_ci": m["macro_f1_ci"],
        "accuracy": float(m["accuracy"]),
        "recall": [float(c["recall"]) for c in m["per_class"]],
        "support": [int(c["support"]) for c in m["per_class"]],
        "replicates": macro_f1_from_confusion(cms).astype(float).tolist(),
    }


def site_root(site: Site, run: str) -> Path:
    root = site.ws.root / "federation" / run
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(site.ws.root / "federation", 0o700)
    return root
