"""The model card of a screening model: README.md in the Hugging Face model-card layout.

YAML front matter (tags, the metrics in ``model-index`` form), then: model details, intended
use, training data (aggregate EDA only: class counts and shares, lengths), evaluation (macro-F1
and per-class recall with bootstrap CIs, robustness by length, calibration), operating points
(threshold, expected recall with CI, precision, workload per 1,000, on the reporting half),
shadow operation (the latest run's counts), limitations. Aggregates only: no abstract, no row id.

Example::

    write_card(ws, model_id, Path("export/README.md"))
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from bedside.screening.models import ScreeningModel, get_model
from bedside.store import schema

if TYPE_CHECKING:
    from bedside.workspace import Workspace


def _f(v: Any, d: int = 3) -> str:
    return "–" if v is None else f"{float(v):.{d}f}"


def _ci(ci: Any) -> str:
    return "–" if not ci else f"[{float(ci[0]):.3f}, {float(ci[1]):.3f}]"


def _front_matter(model: ScreeningModel, metrics: dict[str, Any]) -> list[str]:
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: text-classification",
        "tags: [bedside, medical-abstracts, screening]",
        "model-index:",
        f"- name: {model.name}",
        "  results:",
        "  - task: {type: text-classification}",
        "    dataset: {name: workspace holdout, type: private, revision: "
        + model.corpus_hash[:12]
        + "}",
        "    metrics:",
        f"    - {{type: f1, name: macro-F1, value: {_f(metrics.get('macro_f1'))}}}",
        f"    - {{type: accuracy, value: {_f(metrics.get('accuracy'))}}}",
    ]
    for pc in metrics.get("per_class") or []:
        lines.append(
            f"    - {{type: recall, name: recall {pc['name']}, value: {_f(pc.get('recall'))}}}"
        )
    return [*lines, "---", ""]


def card_text(ws: Workspace, model: ScreeningModel) -> str:
    """The card's Markdown (see the module docstring)."""
    from bedside.data.corpus import load_corpus
    from bedside.evaluation.results import get_result

    result = get_result(ws, model.result_id)
    m = result["metrics"]
    prov = result["provenance"] or {}
    corpus = load_corpus(ws, model.corpus_version_id)
    eda = (corpus.meta.get("report") or {}).get("eda") or {}
    out = _front_matter(model, m)
    out += [
        f"# {model.name} (screening model {model.id})",
        "",
        "## Model details",
        "",
        f"- Submission {model.submission_id}, phase {model.phase} result {model.result_id}; "
        f"recipe: `{(prov.get('recipe') or {}).get('method', 'unknown')}`.",
        f"- Bundle hash `{model.bundle_hash}`; corpus version `{model.corpus_hash}`.",
        f"- Decision rule: {model.decision.get('rule')}"
        + (
            f" (offsets {', '.join(f'{o:+.2f}' for o in model.decision.get('offsets', []))})"
            if model.decision.get("rule") == "fitted-offsets"
            else ""
        )
        + ".",
        f"- Classes: {', '.join(corpus.class_names)}.",
        "",
        "## Intended use",
        "",
        "Screening new medical abstracts of the workspace's classes, with a human reviewer for "
        "every abstract flagged *needs review*. It is run in shadow operation beside the current "
        "classifier before it replaces it. Not for diagnosis or for any decision about a patient.",
        "",
        "## Training data",
        "",
        f"The workspace corpus, version `{model.corpus_hash[:12]}`: {len(corpus.train)} training "
        f"and {len(corpus.holdout)} holdout abstracts (aggregate figures only).",
        "",
    ]
    classes = eda.get("classes") or []
    if classes:
        out += ["| class | train | holdout | share |", "|---|---:|---:|---:|"]
        for c in classes:
            out.append(f"| {c['name']} | {c['train']} | {c['holdout']} | {c['share_pct']} % |")
        out.append("")
    out += [
        "## Evaluation",
        "",
        f"On the holdout (n = {m.get('n')}), scored outside the sandbox by the trusted scorer; "
        f"95 % bootstrap CIs ({m.get('resamples')} resamples).",
        "",
        f"- macro-F1 {_f(m.get('macro_f1'))} {_ci(m.get('macro_f1_ci'))}; accuracy "
        f"{_f(m.get('accuracy'))}.",
        "",
        "| class | precision | recall | recall 95 % CI | F1 | support |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for pc in m.get("per_class") or []:
        out.append(
            f"| {pc['name']} | {_f(pc.get('precision'))} | {_f(pc.get('recall'))} | "
            f"{_ci(pc.get('recall_ci'))} | {_f(pc.get('f1'))} | {pc.get('support')} |"
        )
    rob = m.get("robustness") or {}
    out += ["", "### Robustness by length", ""]
    if rob.get("bins"):
        out.append(f"Word-count edges {rob.get('edges')}; worst gap {_f(rob.get('worst_gap'))}.")
        out.append("")
        out += ["| length | n | macro-F1 |", "|---|---:|---:|"]
        out += [f"| {b['name']} | {b['n']} | {_f(b.get('macro_f1'))} |" for b in rob["bins"]]
    out += ["", "### Calibration", "", f"Expected calibration error {_f(m.get('ece'))}.", ""]
    out += ["## Operating points", ""]
    if model.points and model.points.points:
        ops = model.points
        out += [
            f"Thresholds picked on the tuning half ({ops.n_tuning} rows) and measured on the "
            f"reporting half ({ops.n_reporting} rows): {ops.slice_rule}.",
            "",
            "| class | target | threshold | expected recall | 95 % CI | precision | "
            "flagged per 1,000 | note |",
            "|---|---:|---:|---:|---|---:|---:|---|",
        ]
        for p in ops.points:
            out.append(
                f"| {p.class_name} | {p.target:.2f} | {_f(p.threshold, 4)} | "
                f"{_f(p.expected_recall)} | {_ci(p.recall_ci)} | {_f(p.precision)} | "
                f"{_f(p.workload_per_1000, 1)} | {'reached' if p.reached else 'NOT reachable'} |"
            )
    else:
        out.append("No recall targets set yet (`bedside screening targets`).")
    out += ["", "## Shadow operation", ""]
    shadow = _latest_shadow(ws, model.id)
    if shadow:
        out.append(
            f"Latest run: {shadow['n']} abstracts compared with the {shadow['source']}; agreement "
            f"{_f(shadow.get('agreement'))}. Flagged by this model but put elsewhere by the "
            "current classifier: "
            + ", ".join(f"{k} {v}" for k, v in (shadow.get("missed_by_current") or {}).items())
            + "."
        )
    else:
        out.append("No shadow run yet.")
    out += [
        "",
        "## Limitations",
        "",
        "- The holdout is one hospital's corpus; recall on a different publication mix may differ: "
        "shadow operation and reviewer labels (`bedside screening realised`) measure it.",
        "- Expected recall comes from half the holdout; small classes have wide intervals.",
        "- Texts beyond the model's window settings are truncated or windowed as in phase 2.",
        "",
    ]
    return "\n".join(out)


def _latest_shadow(ws: Workspace, model_id: int) -> dict[str, Any] | None:
    r = schema.screening_runs
    with ws.store.read() as conn:
        rows = conn.execute(
            select(r.c.summary).where(r.c.model_id == model_id).order_by(r.c.id.desc())
        ).scalars()
        for s in rows:
            if s and s.get("shadow"):
                return dict(s["shadow"])
    return None


def write_card(ws: Workspace, model_id: int, dest: Path) -> Path:
    dest.write_text(card_text(ws, get_model(ws, model_id)))
    return dest
