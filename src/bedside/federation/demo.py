"""``bedside federation demo``: three hospitals on one machine, end to end.

The embedded real corpus (or a subset of it) is dealt to three sites with different class
mixes (:data:`SHARES`, seeded), each site's workspace takes its rows through the real intake,
and a tiny random BERT bundle (WordPiece vocabulary trained on the corpus texts) is fine-tuned
by each site alone, by the federation (Flower's simulation engine, FedAvg over full weights), and
on the pooled records (the upper bound). The benchmark (``bench/federated.py``) uses the same
split on the whole dev corpus.

Example::

    res = run_demo(Path("fed-demo"), rows=450, rounds=3)
    print(render(res["board"]))
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bedside.errors import ConfigError

SITES = ("north", "south", "east")
# share of each class (condition_label 1..5) dealt to north, south, east
SHARES = {
    1: (0.6, 0.2, 0.2),  # neoplasms
    2: (0.2, 0.6, 0.2),  # digestive system diseases
    3: (0.2, 0.2, 0.6),  # nervous system diseases
    4: (0.5, 0.3, 0.2),  # cardiovascular diseases
    5: (0.2, 0.3, 0.5),  # general pathological conditions
}
TRAIN = {
    "learning_rate": 3e-3,
    "batch_size": 16,
    "max_length": 128,
    "class_weighting": "balanced",
    "early_stopping_patience": 10,
}


def split_sites(corpus: pd.DataFrame, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Deal each class's rows (shuffled with ``seed``) to the sites in the shares of ``SHARES``."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[pd.DataFrame]] = {s: [] for s in SITES}
    for label, shares in SHARES.items():
        rows = corpus[corpus["condition_label"] == label]
        rows = rows.iloc[rng.permutation(len(rows))]
        cuts = [0, *np.cumsum([round(x * len(rows)) for x in shares[:-1]]), len(rows)]
        for i, site in enumerate(SITES):
            parts[site].append(rows.iloc[int(cuts[i]) : int(cuts[i + 1])])
    return {s: pd.concat(p).reset_index(drop=True) for s, p in parts.items()}


def make_sites(corpus: pd.DataFrame, labels_csv: Path, root: Path) -> dict[str, Path]:
    """One workspace per site under ``root``, each holding its rows through `bedside data add`."""
    from bedside.data.ingest import add_corpus
    from bedside.workspace import Workspace

    out = {}
    for site, frame in split_sites(corpus).items():
        ws, _ = Workspace.init(root / site)
        csv = root / f"{site}.csv"
        frame.to_csv(csv, index=False)
        add_corpus(ws, csv, labels=labels_csv, holdout_fraction=0.2, seed=0)
        out[site] = root / site
    return out


def make_bundle(texts: list[str], dest: Path, hidden: int = 64) -> Path:
    from bedside.testing.tinymodels import make_tiny_bundle

    return make_tiny_bundle(
        dest, kind="encoder", texts=texts, hidden=hidden, manifest_overrides={"train": TRAIN}
    )


def run_demo(
    directory: Path,
    rows: int | None = 450,
    rounds: int = 3,
    local_epochs: int = 2,
    epsilon: float | None = None,
    drop: dict[str, Any] | None = None,
    runner: str = "inprocess",
    force: bool = False,
) -> dict[str, Any]:
    """Build the three sites and the bundle in ``directory`` and run the federation."""
    from bedside.data.assets import load_embedded_corpus, write_embedded_corpus
    from bedside.federation.config import DPConfig, FederationConfig, SiteConfig
    from bedside.federation.run import run_federation

    directory = Path(directory)
    if directory.exists():
        if not force:
            raise ConfigError(
                f"{directory} already exists.", hint="Pass --force to replace it, or pick another."
            )
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    files = write_embedded_corpus(directory / "corpus", rows)
    corpus = load_embedded_corpus(rows)
    sites = make_sites(corpus, files.labels, directory / "sites")
    bundle = make_bundle(corpus["medical_abstract"].astype(str).tolist(), directory / "bundle")
    cfg = FederationConfig(
        name="demo",
        bundle=bundle,
        sites=[SiteConfig(n, p) for n, p in sites.items()],
        rounds=rounds,
        local_epochs=local_epochs,
        exchange="full",
        runner=runner,
        dp=DPConfig(epsilon=epsilon) if epsilon else None,
    )
    return run_federation(cfg, directory / "out", baselines=("local-only", "pooled"), drop=drop)
