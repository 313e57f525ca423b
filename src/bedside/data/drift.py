"""Drift between two corpus versions: class shares, lengths and vocabulary, aggregate only.

What changed from an older version ``a`` to a newer ``b``? When ``b`` holds every row of ``a``
(``bedside data add --append``) the comparison is between ``a`` and the rows ``b`` added (the
rows already in ``a`` would only water the difference down); otherwise between ``a`` and ``b``.

* class shares: counts per class, chi-square test of homogeneity (2 x classes);
* lengths (words): two-sample Kolmogorov-Smirnov test, with means and quartiles;
* vocabulary: Jensen-Shannon divergence (bits) between the two term distributions, beside the
  same divergence between two random halves of ``a`` (sampling noise at that size), and the
  terms whose share rose or fell the most.

Disclosure rules as in :mod:`bedside.data.eda` (``k`` = the policy's ``k_anonymity``): counts
from 1 to k-1 are shown as ``"<k"`` and such a class gets no share; a side with fewer than k
rows is refused; a term is used (and may be named) only if at least k abstracts of the side
where it is frequent contain it. No text, no row ids. Two versions with different class sets
are refused with the classes that differ.

Example::

    d = corpus_drift(load_corpus(ws, 1), load_corpus(ws, 2), k=10)
    d["shares"]["p_value"], d["reading"]
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bedside.errors import DataError

if TYPE_CHECKING:
    from bedside.data.corpus import Corpus

ALPHA = 0.05
TOP_TERMS = 10
_TERM = re.compile(r"[a-z][a-z0-9-]{2,}")
_STOP = frozenset(
    [
        "the",
        "and",
        "for",
        "with",
        "was",
        "were",
        "are",
        "that",
        "this",
        "from",
        "than",
        "which",
        "have",
        "has",
        "had",
        "not",
        "but",
        "been",
        "these",
        "their",
        "there",
        "also",
        "may",
        "can",
        "our",
        "its",
        "into",
        "who",
        "all",
        "more",
        "most",
        "such",
        "between",
        "after",
        "before",
        "during",
        "both",
        "each",
        "other",
        "using",
        "used",
        "use",
        "study",
        "patients",
        "patient",
        "results",
        "methods",
        "conclusions",
    ]
)


def _frame(c: Corpus) -> pd.DataFrame:
    return pd.concat([c.train, c.holdout], ignore_index=True)[["row_id", "text", "label"]]


def _mask(n: int, k: int) -> int | str:
    return f"<{k}" if 0 < n < k else int(n)


def _terms(text: str) -> set[str]:
    return {t for t in _TERM.findall(str(text).lower()) if t not in _STOP}


def _doc_freq(texts: Iterable[str]) -> Counter[str]:
    df: Counter[str] = Counter()
    for t in texts:
        df.update(_terms(t))
    return df


def js_divergence(p: Sequence[float], q: Sequence[float]) -> float:
    """Jensen-Shannon divergence in bits of two distributions over the same support (0..1).

    >>> js_divergence([1, 0], [0, 1]), js_divergence([0.5, 0.5], [0.5, 0.5])
    (1.0, 0.0)
    """
    a = np.asarray(p, dtype=float)
    b = np.asarray(q, dtype=float)
    a, b = a / a.sum(), b / b.sum()
    m = (a + b) / 2

    def kl(x: np.ndarray) -> float:
        nz = x > 0
        return float((x[nz] * np.log2(x[nz] / m[nz])).sum())

    return round(max(0.0, (kl(a) + kl(b)) / 2), 6)


def _term_js(df_a: Counter[str], df_b: Counter[str], k: int) -> tuple[float, list[str]]:
    terms = sorted(t for t in set(df_a) | set(df_b) if max(df_a[t], df_b[t]) >= k)
    if not terms:
        return 0.0, []
    p = [df_a[t] + 0.5 for t in terms]  # +0.5: a term absent on one side keeps the sum finite
    q = [df_b[t] + 0.5 for t in terms]
    return js_divergence(p, q), terms


def class_shift(a: pd.Series, b: pd.Series, classes: Sequence[str], k: int) -> dict[str, Any]:
    """Counts and shares per class on each side, and the chi-square test of homogeneity."""
    from scipy.stats import chi2_contingency

    ca = [int((a == c).sum()) for c in classes]
    cb = [int((b == c).sum()) for c in classes]
    table = np.array([ca, cb])
    keep = table.sum(axis=0) > 0
    chi2, p, dof, _ = chi2_contingency(table[:, keep]) if keep.sum() > 1 else (0.0, 1.0, 0, None)
    rows = []
    for name, x, y in zip(classes, ca, cb, strict=True):
        rows.append(
            {
                "name": name,
                "a": _mask(x, k),
                "b": _mask(y, k),
                "share_a_pct": round(100 * x / len(a), 1) if x >= k else None,
                "share_b_pct": round(100 * y / len(b), 1) if y >= k else None,
            }
        )
    return {
        "classes": rows,
        "chi2": round(float(chi2), 3),
        "dof": int(dof),
        "p_value": float(p),
        "significant": bool(p < ALPHA),
    }


def length_shift(a: Sequence[int], b: Sequence[int]) -> dict[str, Any]:
    """Word-count summaries of each side and the two-sample KS test."""
    from scipy.stats import ks_2samp

    res = ks_2samp(np.asarray(a), np.asarray(b))

    def summary(x: Sequence[int]) -> dict[str, float]:
        v = np.asarray(x, dtype=float)
        q1, q2, q3 = np.percentile(v, [25, 50, 75])
        return {
            "mean": round(float(v.mean()), 1),
            "p25": round(float(q1), 1),
            "p50": round(float(q2), 1),
            "p75": round(float(q3), 1),
        }

    return {
        "a": summary(a),
        "b": summary(b),
        "ks_d": round(float(res.statistic), 4),
        "p_value": float(res.pvalue),
        "significant": bool(res.pvalue < ALPHA),
    }


def vocabulary_shift(a: Sequence[str], b: Sequence[str], k: int, seed: int = 0) -> dict[str, Any]:
    """JS divergence of term document frequencies, a split-half noise reference, top movers."""
    df_a, df_b = _doc_freq(a), _doc_freq(b)
    js, terms = _term_js(df_a, df_b, k)
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(a))
    half = len(a) // 2
    noise, _ = _term_js(_doc_freq(a[i] for i in idx[:half]), _doc_freq(a[i] for i in idx[half:]), k)
    moves = []
    for t in terms:
        sa, sb = df_a[t] / len(a), df_b[t] / len(b)
        # named only where k or more abstracts of the side it is frequent on contain it
        if (df_b[t] >= k if sb >= sa else df_a[t] >= k) and df_a[t] + df_b[t] >= k:
            moves.append((sb - sa, t, sa, sb))
    moves.sort()
    fmt = [
        {"term": t, "share_a_pct": round(100 * sa, 1), "share_b_pct": round(100 * sb, 1)}
        for _, t, sa, sb in moves
    ]
    new_terms = sum(1 for t in terms if df_a[t] == 0 and df_b[t] >= k)
    return {
        "terms_compared": len(terms),
        "js_bits": js,
        "js_noise_bits": noise,
        "ratio_to_noise": round(js / noise, 2) if noise > 0 else None,
        "new_terms": new_terms,
        "rising": list(reversed(fmt[-TOP_TERMS:])) if fmt else [],
        "falling": fmt[:TOP_TERMS],
    }


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def reading(d: dict[str, Any]) -> list[str]:
    """The drift in plain words (one sentence per aspect)."""
    s, ln, v = d["shares"], d["lengths"], d["vocabulary"]
    what = "the rows it added" if d["compared"] == "added rows" else f"version {d['b']['id']}"
    out = []
    moved = [
        c for c in s["classes"] if c["share_a_pct"] is not None and c["share_b_pct"] is not None
    ]
    moved.sort(key=lambda c: -abs(c["share_b_pct"] - c["share_a_pct"]))
    most = (
        f" The largest move: {moved[0]['name']} from {moved[0]['share_a_pct']} % to "
        f"{moved[0]['share_b_pct']} %."
        if moved
        else ""
    )
    verdict = "changed significantly" if s["significant"] else "did not change significantly"
    out.append(
        f"Class shares {verdict} between version {d['a']['id']} and {what} "
        f"(chi-square {s['chi2']}, {s['dof']} df, {_p(s['p_value'])}).{most}"
    )
    verdict = "changed significantly" if ln["significant"] else "did not change significantly"
    out.append(
        f"Abstract lengths {verdict} (KS D = {ln['ks_d']}, {_p(ln['p_value'])}; median "
        f"{ln['a']['p50']} -> {ln['b']['p50']} words)."
    )
    r = v["ratio_to_noise"]
    if r is None:
        out.append("Vocabulary: too few shared terms to compare.")
    else:
        size = (
            "about the size of sampling noise"
            if r < 1.5
            else ("a moderate shift" if r < 3 else "a large shift")
        )
        out.append(
            f"Vocabulary: Jensen-Shannon divergence {v['js_bits']} bits, {r} times the "
            f"difference between two random halves of version {d['a']['id']} ({size}); "
            f"{v['new_terms']} frequent term(s) are new."
        )
    return out


def corpus_drift(a: Corpus, b: Corpus, k: int = 10) -> dict[str, Any]:
    """Aggregate drift from version ``a`` to version ``b`` (see the module docstring)."""
    if set(a.class_names) != set(b.class_names):
        only_a = sorted(set(a.class_names) - set(b.class_names))
        only_b = sorted(set(b.class_names) - set(a.class_names))
        parts = []
        if only_a:
            parts.append(f"only in version {a.version_id}: {', '.join(map(repr, only_a))}")
        if only_b:
            parts.append(f"only in version {b.version_id}: {', '.join(map(repr, only_b))}")
        raise DataError(
            f"versions {a.version_id} and {b.version_id} have different class sets ({'; '.join(parts)}); "
            "shares and scores are not comparable across them.",
            hint="Compare versions that share their classes (an --append keeps them).",
        )
    fa, fb = _frame(a), _frame(b)
    old_ids = set(fa["row_id"].astype(str))
    new_ids = set(fb["row_id"].astype(str))
    appended = old_ids < new_ids
    side_b = fb[~fb["row_id"].astype(str).isin(old_ids)] if appended else fb
    for name, side in ((f"version {a.version_id}", fa), ("the compared rows", side_b)):
        if len(side) < k:
            raise DataError(
                f"{name} has {_mask(len(side), k)} rows; drift is shown for k = {k} rows or more "
                "on each side (smaller groups could single out abstracts).",
                hint="Compare once more rows have been added, or compare two other versions.",
            )
    words_a = [len(str(t).split()) for t in fa["text"]]
    words_b = [len(str(t).split()) for t in side_b["text"]]
    out: dict[str, Any] = {
        "a": {"id": a.version_id, "hash": a.hash[:12], "rows": len(fa)},
        "b": {"id": b.version_id, "hash": b.hash[:12], "rows": len(fb)},
        "compared": "added rows" if appended else "whole versions",
        "rows_compared": {"a": len(fa), "b": len(side_b)},
        "k": k,
        "alpha": ALPHA,
        "shares": class_shift(fa["label"], side_b["label"], a.class_names, k),
        "lengths": length_shift(words_a, words_b),
        "vocabulary": vocabulary_shift(list(fa["text"]), list(side_b["text"]), k),
    }
    out["reading"] = reading(out)
    if not math.isfinite(out["shares"]["p_value"]):
        out["shares"]["p_value"] = 1.0
    return out


def versions_drift(ws: Any, a: str | None, b: str | None, hint: str) -> dict[str, Any]:
    """:func:`corpus_drift` between versions ``a`` and ``b`` of ``ws`` (``b`` None: the active
    one; ``a`` None: ``b``'s parent). ``hint`` says how the caller names both versions."""
    from bedside.data.corpus import load_corpus
    from bedside.errors import NotFoundError

    new = load_corpus(ws, b)
    if a is None:
        parent = new.meta.get("parent_id")
        if parent is None:
            raise NotFoundError(
                f"corpus version {new.version_id} has no parent to compare with.", hint=hint
            )
        a = str(parent)
    return corpus_drift(load_corpus(ws, a), new, k=ws.policy().k_anonymity)
