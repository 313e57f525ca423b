"""Decisions in words: each leaderboard row against the internal baseline, and one summary line.

A row is *ahead of* (or *behind*) the baseline only when the 95 % CI of its macro-F1 difference
excludes 0: the paired bootstrap on the same holdout rows where both have stored predictions,
otherwise the two rows' intervals must not overlap (more conservative). A contributor's board
before publication carries no ranks: a rank among one's own rows would read as a rank among all.

Example::

    board = leaderboard.build_leaderboard(ws, viewer)
    words = decide(ws, board, viewer)
    words["summary"]   # "No vendor is significantly above the internal baseline ..."
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bedside.leaderboard.ties import BoundedCache

if TYPE_CHECKING:
    from bedside.auth import Principal
    from bedside.workspace import Workspace

_CACHE = BoundedCache(maxsize=1024)  # (root, baseline result, row result, resamples) -> cmp


def hide_ranks(board: dict[str, Any], viewer: Principal | None) -> dict[str, Any]:
    """Blank the ranks of a contributor's unpublished board (the owner and a published board
    keep theirs)."""
    if board.get("published") or (viewer is not None and viewer.is_owner):
        return board
    board["ranks_hidden"] = True
    for row in board.get("rows") or []:
        if row.get("kind") != "baseline":
            row["rank"] = None
            row["rank_label"] = "–"
    return board


def excludes_zero(ci: Any) -> bool:
    """True when a 95 % CI ``[lo, hi]`` lies wholly on one side of 0.

    >>> excludes_zero([0.01, 0.05]), excludes_zero([-0.01, 0.05]), excludes_zero(None)
    (True, False, False)
    """
    try:
        lo, hi = float(ci[0]), float(ci[1])
    except (TypeError, ValueError, IndexError):
        return False
    return lo > 0 or hi < 0


def _fmt(v: float) -> str:
    return f"{v:+.3f}".replace("-", "−")


def _ci(ci: Any) -> str:
    return f"[{float(ci[0]):.3f}, {float(ci[1]):.3f}]"


def _versus(
    ws: Workspace,
    corpus: Any,
    base: Mapping[str, Any],
    row: Mapping[str, Any],
    resamples: int,
    paired: bool = True,
) -> dict[str, Any]:
    """Row minus baseline: ``{"delta", "ci", "method"}`` (ci None when it cannot be judged)."""
    if not paired:  # the release rules withhold the intervals: decide on nothing finer
        return {
            "delta": float(row["macro_f1"]) - float(base["macro_f1"]),
            "ci": None,
            "method": "withheld",
            "significant": False,
        }
    a, b = int(base["result_id"]), int(row["result_id"])
    key = (str(ws.root), a, b, resamples)
    hit = _CACHE.get(key)
    if hit is not None:
        return dict(hit)
    out: dict[str, Any] = {
        "delta": float(row["macro_f1"]) - float(base["macro_f1"]),
        "ci": None,
        "method": "ci_overlap",
    }
    try:
        from bedside.evaluation.results import compare_results, predictions_path

        if (
            corpus is not None
            and predictions_path(ws, a).exists()
            and predictions_path(ws, b).exists()
        ):
            cmp = compare_results(ws, corpus, a, b, resamples=resamples, seed=0)
            out = {"delta": float(cmp["delta"]), "ci": list(cmp["ci"]), "method": "paired"}
    except Exception:  # predictions unreadable: judge by the intervals below
        pass
    if out["ci"] is None:
        rc, bc = row.get("macro_f1_ci"), base.get("macro_f1_ci")
        if rc and bc:
            # the intervals do not overlap <=> the difference is significant under this rule
            ahead = float(rc[0]) > float(bc[1])
            behind = float(rc[1]) < float(bc[0])
            out["significant"] = ahead or behind
    else:
        out["significant"] = excludes_zero(out["ci"])
    out.setdefault("significant", False)
    _CACHE.put(key, out)
    return dict(out)


def decide(ws: Workspace, board: dict[str, Any], viewer: Principal | None) -> dict[str, Any]:
    """The summary line and, per submission row (by result id), its comparison with the internal
    baseline. Adds ``vs_baseline`` to every submission row of ``board``."""
    rows = board.get("rows") or []
    base = next(
        (r for r in rows if r.get("kind") == "baseline" and r.get("baseline_kind") != "current"),
        None,
    )
    # a figure withheld by the release rules (None) is no figure to decide on
    subs = [r for r in rows if r.get("kind") == "submission" and r.get("macro_f1") is not None]
    own = viewer is not None and not viewer.is_owner and board.get("scope") == "own"
    who = "none of your models" if own else "no vendor"
    if base is None or base.get("macro_f1") is None:
        return {
            "summary": "There is no internal baseline on this corpus yet to compare with.",
            "level": "info",
        }
    if not subs:
        return {
            "summary": f"No model has a result yet; the internal baseline scores "
            f"{float(base['macro_f1']):.3f} macro-F1.",
            "level": "info",
        }
    corpus = None
    try:
        from bedside.data.corpus import load_corpus

        corpus = load_corpus(ws)
    except Exception:  # no stored corpus files: interval rule only
        corpus = None
    resamples = int(ws.policy().bootstrap_resamples)
    # a contributor whose board the Ladder or public split reduces gets no paired test
    paired = (viewer is not None and viewer.is_owner) or all(
        r.get("macro_f1_ci") for r in [*subs, base]
    )
    for r in subs:
        r["vs_baseline"] = _versus(ws, corpus, base, r, resamples, paired)
    ahead = [r for r in subs if r["vs_baseline"]["significant"] and r["vs_baseline"]["delta"] > 0]
    if not ahead:
        best = max(subs, key=lambda r: float(r["macro_f1"]))
        v = best["vs_baseline"]
        detail = f"; the best, {best['model']} ({best['vendor']}), is {_fmt(v['delta'])}"
        if v["ci"]:
            detail += f" {_ci(v['ci'])}"
        elif v["method"] == "withheld":
            detail += " (the release rules withhold the intervals)"
        else:
            detail += " with overlapping 95 % intervals"
        return {
            "summary": f"{who.capitalize()} is significantly above the internal baseline "
            f"(macro-F1 {float(base['macro_f1']):.3f}){detail}.",
            "level": "warn",
        }
    top = max(ahead, key=lambda r: float(r["vs_baseline"]["delta"]))
    v = top["vs_baseline"]
    by = f"{_fmt(v['delta'])} macro-F1" + (f" {_ci(v['ci'])}" if v["ci"] else "")
    more = len(ahead) - 1
    tail = (
        f"; {more} other model{'s' if more != 1 else ''} also significantly ahead" if more else ""
    )
    return {
        "summary": f"{top['model']} ({top['vendor']}) is ahead of the internal baseline by {by}{tail}.",
        "level": "ok",
    }
