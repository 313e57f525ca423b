"""Tiny sites for the federation tests: workspaces with tiny keyword corpora, one tiny bundle."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

try:  # the federated extra (pip install -e '.[federated]'); scripts/setup.sh --dev installs it
    import flwr  # noqa: F401
    import opacus  # noqa: F401
except ImportError:
    if os.environ.get("CI") == "true":  # CI installs the extra: a missing one is a failure
        raise
    collect_ignore_glob = ["test_*.py"]

from bedside.testing.tinymodels import DEFAULT_CLASSES, make_tiny_bundle  # noqa: E402
from tests.engine.conftest import KEYWORDS, clean_env, make_corpus  # noqa: E402, F401


@pytest.fixture(scope="session")
def fed_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random encoder bundle that learns the keyword task in a few epochs."""
    texts = make_corpus(20, seed=9)["text"].tolist() + list(KEYWORDS.values())
    return make_tiny_bundle(
        tmp_path_factory.mktemp("fedbundle") / "b",
        kind="encoder",
        texts=texts,
        hidden=64,
        manifest_overrides={
            "train": {
                "learning_rate": 3e-3,
                "batch_size": 8,
                "max_length": 32,
                "early_stopping_patience": 10,
            }
        },
    )


def site_frame(n_per_class: dict[str, int], seed: int) -> pd.DataFrame:
    """A corpus with its own class mix (non-IID): ``n_per_class`` rows of each class."""
    full = make_corpus(max(n_per_class.values()), seed=seed)
    parts = [full[full["label"] == c].head(n) for c, n in n_per_class.items()]
    return pd.concat(parts).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def write_site(root: Path, frame: pd.DataFrame, classes: list[str] | None = None) -> Path:
    """A workspace at ``root`` holding ``frame`` through the real intake (`bedside data add`)."""
    from bedside.data.ingest import add_corpus
    from bedside.workspace import Workspace

    classes = classes or list(DEFAULT_CLASSES)
    ws, _ = Workspace.init(root)
    csv, labels = root.parent / f"{root.name}.csv", root.parent / f"{root.name}-labels.csv"
    ids = {c: i + 1 for i, c in enumerate(classes)}
    pd.DataFrame(
        {"condition_label": [ids[c] for c in frame["label"]], "medical_abstract": frame["text"]}
    ).to_csv(csv, index=False)
    pd.DataFrame({"condition_label": list(ids.values()), "condition_name": classes}).to_csv(
        labels, index=False
    )
    add_corpus(ws, csv, labels=labels, holdout_fraction=0.3, seed=0)
    return root


MIXES: list[dict[str, int]] = [
    {c: n for c, n in zip(DEFAULT_CLASSES, (28, 20, 8, 8, 8), strict=True)},
    {c: n for c, n in zip(DEFAULT_CLASSES, (8, 8, 28, 20, 8), strict=True)},
    {c: n for c, n in zip(DEFAULT_CLASSES, (8, 20, 8, 8, 28), strict=True)},
]


@pytest.fixture(scope="session")
def site_dirs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three site workspaces with different class mixes (built once per session)."""
    root = tmp_path_factory.mktemp("sites")
    return [
        write_site(root / name, site_frame(mix, seed=i + 3))
        for i, (name, mix) in enumerate(zip(("north", "south", "east"), MIXES, strict=True))
    ]


def fed_config(bundle: Path, sites: list[Path], **kw: Any) -> Any:
    from bedside.federation.config import FederationConfig, SiteConfig

    names = ("north", "south", "east")
    return FederationConfig(
        name="test-net",
        bundle=bundle,
        sites=[SiteConfig(n, p) for n, p in zip(names, sites, strict=False)],
        **{"runner": "inprocess", "rounds": 2, **kw},
    )
