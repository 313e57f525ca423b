"""The federation's leaderboard: per-site and sample-weighted macro-F1 with CIs, per model.

Each site reports aggregate numbers only: its macro-F1 and CI, per-class recall and support,
and the seeded bootstrap replicates of its macro-F1. The sample-weighted macro-F1 is
``sum(n_s * f1_s) / sum(n_s)``; its CI comes from the same weighting applied replicate by
replicate (sites are resampled independently, so that is a stratified bootstrap) and needs no
record to leave a site.

Example::

    rows = board({"local-only": [...], "federated": [...]})
    print(render(rows))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bedside.evaluation.bootstrap import percentile_ci


def weighted(reports: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Sample-weighted macro-F1 (and CI) and support-weighted per-class recall over sites."""
    n = np.array([r["n"] for r in reports], dtype=float)
    f1 = np.array([r["macro_f1"] for r in reports], dtype=float)
    reps = np.array([r["replicates"] for r in reports], dtype=float)  # (sites, B)
    w = n / n.sum()
    out: dict[str, Any] = {
        "n": int(n.sum()),
        "macro_f1": float(w @ f1),
        "macro_f1_ci": percentile_ci(w @ reps),
    }
    support = np.array([r["support"] for r in reports], dtype=float)  # (sites, K)
    recall = np.array([r["recall"] for r in reports], dtype=float)
    tot = support.sum(0)
    out["recall"] = [
        float((recall[:, k] * support[:, k]).sum() / tot[k]) if tot[k] else None
        for k in range(support.shape[1])
    ]
    eps = [r["epsilon"] for r in reports if r.get("epsilon") is not None]
    out["epsilon"] = max(eps) if eps else None
    return out


def board(models: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """One row per model: ``{"model", "sites": {name: {macro_f1, ci, n}}, "weighted": ...}``."""
    rows = []
    for model, reports in models.items():
        good = [r for r in reports if "macro_f1" in r]
        if not good:
            continue
        rows.append(
            {
                "model": model,
                "sites": {
                    r["site"]: {
                        "macro_f1": r["macro_f1"],
                        "macro_f1_ci": r["macro_f1_ci"],
                        "n": r["n"],
                        "epsilon": r.get("epsilon"),
                    }
                    for r in good
                },
                "weighted": weighted(good),
            }
        )
    return rows


def _ci(ci: Sequence[float] | None) -> str:
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "-"


def render(rows: Sequence[Mapping[str, Any]]) -> str:
    """A Markdown table: model, each site's macro-F1 [CI], weighted macro-F1 [CI], epsilon."""
    if not rows:
        return "(no results)"
    sites = list(rows[0]["sites"])
    head = ["model", *sites, "weighted macro-F1", "epsilon"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [str(r["model"])]
        for s in sites:
            v = r["sites"].get(s)
            cells.append(f"{v['macro_f1']:.3f} {_ci(v['macro_f1_ci'])}" if v else "-")
        wt = r["weighted"]
        cells.append(f"**{wt['macro_f1']:.3f}** {_ci(wt['macro_f1_ci'])}")
        cells.append("-" if wt["epsilon"] is None else f"{wt['epsilon']:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
