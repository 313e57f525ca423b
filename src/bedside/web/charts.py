"""Server-side charts as inline SVG strings (matplotlib, Agg-free SVG canvas, imported lazily).

Every function returns an ``<svg>`` element at its natural size with a viewBox (the stylesheet
shrinks it to fit narrow screens) with text kept as text, so the pages need no JavaScript and nothing from a CDN. Functions return ""
when there is nothing to draw.

Example::

    svg = per_class_svg(result["metrics"]["per_class"], highlight={"digestive system diseases"})
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

# A calm clinical palette: slate, teal, sand; the accent marks small classes.
INK = "#1f2d3a"
MUTED = "#6b7b8c"
GRID = "#e3e8ee"
SERIES = ("#2a7f8f", "#8fb8c9", "#c9a86a", "#5b6c8f", "#9bb07a")
ACCENT = "#c0563b"

_LOCK = threading.Lock()  # rcParams are process-global; charts render one at a time
_SVG_OPEN = re.compile(r"<svg\b")


def _render(
    draw: Callable[[Any], None], width: float = 6.4, height: float = 3.2, title: str = ""
) -> str:
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    rc: Any = {
        "svg.fonttype": "none",
        "font.family": "sans-serif",
        "font.size": 10,
        "axes.edgecolor": GRID,
        "axes.labelcolor": INK,
        "axes.titlesize": 10,
        "axes.titleweight": "bold",
        "xtick.color": MUTED,
        "ytick.color": MUTED,
        "text.color": INK,
        "axes.spines.top": False,
        "axes.spines.right": False,
        # class and model names are input: `$...$` must stay text, not mathtext (which can fail)
        "text.parse_math": False,
        "text.usetex": False,
    }
    with _LOCK, matplotlib.rc_context(rc):
        fig = Figure(figsize=(width, height))
        FigureCanvasSVG(fig)
        ax = fig.add_subplot(111)
        draw(ax)
        if title:
            ax.set_title(title, loc="left", color=INK)
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg", transparent=True)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    title_attr = f' role="img" aria-label="{_esc(title)}"' if title else ' role="img"'
    # keep the natural size (width/height in pt) and the viewBox; CSS shrinks it to fit
    return _SVG_OPEN.sub(f'<svg{title_attr} class="chart"', svg, count=1)


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def _short(label: str, n: int = 16) -> str:
    label = str(label)
    return label if len(label) <= n else label[: n - 1] + "…"


def _grid(ax: Any, axis: str = "y") -> None:
    ax.grid(axis=axis, color=GRID, linewidth=0.8)
    ax.set_axisbelow(True)


def grouped_bars_svg(
    labels: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    title: str = "",
    ylabel: str = "",
    ylim: tuple[float, float] | None = (0.0, 1.0),
    highlight: Iterable[str] = (),
) -> str:
    """Grouped vertical bars: one group per label, one bar per series."""
    if not labels or not series:
        return ""
    marked = set(highlight)

    def draw(ax: Any) -> None:
        n = len(series)
        width = 0.8 / n
        for i, (name, values) in enumerate(series.items()):
            xs = [k + (i - (n - 1) / 2) * width for k in range(len(labels))]
            ax.bar(
                xs,
                [v or 0.0 for v in values],
                width=width * 0.92,
                label=name,
                color=SERIES[i % len(SERIES)],
            )
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels([_short(x) for x in labels], rotation=0)
        for tick, lab in zip(ax.get_xticklabels(), labels, strict=True):
            if lab in marked:
                tick.set_color(ACCENT)
                tick.set_fontweight("bold")
        if ylim:
            ax.set_ylim(*ylim)
        ax.set_ylabel(ylabel)
        _grid(ax)
        if n > 1:
            ax.legend(frameon=False, ncol=n, loc="lower right", bbox_to_anchor=(1, 1.0), fontsize=8)

    return _render(draw, title=title)


def per_class_svg(per_class: Sequence[Mapping[str, Any]], highlight: Iterable[str] = ()) -> str:
    """Precision, recall and F1 per class (small classes' labels in the accent colour)."""
    labels = [str(pc["name"]) for pc in per_class]
    short = {name: name.split(" ")[0] for name in labels}
    marked = {short[n] for n in highlight if n in short}
    labels = [short[n] for n in labels]
    series = {
        k: [float(pc.get(k) or 0.0) for pc in per_class] for k in ("precision", "recall", "f1")
    }
    return grouped_bars_svg(labels, series, title="Per class", ylabel="score", highlight=marked)


def confusion_svg(labels: Sequence[str], matrix: Sequence[Sequence[int]]) -> str:
    """A confusion-matrix heatmap, row-normalised colours, raw counts written in the cells."""
    if not labels or not matrix:
        return ""

    def draw(ax: Any) -> None:
        totals = [max(1, sum(row)) for row in matrix]
        norm = [[v / t for v in row] for row, t in zip(matrix, totals, strict=True)]
        ax.imshow(norm, cmap="BuGn", vmin=0, vmax=1)
        for i, row in enumerate(matrix):
            for j, v in enumerate(row):
                ax.text(
                    j,
                    i,
                    str(v),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if norm[i][j] > 0.6 else INK,
                )
        ticks = [_short(x, 12) for x in labels]
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(ticks, rotation=30, ha="right")
        ax.set_yticks(range(len(labels)))
        ax.set_yticklabels(ticks)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        for s in ax.spines.values():
            s.set_visible(False)

    return _render(draw, width=5.2, height=4.2, title="Confusion matrix")


def robustness_svg(bins: Sequence[Mapping[str, Any]], edges: Sequence[float] = ()) -> str:
    """Macro-F1 per abstract-length bin."""
    if not bins:
        return ""
    labels = [str(b.get("name")) for b in bins]
    if len(edges) == len(bins) - 1 == 2:
        lo, hi = int(edges[0]), int(edges[1])
        labels = [
            f"{labels[0]}\n< {lo} words",
            f"{labels[1]}\n{lo}–{hi}",
            f"{labels[2]}\n> {hi} words",
        ]
    values = [float(b.get("macro_f1") or 0.0) for b in bins]

    def draw(ax: Any) -> None:
        ax.bar(range(len(values)), values, color=SERIES[0], width=0.55)
        for k, v in enumerate(values):
            ax.text(k, v + 0.02, f"{v:.3f}", ha="center", fontsize=8, color=INK)
        ax.set_xticks(range(len(values)))
        ax.set_xticklabels(labels)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("macro-F1")
        _grid(ax)

    return _render(draw, width=5.2, height=3.0, title="Length robustness")


def curve_svg(events: Sequence[Mapping[str, Any]]) -> str:
    """Training loss and validation macro-F1 against the optimiser step."""
    loss = [
        (e["step"], e["loss"])
        for e in events
        if e.get("loss") is not None and e.get("step") is not None
    ]
    val = [
        (e["step"], e["val_macro_f1"])
        for e in events
        if e.get("val_macro_f1") is not None and e.get("step") is not None
    ]
    if not loss and not val:
        return ""

    def draw(ax: Any) -> None:
        if loss:
            ax.plot(
                [s for s, _ in loss],
                [v for _, v in loss],
                color=SERIES[0],
                linewidth=1.6,
                label="train loss",
            )
            ax.set_ylabel("loss")
        ax.set_xlabel("step")
        _grid(ax, "both")
        if val:
            ax2 = ax.twinx() if loss else ax
            ax2.plot(
                [s for s, _ in val],
                [v for _, v in val],
                color=SERIES[2],
                marker="o",
                markersize=3,
                linewidth=1.4,
                label="val macro-F1",
            )
            ax2.set_ylim(0, 1)
            ax2.set_ylabel("val macro-F1")
            ax2.spines["right"].set_visible(True)
        handles = [h for a in fig_axes(ax) for h in a.get_legend_handles_labels()[0]]
        ax.legend(handles=handles, frameon=False, loc="upper center", fontsize=8, ncol=2)

    return _render(draw, width=6.0, height=3.0, title="Training curve")


def fig_axes(ax: Any) -> list[Any]:
    return list(ax.figure.axes)


def leaderboard_svg(rows: Sequence[Mapping[str, Any]]) -> str:
    """Macro-F1 with its 95 % CI per leaderboard row (baseline in grey), best at the top."""
    rows = [r for r in rows if r.get("macro_f1") is not None]
    if not rows:
        return ""

    def draw(ax: Any) -> None:
        ys = list(range(len(rows)))[::-1]
        for y, r in zip(ys, rows, strict=True):
            ci = r.get("macro_f1_ci") or [r["macro_f1"], r["macro_f1"]]
            color = MUTED if r.get("kind") == "baseline" else SERIES[0]
            ax.plot([ci[0], ci[1]], [y, y], color=color, linewidth=2.2, solid_capstyle="round")
            ax.plot([r["macro_f1"]], [y], "o", color=color, markersize=6)
        ax.set_yticks(ys)
        ax.set_yticklabels(
            [f"{_short(str(r['model']), 22)} ({r.get('rank_label') or ''})" for r in rows]
        )
        ax.set_xlabel("macro-F1 (95 % CI)")
        lo = min((r.get("macro_f1_ci") or [r["macro_f1"]])[0] for r in rows)
        ax.set_xlim(max(0.0, lo - 0.05), 1.0)
        _grid(ax, "x")

    return _render(
        draw,
        width=6.4,
        height=0.5 + 0.42 * len(rows),
        title="Macro-F1 with 95 % confidence interval",
    )


def impact_svg(rows: Sequence[Mapping[str, Any]], currency: str) -> str:
    """Total annual cost per model, stacked: missed papers, reviewers, AI."""
    if not rows:
        return ""

    def draw(ax: Any) -> None:
        labels = [_short(str(r["model"]), 18) for r in rows]
        ys = list(range(len(rows)))[::-1]
        left = [0.0] * len(rows)
        for (key, name), color in zip(
            (("miss_cost", "missed papers"), ("reviewer_cost", "reviewers"), ("ai_cost", "AI")),
            (ACCENT, SERIES[1], SERIES[0]),
            strict=True,
        ):
            vals = [float(r.get(key) or 0.0) for r in rows]
            ax.barh(ys, vals, left=left, color=color, label=name, height=0.6)
            left = [a + b for a, b in zip(left, vals, strict=True)]
        ax.set_yticks(ys)
        ax.set_yticklabels(labels)
        ax.set_xlabel(f"annual cost ({currency})")
        ax.xaxis.set_major_formatter(_compact())
        _grid(ax, "x")
        ax.legend(
            frameon=False, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.22), fontsize=8
        )

    return _render(
        draw, width=6.4, height=0.9 + 0.45 * len(rows), title="Estimated total annual cost"
    )


def _compact() -> Any:
    """Axis labels such as 250k and 1.5M, which do not collide."""
    from matplotlib.ticker import FuncFormatter

    def fmt(x: float, _pos: Any) -> str:
        if abs(x) >= 1e6:
            return f"{x / 1e6:g}M"
        if abs(x) >= 1e3:
            return f"{x / 1e3:g}k"
        return f"{x:g}"

    return FuncFormatter(fmt)


def class_distribution_svg(
    shares: Mapping[str, float],
    counts: Mapping[str, float] | None = None,
    highlight: Iterable[str] = (),
) -> str:
    """Share of each class (horizontal bars; small classes in the accent colour)."""
    if not shares:
        return ""
    marked = set(highlight)
    items = sorted(shares.items(), key=lambda kv: kv[1])

    def draw(ax: Any) -> None:
        ys = list(range(len(items)))
        colors = [ACCENT if name in marked else SERIES[0] for name, _ in items]
        ax.barh(ys, [v for _, v in items], color=colors, height=0.6)
        for y, (name, v) in zip(ys, items, strict=True):
            extra = f"  (n={int(counts[name])})" if counts and counts.get(name) is not None else ""
            ax.text(v + 0.005, y, f"{v:.1%}{extra}", va="center", fontsize=8, color=INK)
        ax.set_yticks(ys)
        ax.set_yticklabels([_short(n, 26) for n, _ in items])
        ax.set_xlim(0, max(v for _, v in items) * 1.35)
        ax.xaxis.set_major_formatter(_percent())
        _grid(ax, "x")

    return _render(draw, width=6.4, height=0.8 + 0.42 * len(items), title="Class distribution")


def _percent() -> Any:
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(1.0, decimals=0)


def histograms_svg(
    hists: Mapping[str, tuple[Sequence[float], Sequence[float]]], xlabel: str = "words per abstract"
) -> str:
    """Overlaid step histograms: ``{class: (edges, counts)}``."""
    if not hists:
        return ""

    def draw(ax: Any) -> None:
        for i, (name, (edges, counts)) in enumerate(hists.items()):
            if len(edges) != len(counts) + 1:
                continue
            ax.stairs(
                list(counts),
                list(edges),
                color=SERIES[i % len(SERIES)],
                linewidth=1.6,
                label=_short(name, 24),
            )
        ax.set_xlabel(xlabel)
        ax.set_ylabel("abstracts")
        _grid(ax)
        ax.legend(frameon=False, fontsize=8)

    return _render(draw, width=6.4, height=3.2, title="Abstract length per class")


def recall_workload_svg(points: Mapping[str, Any]) -> str:
    """Recall against abstracts flagged per 1,000, one curve per class with a target (measured
    on the reporting half), each chosen operating point marked.

    ``points`` is ``OperatingPoints.to_dict()`` (``curves`` and ``points``)."""
    curves = points.get("curves") or {}
    if not curves:
        return ""
    chosen = {p["class_name"]: p for p in points.get("points") or []}

    def draw(ax: Any) -> None:
        for i, (name, c) in enumerate(curves.items()):
            color = SERIES[i % len(SERIES)]
            ax.plot(c["workload"], c["recall"], color=color, linewidth=1.6, label=_short(name, 28))
            p = chosen.get(name)
            if (
                p
                and p.get("workload_per_1000") is not None
                and p.get("expected_recall") is not None
            ):
                ax.plot([p["workload_per_1000"]], [p["expected_recall"]], "o", color=ACCENT)
                ax.axhline(p["target"], color=color, linewidth=0.8, linestyle=":")
        ax.set_xlim(0, 1000)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("abstracts flagged per 1,000")
        ax.set_ylabel("recall")
        _grid(ax, "both")
        ax.legend(frameon=False, loc="lower right", fontsize=8)

    return _render(draw, title="Recall vs review workload (reporting half)")


# -- the numbers behind each chart, as text tables (``chart_card`` in _macros.html) -----------
def _n3(v: Any) -> str:
    return "–" if v is None else f"{float(v):.3f}"


def _ci_text(ci: Any) -> str:
    return f"{float(ci[0]):.3f} – {float(ci[1]):.3f}" if ci else "–"


def per_class_table(
    per_class: Sequence[Mapping[str, Any]], highlight: Iterable[str] = ()
) -> dict[str, Any]:
    small = set(highlight)
    return {
        "caption": "Precision, recall and F1 per class; small classes are marked “(small)”.",
        "columns": ["class", "precision", "recall", "F1"],
        "rows": [
            [
                f"{pc.get('name')}{' (small)' if pc.get('name') in small else ''}",
                _n3(pc.get("precision")),
                _n3(pc.get("recall")),
                _n3(pc.get("f1")),
            ]
            for pc in per_class
        ],
    }


def confusion_table(labels: Sequence[str], matrix: Sequence[Sequence[int]]) -> dict[str, Any]:
    return {
        "caption": "Rows: the true class; columns: the predicted class (counts of abstracts).",
        "columns": ["true \\ predicted", *[str(x) for x in labels]],
        "rows": [
            [str(lab), *[str(v) for v in row]] for lab, row in zip(labels, matrix, strict=False)
        ],
    }


def robustness_table(bins: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {
        "caption": "Macro-F1 by abstract length.",
        "columns": ["length", "abstracts", "macro-F1"],
        "rows": [[str(b.get("name")), str(b.get("n", "–")), _n3(b.get("macro_f1"))] for b in bins],
    }


def curve_table(events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    rows = [
        [
            str(e.get("step")),
            "–" if e.get("epoch") is None else f"{float(e['epoch']):g}",
            _n3(e.get("loss")),
            _n3(e.get("val_macro_f1")),
        ]
        for e in events
        if e.get("step") is not None
        and (e.get("loss") is not None or e.get("val_macro_f1") is not None)
    ]
    return {
        "caption": "Training loss and validation macro-F1 by optimiser step.",
        "columns": ["step", "epoch", "train loss", "val macro-F1"],
        "rows": rows[-60:],  # the latest points: a long run logs thousands
    }


def leaderboard_table(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {
        "caption": "Macro-F1 and its 95 % confidence interval per row.",
        "columns": ["model", "vendor", "macro-F1", "95 % CI"],
        "rows": [
            [
                str(r.get("model")),
                str(r.get("vendor")),
                _n3(r.get("macro_f1")),
                _ci_text(r.get("macro_f1_ci")),
            ]
            for r in rows
            if r.get("macro_f1") is not None
        ],
    }


def impact_table(rows: Sequence[Mapping[str, Any]], currency: str) -> dict[str, Any]:
    def money(v: Any) -> str:
        return "–" if v is None else f"{float(v):,.0f}"

    return {
        "caption": f"Estimated annual cost per model, in {currency}.",
        "columns": ["model", "missed papers", "reviewers", "AI", "total"],
        "rows": [
            [
                str(r.get("model")),
                money(r.get("miss_cost")),
                money(r.get("reviewer_cost")),
                money(r.get("ai_cost")),
                money(r.get("total_cost")),
            ]
            for r in rows
        ],
    }
