"""The leaderboard and the business-impact view, built from the store for one viewer.

The web pages, the JSON API and the CLI all call these functions, so what a viewer may see is
decided in one place:

* the owner sees every row, published or not;
* before publishing, a contributor sees only their own rows and the internal baseline;
* after publishing, every authenticated viewer sees every row.

Example::

    board = build_leaderboard(ws, viewer=OWNER)
    for row in board["rows"]:
        print(row["rank_label"], row["model"], row["macro_f1"])
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from bedside.errors import AuthError, ConfigError
from bedside.store import audit, schema

if TYPE_CHECKING:
    from bedside.auth import Principal
    from bedside.workspace import Workspace

PUBLISHED_KEY = "published"
BASELINE_VENDOR = "internal baseline"
N_SMALL_CLASSES = 2


# -- publishing ---------------------------------------------------------------------------
def is_published(ws: Workspace) -> bool:
    return bool(ws.store.get_setting(PUBLISHED_KEY, False))


def set_published(ws: Workspace, published: bool, actor: str = "owner") -> dict[str, Any]:
    """Publish (or withdraw) the leaderboard; the audit entry holds a digest of what was shown.

    Returns ``{"published": bool, "changed": bool, "rows": n}``.
    """
    from bedside.auth import OWNER

    board = build_leaderboard(ws, OWNER)
    snapshot = [
        {
            "rank": r["rank_label"],
            "model": r["model"],
            "vendor": r["vendor"],
            "macro_f1": r["macro_f1"],
        }
        for r in board["rows"]
    ]
    digest = hashlib.sha256(json.dumps(snapshot, sort_keys=True).encode()).hexdigest()
    with ws.store.write() as conn:
        t = schema.settings
        row = conn.execute(select(t.c.value).where(t.c.key == PUBLISHED_KEY)).first()
        was = bool(row[0]) if row else False
        ws.store.set_setting(PUBLISHED_KEY, published, conn)
        action = "leaderboard.publish" if published else "leaderboard.unpublish"
        payload: dict[str, Any] = {"was_published": was, "rows": len(snapshot), "digest": digest}
        if published:
            payload["snapshot"] = snapshot
        audit.append(conn, actor, action, payload)
    return {"published": published, "changed": was != published, "rows": len(snapshot)}


# -- small helpers ------------------------------------------------------------------------
def _round(x: Any, decimals: int) -> Any:
    """Round every float in ``x`` (recursively) to the released precision."""
    if isinstance(x, bool) or x is None:
        return x
    if isinstance(x, float):
        return None if math.isnan(x) else round(x, decimals)
    if isinstance(x, Mapping):
        return {k: _round(v, decimals) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_round(v, decimals) for v in x]
    return x


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def compute_pflops(provenance: Mapping[str, Any]) -> tuple[float | None, bool]:
    """PFLOPs a result used, from its provenance: (value, is_estimate).

    Reads ``compute.actual_pflops`` (or ``pflops_actual`` / ``pflops``); falls back to the
    pre-flight estimate, flagged as such.
    """
    compute = provenance.get("compute")
    sources: list[Mapping[str, Any]] = [compute] if isinstance(compute, Mapping) else []
    sources.append(provenance)
    for src in sources:
        for key in ("actual_pflops", "pflops_actual", "pflops", "compute_pflops"):
            v = _num(src.get(key))
            if v is not None:
                return v, False
        flops = _num(src.get("flops") or src.get("actual_flops"))
        if flops is not None:
            return flops / 1e15, False
    for src in sources:
        for key in ("estimated_pflops", "pflops_estimate", "estimate_pflops"):
            v = _num(src.get(key))
            if v is not None:
                return v, True
    return None, False


def class_shares(ws: Workspace, corpus_version_id: int | None = None) -> dict[str, float]:
    """Class shares of the corpus (from its EDA; else from the holdout supports of any result)."""
    eda = corpus_eda(ws, corpus_version_id) or {}
    shares = shares_from_eda(eda)
    if shares and abs(sum(shares.values()) - 1.0) <= 0.02:  # complete (no class suppressed)
        return shares
    t = schema.results
    q = select(t.c.metrics).order_by(t.c.id.desc()).limit(1)
    if corpus_version_id is not None:
        q = q.where(t.c.corpus_version_id == corpus_version_id)
    with ws.store.read() as conn:
        m = conn.execute(q).scalar()
    return shares_from_metrics(m or {})


def shares_from_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    per = metrics.get("per_class") or []
    if per and all("share" in c for c in per):
        return {c["name"]: float(c["share"]) for c in per}
    total = sum(int(c.get("support", 0)) for c in per)
    return {c["name"]: int(c.get("support", 0)) / total for c in per} if total else {}


def shares_from_eda(eda: Mapping[str, Any]) -> dict[str, float]:
    """``{class: share}`` (fractions) from an EDA report (``classes[].share_pct``, else counts).

    A class whose share is suppressed (fewer than k rows) is left out.
    """
    classes = eda.get("classes")
    if not isinstance(classes, list):
        return {}
    out: dict[str, float] = {}
    for c in classes:
        if not isinstance(c, Mapping) or "name" not in c:
            continue
        pct, share = _num(c.get("share_pct")), _num(c.get("share"))
        if pct is not None:
            out[str(c["name"])] = pct / 100.0
        elif share is not None:
            out[str(c["name"])] = share
    if out:
        return out
    counts = {
        str(c["name"]): _num(c.get("total", c.get("count")))
        for c in classes
        if isinstance(c, Mapping)
    }
    total = sum(v for v in counts.values() if v)
    return {k: v / total for k, v in counts.items() if v} if total else {}


def small_classes(shares: Mapping[str, float], n: int = N_SMALL_CLASSES) -> list[str]:
    """The ``n`` smallest classes by share (highlighted on the leaderboard)."""
    return [name for name, _ in sorted(shares.items(), key=lambda kv: kv[1])[:n]]


def active_corpus(ws: Workspace) -> dict[str, Any] | None:
    t = schema.corpus_versions
    with ws.store.read() as conn:
        row = (
            conn.execute(select(t).where(t.c.active.is_(True)).order_by(t.c.id.desc()))
            .mappings()
            .first()
        )
    return dict(row) if row else None


def corpus_eda(ws: Workspace, corpus_version_id: int | None = None) -> dict[str, Any] | None:
    """The aggregate EDA report stored with a corpus version (the active one by default)."""
    t = schema.corpus_versions
    q = select(t.c.report)
    q = q.where(t.c.id == corpus_version_id) if corpus_version_id else q.where(t.c.active.is_(True))
    with ws.store.read() as conn:
        report = conn.execute(q.order_by(t.c.id.desc())).scalar()
    eda = (report or {}).get("eda")
    return dict(eda) if isinstance(eda, Mapping) else None


# -- ties ---------------------------------------------------------------------------------
@dataclass
class TieJudge:
    """Decides whether two adjacent rows are statistically tied.

    Uses the paired bootstrap over the owner-only stored predictions (tie when the 95 % CI of the
    macro-F1 difference includes 0). Where those are missing it falls back to the overlap of the
    two rows' macro-F1 intervals, which is more conservative (more ties); ``methods_used`` says
    which was used so that the page can state it.
    """

    ws: Workspace
    resamples: int = 1000
    seed: int = 0
    methods_used: set[str] = field(default_factory=set)
    _corpus: Any = None

    def tied(self, above: Mapping[str, Any], below: Mapping[str, Any]) -> bool:
        paired = self._paired(int(above["result_id"]), int(below["result_id"]))
        if paired is not None:
            self.methods_used.add("paired_bootstrap")
            return paired
        self.methods_used.add("ci_overlap")
        a_lo = (above.get("macro_f1_ci") or [None, None])[0]
        b_hi = (below.get("macro_f1_ci") or [None, None])[1]
        if a_lo is None or b_hi is None:
            return bool(above["macro_f1"] == below["macro_f1"])
        return bool(b_hi >= a_lo)

    def _paired(self, a: int, b: int) -> bool | None:
        key = (str(self.ws.root), a, b, self.resamples, self.seed)
        if key in _PAIRED_CACHE:
            return _PAIRED_CACHE[key]
        try:
            from bedside.evaluation.paired import is_tie
            from bedside.evaluation.results import compare_results, predictions_path

            if not (
                predictions_path(self.ws, a).exists() and predictions_path(self.ws, b).exists()
            ):
                return None
            if self._corpus is None:
                from bedside.data.corpus import load_corpus

                self._corpus = load_corpus(self.ws)
            cmp = compare_results(
                self.ws, self._corpus, a, b, resamples=self.resamples, seed=self.seed
            )
        except Exception:  # artefacts missing or unreadable: fall back to CI overlap
            return None
        _PAIRED_CACHE[key] = result = bool(is_tie(cmp))
        return result


# Paired bootstraps are deterministic for (results, resamples, seed): compute each once.
_PAIRED_CACHE: dict[tuple[str, int, int, int, int], bool] = {}


# -- the leaderboard ----------------------------------------------------------------------
def visible_contributor(ws: Workspace, viewer: Principal | None) -> int | None | bool:
    """Which submissions ``viewer`` may see: True (all), or one contributor id.

    Raises AuthError for an anonymous viewer before publishing.
    """
    if viewer is not None and viewer.is_owner:
        return True
    if is_published(ws):
        return True
    if viewer is None:
        raise AuthError(
            "the leaderboard is not published yet.",
            hint="Log in with your API token to see your own results.",
        )
    return viewer.contributor_id


def _latest_results(ws: Workspace, corpus_version_id: int) -> list[dict[str, Any]]:
    r, s, c = schema.results, schema.submissions, schema.contributors
    q = (
        select(
            r,
            s.c.name.label("submission_name"),
            s.c.contributor_id,
            s.c.status.label("submission_status"),
            c.c.name.label("vendor"),
        )
        .select_from(
            r.outerjoin(s, r.c.submission_id == s.c.id).outerjoin(c, s.c.contributor_id == c.c.id)
        )
        .where(r.c.corpus_version_id == corpus_version_id)
        .order_by(r.c.id)
    )
    with ws.store.read() as conn:
        rows = [dict(x) for x in conn.execute(q).mappings()]
    latest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:  # ordered by id: later results of the same (submission, phase) win
        key = (
            row["submission_id"],
            row["phase"],
            row["model_label"] if row["submission_id"] is None else "",
        )
        latest[key] = row
    return list(latest.values())


def _row(
    head: Mapping[str, Any],
    p1: Mapping[str, Any] | None,
    p2: Mapping[str, Any] | None,
    small: set[str],
    decimals: int,
) -> dict[str, Any]:
    m = head["metrics"] or {}
    per_class = [
        {
            "name": pc.get("name"),
            "f1": pc.get("f1"),
            "recall": pc.get("recall"),
            "precision": pc.get("precision"),
            "share": pc.get("share"),
            "small": pc.get("name") in small,
        }
        for pc in m.get("per_class") or []
    ]
    delta = delta_ci = None
    if p1 is not None and p2 is not None:
        dv = (p2["metrics"] or {}).get("delta_vs_phase1") or {}
        delta = _num(dv.get("delta"))
        delta_ci = dv.get("ci")
        if delta is None:
            delta = float(p2["macro_f1"]) - float(p1["macro_f1"])
    pflops: float | None = None
    estimated = False
    for part in (p1, p2) if head["submission_id"] is not None else (head,):
        if part is None:
            continue
        v, est = compute_pflops(part["provenance"] or {})
        if v is not None:
            pflops = (pflops or 0.0) + v
            estimated = estimated or est
    is_baseline = head["submission_id"] is None
    row = {
        "kind": "baseline" if is_baseline else "submission",
        "rank": None,
        "rank_label": "baseline" if is_baseline else "",
        "tied_with_above": False,
        "result_id": head["id"],
        "submission_id": head["submission_id"],
        "model": head["model_label"]
        if is_baseline
        else (head.get("submission_name") or head["model_label"]),
        "vendor": BASELINE_VENDOR if is_baseline else head.get("vendor"),
        "phase": head["phase"],
        "macro_f1": float(head["macro_f1"]),
        "macro_f1_ci": m.get("macro_f1_ci"),
        "accuracy": m.get("accuracy"),
        "phase1_macro_f1": float(p1["macro_f1"]) if p1 else None,
        "phase2_macro_f1": float(p2["macro_f1"]) if p2 else None,
        "delta": delta,
        "delta_ci": delta_ci,
        "per_class": per_class,
        "worst_gap": (m.get("robustness") or {}).get("worst_gap"),
        "compute_pflops": pflops,
        "compute_estimated": estimated,
        "n": m.get("n"),
    }
    return _round(row, decimals)


def build_leaderboard(
    ws: Workspace,
    viewer: Principal | None,
    *,
    corpus_version_id: int | None = None,
) -> dict[str, Any]:
    """Rows of the leaderboard that ``viewer`` may see, best first, with ties marked."""
    scope = visible_contributor(ws, viewer)
    policy = ws.policy()
    corpus = (
        active_corpus(ws) if corpus_version_id is None else {"id": corpus_version_id, "hash": None}
    )
    published = is_published(ws)
    board: dict[str, Any] = {
        "published": published,
        "corpus_version": {"id": corpus["id"], "hash": corpus["hash"]} if corpus else None,
        "classes": [],
        "small_classes": [],
        "tie_method": None,
        "decimals": policy.score_decimals,
        "scope": "all" if scope is True else "own",
        "rows": [],
    }
    if corpus is None:
        return board
    cv_id = int(corpus["id"] or 0)
    results = _latest_results(ws, cv_id)
    shares = class_shares(ws, cv_id)
    if not shares and results:
        shares = shares_from_metrics(results[0]["metrics"] or {})
    small = set(small_classes(shares))
    board["classes"] = list(shares)
    board["small_classes"] = [c for c in shares if c in small]

    by_sub: dict[int, dict[int, dict[str, Any]]] = {}
    rows: list[dict[str, Any]] = []
    for res in results:
        if res["submission_id"] is None:
            if res["phase"] == 0:
                rows.append(_row(res, None, None, small, policy.score_decimals))
            continue
        if scope is not True and res["contributor_id"] != scope:
            continue
        by_sub.setdefault(res["submission_id"], {})[res["phase"]] = res
    for phases in by_sub.values():
        p1, p2 = phases.get(1), phases.get(2)
        head = p2 or p1
        if head is not None:
            rows.append(_row(head, p1, p2, small, policy.score_decimals))
    rows.sort(key=lambda r: (-r["macro_f1"], r["kind"] == "baseline", str(r["model"])))

    judge = TieJudge(ws, resamples=policy.bootstrap_resamples)
    ranked = [r for r in rows if r["kind"] == "submission"]
    for i, row in enumerate(ranked):
        if i > 0 and judge.tied(ranked[i - 1], row):
            row["rank"] = ranked[i - 1]["rank"]
            row["tied_with_above"] = True
        else:
            row["rank"] = i + 1
    tied_ranks = {r["rank"] for r in ranked if r["tied_with_above"]}
    for row in ranked:
        row["rank_label"] = f"={row['rank']}" if row["rank"] in tied_ranks else str(row["rank"])
    if len(judge.methods_used) == 1:
        board["tie_method"] = next(iter(judge.methods_used))
    elif judge.methods_used:
        board["tie_method"] = "mixed"
    board["rows"] = rows
    return board


# -- business impact ----------------------------------------------------------------------
IMPACT_FIELDS = (
    "abstracts_per_year",
    "cost_per_missed_paper",
    "reviewer_cost_per_fte",
    "reviewer_fte",
    "ai_cost_per_year",
    "currency",
)


def impact_assumptions(values: Mapping[str, Any] | None = None) -> Any:
    """``ImpactAssumptions`` from form or CLI values (strings accepted, blanks ignored).

    Raises ConfigError naming a bad value.
    """
    from bedside.evaluation.impact import ImpactAssumptions

    kwargs: dict[str, Any] = {}
    for key, raw in (values or {}).items():
        if key not in IMPACT_FIELDS or raw is None or raw == "":
            continue
        if key == "currency":
            kwargs[key] = str(raw).strip().upper()
            continue
        try:
            v = float(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{key} must be a number, got {raw!r}.") from None
        if key == "abstracts_per_year":
            if not v.is_integer():
                raise ConfigError(f"abstracts_per_year must be a whole number, got {raw!r}.")
            kwargs[key] = int(v)
        else:
            kwargs[key] = v
    return ImpactAssumptions(**kwargs)


def impact_rows(
    ws: Workspace,
    viewer: Principal | None,
    assumptions: Mapping[str, Any] | None = None,
    ai_costs: Mapping[str, float] | None = None,
    baseline_cost: float = 0.0,
) -> dict[str, Any]:
    """Business impact of every leaderboard row the viewer may see, baseline included.

    ``ai_costs`` maps a vendor name to its yearly price (default: ``ai_cost_per_year``); the
    internal baseline costs ``baseline_cost`` a year. ``vs_baseline`` is the total-cost
    difference to the internal baseline (negative = cheaper).
    """
    from bedside.evaluation.impact import estimate_impact

    a = impact_assumptions(assumptions)
    board = build_leaderboard(ws, viewer)
    shares = class_shares(ws, (board["corpus_version"] or {}).get("id"))
    out_rows: list[dict[str, Any]] = []
    for row in board["rows"]:
        recall = {str(pc["name"]): float(pc["recall"] or 0.0) for pc in row["per_class"]}
        row_shares = {c: v for c, v in shares.items() if c in recall} or {
            c: 1 / len(recall) for c in recall
        }
        if row["kind"] == "baseline":
            ai: float | None = float(baseline_cost)
        elif ai_costs and row["vendor"] in ai_costs:
            ai = float(ai_costs[row["vendor"]])
        else:
            ai = None  # the assumption's default
        est = estimate_impact(recall, row_shares, a, label=row["vendor"], ai_cost=ai)
        out_rows.append(
            {
                "model": row["model"],
                "vendor": row["vendor"],
                "kind": row["kind"],
                "rank_label": row["rank_label"],
                "macro_f1": row["macro_f1"],
                "missed_per_year": round(est["missed_total"], 1),
                "missed_per_class": {k: round(v, 1) for k, v in est["missed_per_class"].items()},
                "miss_cost": round(est["miss_cost"], 2),
                "reviewer_cost": round(est["reviewer_cost"], 2),
                "ai_cost": round(est["ai_cost"], 2),
                "total_cost": round(est["total_cost"], 2),
            }
        )
    base = next((r for r in out_rows if r["kind"] == "baseline"), None)
    for r in out_rows:
        r["vs_baseline"] = round(r["total_cost"] - base["total_cost"], 2) if base else None
    return {
        "assumptions": {
            **a.to_dict(),
            "baseline_cost_per_year": float(baseline_cost),
            "ai_costs": dict(ai_costs or {}),
        },
        "statements": [
            *a.describe(),
            f"The internal baseline costs {baseline_cost:,.0f} {a.currency} a year to run.",
        ],
        "currency": a.currency,
        "class_shares": {k: round(v, 4) for k, v in shares.items()},
        "published": board["published"],
        "rows": out_rows,
    }


def vendors(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Distinct vendor names of submission rows, in order of appearance."""
    seen: list[str] = []
    for r in rows:
        if r["kind"] == "submission" and r["vendor"] not in seen:
            seen.append(r["vendor"])
    return seen
