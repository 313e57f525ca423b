"""The leaderboard over time: every model's score on each corpus version, and rank changes.

Results are kept per corpus version (``results.corpus_version_id``); re-evaluation
(:mod:`bedside.reevaluate`) puts the same submissions on newer versions. For one viewer this
builds the board of every version (the same release rules as the board itself: visibility,
rounding, the Ladder, the public/private split) and lines the rows up per model:

* ``models``: per model (a submission, or a baseline by its label), its released score and CI
  on each version where it has one;
* ``rank_changes``: for each pair of consecutive comparable versions, each pair of models whose
  order flipped, with a paired bootstrap of the two on the newer version's holdout rows (the
  same rows for both): ``significant`` when the 95 % CI of the difference excludes 0. Paired
  tests use exact scores, so they are given only where the viewer sees exact figures (never
  while the Ladder or the public split withholds them);
* versions whose class set differs from the one before are not compared (``comparable`` is
  False, with the reason).

Example::

    h = leaderboard_history(ws, OWNER)
    [m["model"] for m in h["models"]], h["rank_changes"][0]["significant"]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from bedside.leaderboard.board import build_leaderboard
from bedside.store import schema

if TYPE_CHECKING:
    from bedside.auth import Principal
    from bedside.workspace import Workspace


def _key(row: dict[str, Any]) -> str:
    if row["kind"] == "submission":
        return f"s{row['submission_id']}"
    return f"b:{row['model']}"


def _class_reason(prev: dict[str, Any], cur: dict[str, Any]) -> str | None:
    from bedside.reevaluate import class_set_reason

    return class_set_reason(prev["classes"], cur["classes"])


def leaderboard_history(
    ws: Workspace,
    viewer: Principal | None,
    *,
    paired: bool = True,
    resamples: int | None = None,
) -> dict[str, Any]:
    """Per-model scores on every corpus version and the significant rank changes between them."""
    from bedside.data.corpus import list_versions

    versions = list_versions(ws)
    classes: dict[int, Any] = {}
    with ws.store.read() as conn:
        t = schema.corpus_versions
        for r in conn.execute(select(t.c.id, t.c.classes)):
            classes[int(r.id)] = r.classes
    out_versions: list[dict[str, Any]] = []
    boards: dict[int, dict[str, Any]] = {}
    prev: dict[str, Any] | None = None
    for v in versions:
        vid = int(v["id"])
        board = build_leaderboard(ws, viewer, corpus_version_id=vid)
        boards[vid] = board
        entry = {
            "id": vid,
            "hash": str(v["hash"])[:12],
            "created_at": v["created_at"],
            "n_train": v["n_train"],
            "n_holdout": v["n_holdout"],
            "active": bool(v["active"]),
            "holdout": board.get("holdout"),
            "comparable": True,
            "reason": None,
        }
        cur = {"classes": classes.get(vid) or []}
        if prev is not None and (why := _class_reason(prev, cur)) is not None:
            entry["comparable"], entry["reason"] = False, why
        prev = cur
        out_versions.append(entry)

    models: dict[str, dict[str, Any]] = {}
    for vid, board in boards.items():
        for row in board["rows"]:
            m = models.setdefault(
                _key(row),
                {
                    "key": _key(row),
                    "model": row["model"],
                    "vendor": row["vendor"],
                    "kind": row["kind"],
                    "submission_id": row.get("submission_id"),
                    "scores": {},
                },
            )
            m["scores"][vid] = {
                "macro_f1": row["macro_f1"],
                "macro_f1_ci": row.get("macro_f1_ci"),
                "rank_label": row.get("rank_label"),
                "rank": row.get("rank"),
                "phase": row.get("phase"),
                "result_id": row.get("result_id"),
            }
    changes = _rank_changes(ws, out_versions, boards, models, paired=paired, resamples=resamples)
    return {
        "versions": out_versions,
        "models": list(models.values()),
        "rank_changes": changes,
        "decimals": ws.policy().score_decimals,
    }


def _rank_changes(
    ws: Workspace,
    versions: list[dict[str, Any]],
    boards: dict[int, dict[str, Any]],
    models: dict[str, dict[str, Any]],
    *,
    paired: bool,
    resamples: int | None,
) -> list[dict[str, Any]]:
    from bedside.data.corpus import load_corpus
    from bedside.evaluation.paired import is_tie
    from bedside.evaluation.results import compare_results

    policy = ws.policy()
    n_resamples = resamples or policy.bootstrap_resamples
    out: list[dict[str, Any]] = []
    for before, after in zip(versions, versions[1:], strict=False):
        if not after["comparable"]:
            continue
        a, b = before["id"], after["id"]
        ranked = [
            m
            for m in models.values()
            if m["kind"] == "submission"
            and (m["scores"].get(a) or {}).get("rank") is not None
            and (m["scores"].get(b) or {}).get("rank") is not None
        ]
        exact = not (boards[b].get("holdout") or {}).get("withheld")
        corpus = None
        for i, x in enumerate(ranked):
            for y in ranked[i + 1 :]:
                ra, rb = x["scores"][a]["rank"], y["scores"][a]["rank"]
                na, nb = x["scores"][b]["rank"], y["scores"][b]["rank"]
                if (ra - rb) * (na - nb) >= 0:
                    continue  # same order (or a tie) on both versions
                up, down = (x, y) if na < nb else (y, x)
                change: dict[str, Any] = {
                    "from_version": a,
                    "to_version": b,
                    "up": up["model"],
                    "down": down["model"],
                    "up_vendor": up["vendor"],
                    "down_vendor": down["vendor"],
                    "delta": None,
                    "ci": None,
                    "p_value": None,
                    "significant": None,
                    "tested": False,
                }
                if paired and exact:
                    try:
                        corpus = corpus or load_corpus(ws, b)
                        cmp = compare_results(
                            ws,
                            corpus,
                            int(down["scores"][b]["result_id"]),
                            int(up["scores"][b]["result_id"]),
                            resamples=n_resamples,
                        )
                    except Exception:  # predictions not stored (a restored store)
                        cmp = None
                    if cmp is not None:
                        d = policy.score_decimals
                        change.update(
                            delta=round(cmp["delta"], d),
                            ci=[round(c, d) for c in cmp["ci"]],
                            p_value=round(cmp["p_value"], 4),
                            significant=not is_tie(cmp),
                            tested=True,
                        )
                out.append(change)
    return out


def history_lines(h: dict[str, Any]) -> list[str]:
    """Rank changes in plain words (CLI and page)."""
    lines = []
    for c in h["rank_changes"]:
        head = (
            f"version {c['from_version']} -> {c['to_version']}: {c['up']} moved above {c['down']}"
        )
        if not c["tested"]:
            lines.append(f"{head} (not tested: exact scores are withheld or predictions missing)")
        elif c["significant"]:
            lines.append(
                f"{head}; significant (paired bootstrap on version {c['to_version']}'s rows: "
                f"delta {c['delta']:+}, 95 % CI {c['ci']}, p = {c['p_value']})"
            )
        else:
            lines.append(
                f"{head}; not significant (delta {c['delta']:+}, 95 % CI {c['ci']} includes 0)"
            )
    for v in h["versions"]:
        if not v["comparable"]:
            lines.append(f"version {v['id']} is not compared with the one before: {v['reason']}")
    return lines
