"""The aggregate EDA report as page material: charts (SVG) and generic tables.

The report is produced by ``bedside.data.eda`` and stored with the corpus version; it is
aggregate and k-suppressed already. The charts come from ``bedside.data.plots.eda_svgs`` when
that module is present, else from the few generic charts here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bedside.leaderboard import shares_from_eda, small_classes
from bedside.web import charts

Scalar = str | int | float | bool | None


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]]
    note: str = ""


@dataclass
class EdaView:
    charts: dict[str, str] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    summary: list[tuple[str, Any]] = field(default_factory=list)


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, str | int | float | bool)


TITLES = {
    "k": "k-anonymity threshold (k)",
    "share_sd_pp": "Class imbalance (SD of shares, percentage points)",
    "length_terciles": "Length tercile edges (words; short / medium / long)",
    "rows": "Rows",
    "duplicates": "Duplicates",
}


def _title(key: str) -> str:
    return TITLES.get(key, key.replace("_", " ").capitalize())


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 1 else f"{v:,.1f}"
    if isinstance(v, list) and all(_is_scalar(x) for x in v) and len(v) <= 12:
        return ", ".join(str(_fmt(x)) for x in v)
    return v


def _counts(eda: Mapping[str, Any]) -> dict[str, float]:
    classes = eda.get("classes")
    if not isinstance(classes, list):
        return {}
    return {
        str(c["name"]): c["total"]
        for c in classes
        if isinstance(c, Mapping) and isinstance(c.get("total"), int | float)
    }


def _histograms(
    eda: Mapping[str, Any], unit: str = "words"
) -> dict[str, tuple[Sequence[float], Sequence[float]]]:
    """``{class: (edges, counts)}`` from ``lengths[unit].per_class[*].hist``; suppressed cells
    (``"<k"``) are drawn as 0 and classes without a histogram are left out."""
    per = ((eda.get("lengths") or {}).get(unit) or {}).get("per_class") or {}
    out: dict[str, tuple[Sequence[float], Sequence[float]]] = {}
    for name, stats in per.items():
        hist = stats.get("hist") if isinstance(stats, Mapping) else None
        if isinstance(hist, Mapping) and isinstance(hist.get("edges"), list):
            counts = [c if isinstance(c, int | float) else 0 for c in hist.get("counts") or []]
            out[str(name)] = (hist["edges"], counts)
    return out


LENGTH_COLUMNS = ("n", "mean", "sd", "min", "p10", "p25", "p50", "p75", "p90", "max")


def _length_table(eda: Mapping[str, Any], unit: str = "words") -> Table | None:
    section = (eda.get("lengths") or {}).get(unit)
    if not isinstance(section, Mapping):
        return None
    rows: list[list[Any]] = []
    items = [
        *((section.get("per_class") or {}).items()),
        ("all classes", section.get("overall") or {}),
    ]
    for name, stats in items:
        if not isinstance(stats, Mapping):
            continue
        if stats.get("suppressed"):
            rows.append(
                [name, stats.get("n"), *(["suppressed"] + [None] * (len(LENGTH_COLUMNS) - 2))]
            )
        else:
            rows.append([name, *(stats.get(c) for c in LENGTH_COLUMNS)])
    note = "min and max are rounded outwards (never an exact single abstract); p50 is the median."
    return Table(f"Abstract length ({unit})", ["class", *LENGTH_COLUMNS], rows, note)


def _table_from(key: str, val: Any) -> Table | None:
    if isinstance(val, list) and val and all(isinstance(x, Mapping) for x in val):
        cols: list[str] = []
        for x in val:
            cols += [k for k, v in x.items() if k not in cols and _is_scalar(_fmt(v))]
        return Table(_title(key), cols, [[_fmt(x.get(c)) for c in cols] for x in val])
    if isinstance(val, Mapping) and val:
        if all(isinstance(v, Mapping) for v in val.values()):
            cols = []
            for v in val.values():
                cols += [k for k, x in v.items() if k not in cols and _is_scalar(_fmt(x))]
            if cols:
                return Table(
                    _title(key),
                    ["", *cols],
                    [[k, *(_fmt(v.get(c)) for c in cols)] for k, v in val.items()],
                )
        flat = [(k.replace("_", " "), _fmt(v)) for k, v in val.items() if _is_scalar(_fmt(v))]
        if flat:
            return Table(_title(key), ["", "value"], [list(x) for x in flat])
    return None


def eda_view(eda: Mapping[str, Any] | None) -> EdaView:
    """Charts, summary numbers and tables for the Data page and the HTML report."""
    view = EdaView()
    if not eda:
        return view
    try:
        from bedside.data.plots import eda_svgs

        view.charts = {str(k): v for k, v in eda_svgs(dict(eda)).items() if v}
    except ImportError:
        view.charts = {}
    if not view.charts:
        shares = shares_from_eda(eda)
        view.charts["class_distribution"] = charts.class_distribution_svg(
            shares, _counts(eda), highlight=small_classes(shares)
        )
        view.charts["length_histograms"] = charts.histograms_svg(_histograms(eda, "words"))
        view.charts = {k: v for k, v in view.charts.items() if v}
    k = eda.get("k")
    handled = {"lengths"}
    classes = eda.get("classes")
    if isinstance(classes, list) and classes:
        handled.add("classes")
        view.tables.append(
            Table(
                "Classes",
                ["class", "train", "holdout", "total", "share (%)"],
                [
                    [
                        c.get("name"),
                        c.get("train"),
                        c.get("holdout"),
                        c.get("total"),
                        c.get("share_pct"),
                    ]
                    for c in classes
                ],
                f"Counts below k = {k} are shown as “<{k}”." if k else "",
            )
        )
    for unit in ("words", "chars"):
        table = _length_table(eda, unit)
        if table is not None:
            view.tables.append(table)
    for key, val in eda.items():
        if key in handled:
            continue
        if _is_scalar(val) or (isinstance(val, list) and _is_scalar(_fmt(val))):
            view.summary.append((_title(key), _fmt(val)))
        else:
            table = _table_from(key, val)
            if table is not None:
                view.tables.append(table)
    return view
