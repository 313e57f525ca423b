"""Charts of an EDA dict (aggregate, already k-suppressed): PNG/SVG files or inline SVG strings.

Suppressed counts (``"<k"``) are drawn as hatched bars at half of k, so a small cell stays visible
as "small" without showing its value. matplotlib is imported inside the functions (Agg backend).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FIGURES = ("class_distribution", "word_length_histograms", "word_length_by_class")


def _num(cell: Any, k: int) -> tuple[float, bool]:
    """(height to draw, suppressed?) for a count cell."""
    if isinstance(cell, int | float):
        return float(cell), False
    return k / 2, True


def _new_figure(width: float, height: float) -> Figure:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _class_distribution(eda: dict[str, Any]) -> Figure:
    k = eda["k"]
    fig = _new_figure(7, 3.6)
    ax = fig.subplots()
    names = [c["name"] for c in eda["classes"]]
    y = list(range(len(names)))
    left = [0.0] * len(names)
    for side, color in (("train", "#4C72B0"), ("holdout", "#DD8452")):
        vals = [_num(c[side], k) for c in eda["classes"]]
        bars = ax.barh(y, [v for v, _ in vals], left=left, color=color, label=side)
        for bar, (_, hidden) in zip(bars, vals, strict=True):
            if hidden:
                bar.set_hatch("//")
        left = [a + v for a, (v, _) in zip(left, vals, strict=True)]
    for i, c in enumerate(eda["classes"]):
        if c.get("share_pct") is not None:
            ax.text(left[i], i, f" {c['share_pct']}%", va="center", fontsize=8)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel("rows (hatched: fewer than k, not shown exactly)")
    sd = eda.get("share_sd_pp")
    ax.set_title("Class distribution" + (f" (share sd {sd} pp)" if sd is not None else ""))
    ax.set_xlim(0, max(left, default=1.0) * 1.15)  # room for the share labels
    ax.legend(loc="upper right", fontsize=8)
    return fig


def _histograms(eda: dict[str, Any]) -> Figure:
    k = eda["k"]
    per = eda["lengths"]["words"]["per_class"]
    fig = _new_figure(7, 1.5 + 1.4 * len(per))
    axes = fig.subplots(len(per), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (name, st) in zip(axes, per.items(), strict=True):
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
        if st.get("suppressed"):
            ax.text(
                0.5, 0.5, f"fewer than {k} rows: not shown", transform=ax.transAxes, ha="center"
            )
            continue
        edges = st["hist"]["edges"]
        vals = [_num(c, k) for c in st["hist"]["counts"]]
        widths = [b - a for a, b in zip(edges[:-1], edges[1:], strict=True)]
        bars = ax.bar(edges[:-1], [v for v, _ in vals], width=widths, align="edge", color="#4C72B0")
        for bar, (_, hidden) in zip(bars, vals, strict=True):
            if hidden:
                bar.set_hatch("//")
                bar.set_alpha(0.5)
    axes[-1].set_xlabel("words per abstract")
    fig.suptitle("Word-length histograms per class")
    return fig


def _length_summary(eda: dict[str, Any]) -> Figure:
    per = eda["lengths"]["words"]["per_class"]
    fig = _new_figure(7, 3.6)
    ax = fig.subplots()
    shown = [(n, s) for n, s in per.items() if not s.get("suppressed")]
    stats = [
        {
            "label": n,
            "whislo": s["p10"],
            "q1": s["p25"],
            "med": s["p50"],
            "q3": s["p75"],
            "whishi": s["p90"],
            "mean": s["mean"],
            "fliers": [],
        }
        for n, s in shown
    ]
    if stats:
        ax.bxp(stats, orientation="horizontal", showmeans=True)
    ax.invert_yaxis()
    ax.set_xlabel("words (box: p25-p75, whiskers: p10-p90, triangle: mean)")
    ax.set_title("Word length by class")
    return fig


def _literal_text() -> Any:
    """Class names are input: `$...$` is drawn as text, never parsed as mathtext."""
    import matplotlib

    return matplotlib.rc_context({"text.parse_math": False, "text.usetex": False})


def eda_figures(eda: dict[str, Any]) -> dict[str, Figure]:
    """The EDA charts as matplotlib figures, keyed by name.

    >>> sorted(eda_figures(compute_eda(corpus)))  # doctest: +SKIP
    ['class_distribution', 'word_length_by_class', 'word_length_histograms']
    """
    with _literal_text():
        return {
            "class_distribution": _class_distribution(eda),
            "word_length_histograms": _histograms(eda),
            "word_length_by_class": _length_summary(eda),
        }


def write_eda_plots(eda: dict[str, Any], out_dir: Path | str, fmt: str = "png") -> list[Path]:
    """Write every EDA chart to ``out_dir/NAME.fmt`` (png or svg); returns the paths.

    >>> write_eda_plots(eda, "plots", fmt="svg")  # doctest: +SKIP
    [PosixPath('plots/class_distribution.svg'), ...]
    """
    if fmt not in ("png", "svg"):
        from bedside.errors import ConfigError

        raise ConfigError(f"plot format must be png or svg, got {fmt!r}.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    with _literal_text():
        for name, fig in eda_figures(eda).items():
            p = out / f"{name}.{fmt}"
            fig.savefig(p, format=fmt, dpi=120)
            paths.append(p)
    return paths


def eda_svgs(eda: dict[str, Any]) -> dict[str, str]:
    """The EDA charts as inline SVG strings (for the web UI), keyed by name.

    >>> eda_svgs(eda)["class_distribution"].startswith("<svg")  # doctest: +SKIP
    True
    """
    out = {}
    with _literal_text():
        for name, fig in eda_figures(eda).items():
            buf = io.StringIO()
            fig.savefig(buf, format="svg")
            text = buf.getvalue()
            out[name] = text[text.index("<svg") :]  # drop the XML prologue and doctype
    return out
