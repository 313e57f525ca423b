"""Class and model names reach the charts as literal text, never as mathtext."""

from __future__ import annotations

import re

from bedside.web import charts

NAMES = ["$\\frac{", "a$b$c"]


def _texts(svg: str) -> list[str]:
    assert svg.startswith("<svg")
    return re.findall(r"<text[^>]*>([^<]*)</text>", svg)


def test_per_class_and_confusion_charts_keep_dollar_names_literal() -> None:
    per_class = [
        {"name": n, "precision": 0.5, "recall": 0.6, "f1": 0.55, "support": 10} for n in NAMES
    ]
    for svg in (charts.per_class_svg(per_class), charts.confusion_svg(NAMES, [[3, 1], [2, 4]])):
        texts = _texts(svg)
        for n in NAMES:
            assert n in texts, texts
        assert "<tspan" not in svg  # mathtext lays a$b$c out as three spans
