"""The leaderboard and the business-impact view, built from the store for one viewer.

The web pages, the JSON API and the CLI all call these functions, so what a viewer may see is
decided in one place (:mod:`.release`). The package::

    release.py   release rules: rounding of released figures, who sees which rows   (pure)
    ranking.py   sort, ranks, ties (=N labels), CI-overlap tie rule                   (pure)
    rows.py      one row from a submission's phase results, PFLOPs from provenance    (pure)
    shares.py    class shares and the small classes
    ties.py      TieJudge: paired bootstrap over stored predictions, bounded LRU
    board.py     build_leaderboard: the store read, then the pure functions above
    publish.py   publishing / withdrawing, audited with a digest
    impact.py    business impact of each visible row

Example::

    board = build_leaderboard(ws, viewer=OWNER)
    for row in board["rows"]:
        print(row["rank_label"], row["model"], row["macro_f1"])
"""

from bedside.leaderboard.board import build_leaderboard, latest_results, visible_contributor
from bedside.leaderboard.impact import IMPACT_FIELDS, impact_assumptions, impact_rows, vendors
from bedside.leaderboard.publish import PUBLISHED_KEY, is_published, set_published
from bedside.leaderboard.ranking import ci_overlap_tie, rank_rows, tie_method
from bedside.leaderboard.release import finite_or_none, round_released, scope_for
from bedside.leaderboard.rows import BASELINE_VENDOR, build_row, compute_pflops
from bedside.leaderboard.shares import (
    N_SMALL_CLASSES,
    active_corpus,
    class_shares,
    corpus_eda,
    shares_from_eda,
    shares_from_metrics,
    small_classes,
)
from bedside.leaderboard.ties import TieJudge

__all__ = [
    "BASELINE_VENDOR",
    "IMPACT_FIELDS",
    "N_SMALL_CLASSES",
    "PUBLISHED_KEY",
    "TieJudge",
    "active_corpus",
    "build_leaderboard",
    "build_row",
    "ci_overlap_tie",
    "class_shares",
    "compute_pflops",
    "corpus_eda",
    "finite_or_none",
    "impact_assumptions",
    "impact_rows",
    "is_published",
    "latest_results",
    "rank_rows",
    "round_released",
    "scope_for",
    "set_published",
    "shares_from_eda",
    "shares_from_metrics",
    "small_classes",
    "tie_method",
    "vendors",
    "visible_contributor",
]
