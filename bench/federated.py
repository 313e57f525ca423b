"""Federated vs local-only vs pooled fine-tuning on the real dev corpus, three non-IID sites,
without and with DP-SGD.

    python bench/federated.py [--dev ../shared/data/medical-abstracts/dev.csv] [--out DIR]
                              [--rounds 3] [--local-epochs 2] [--eps 1,3,8] [--hidden 64]

The split (seeded, documented in docs/benchmarks.md): each class's rows are shuffled with
seed 0 and dealt to the sites north / south / east in the shares of
``bedside.federation.demo.SHARES`` (so every site
holds every class, in different mixes); each site's workspace takes its rows through the real
intake (`bedside data add`, holdout 20 %). The model is the CPU-sized setting: a tiny random
BERT (hidden ``--hidden``, 2 layers, a WordPiece vocabulary trained on the corpus texts) fine-tuned
in full (``exchange = "full"``), 128 tokens. Prints one Markdown table per setting and writes
``OUT/results.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "data" / "medical-abstracts"


def make_sites(dev_csv: Path, labels_csv: Path, root: Path) -> list[Path]:
    from bedside.federation.demo import make_sites as deal

    dev = pd.read_csv(dev_csv)
    sites = deal(dev, labels_csv, root)
    for site in sites:
        frame = pd.read_csv(root / f"{site}.csv")
        counts = frame["condition_label"].value_counts().sort_index().tolist()
        print(f"site {site}: {len(frame)} rows, per class {counts}", flush=True)
    return list(sites.values())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dev", type=Path, default=DEV / "dev.csv")
    ap.add_argument("--labels", type=Path, default=DEV / "labels.csv")
    ap.add_argument("--out", type=Path, default=Path("/tmp/bedside-bench-federated"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--local-epochs", type=int, default=2)
    ap.add_argument("--eps", default="1,3,8", help="DP targets (comma-separated; '' for none)")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--skip-plain", action="store_true", help="Only the DP settings.")
    a = ap.parse_args(argv)

    from bedside.federation.board import render
    from bedside.federation.config import DPConfig, FederationConfig, SiteConfig
    from bedside.federation.demo import SITES, make_bundle
    from bedside.federation.run import run_federation

    a.out.mkdir(parents=True, exist_ok=True)
    sites = make_sites(a.dev, a.labels, a.out / "sites")
    texts = pd.read_csv(a.dev)["medical_abstract"].astype(str).tolist()
    bundle = make_bundle(texts, a.out / "bundle", hidden=a.hidden)
    settings: list[float | None] = [] if a.skip_plain else [None]
    settings += [float(e) for e in a.eps.split(",") if e.strip()]
    results = []
    for eps in settings:
        cfg = FederationConfig(
            name="bench",
            bundle=bundle,
            sites=[SiteConfig(n, p) for n, p in zip(SITES, sites, strict=True)],
            rounds=a.rounds,
            local_epochs=a.local_epochs,
            exchange="full",
            runner="inprocess",
            dp=DPConfig(epsilon=eps) if eps else None,
        )
        t0 = time.monotonic()
        res = run_federation(
            cfg, a.out / f"eps-{eps or 'none'}", baselines=("local-only", "pooled")
        )
        res["bench_wall_s"] = round(time.monotonic() - t0, 1)
        results.append(res)
        label = f"DP epsilon {eps:g}" if eps else "no DP"
        print(f"\n### {label}\n\n{render(res['board'])}\n", flush=True)
        for r in res["board"]:
            rec = ", ".join("-" if x is None else f"{x:.3f}" for x in r["weighted"]["recall"])
            print(f"{r['model']}: per-class recall (weighted over sites) {rec}")
        per_round = [rd["bytes_up"] + rd["bytes_down"] for rd in res["rounds"]]
        print(
            f"rounds {len(res['rounds'])}, bytes exchanged per round {per_round}, "
            f"state {res['state_bytes']} bytes, wall {res['wall_s']}",
            flush=True,
        )
        (a.out / "results.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
