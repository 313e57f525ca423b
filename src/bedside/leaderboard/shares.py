"""Class shares of the corpus (pure functions over EDA reports or metrics, and store lookups)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from bedside.leaderboard.release import finite_or_none
from bedside.store import schema

if TYPE_CHECKING:
    from bedside.workspace import Workspace

N_SMALL_CLASSES = 2


def shares_from_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """``{class: share}`` from a result's ``per_class`` (its shares, else its supports)."""
    per = [c for c in metrics.get("per_class") or [] if isinstance(c, Mapping) and "name" in c]
    if per and all(finite_or_none(c.get("share")) is not None for c in per):
        return {str(c["name"]): float(c["share"]) for c in per}
    supports = {str(c["name"]): finite_or_none(c.get("support")) or 0.0 for c in per}
    total = sum(supports.values())
    return {k: v / total for k, v in supports.items()} if total > 0 else {}


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
        pct, share = finite_or_none(c.get("share_pct")), finite_or_none(c.get("share"))
        if pct is not None:
            out[str(c["name"])] = pct / 100.0
        elif share is not None:
            out[str(c["name"])] = share
    if out:
        return out
    counts = {
        str(c["name"]): finite_or_none(c.get("total", c.get("count")))
        for c in classes
        if isinstance(c, Mapping) and "name" in c
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
