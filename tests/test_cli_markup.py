"""Input reaches the terminal as text: markup escaped, control characters shown escaped."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bedside.cli.common import safe

HOSTILE = ["[/x]", "[link=http://e]x[/link]", "\x1b[2J", "\x1b]8;;http://e\x07", "\nbundle OK"]
SHOWN = ["[/x]", "[link=http://e]x[/link]", "\\x1b[2J", "\\x1b]8;;http://e\\x07"]


def _cli(ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BEDSIDE_WORKSPACE": str(ws), "COLUMNS": "400"}
    return subprocess.run(
        [sys.executable, "-m", "bedside.cli.app", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    assert _cli(root, "init", str(root)).returncode == 0
    return root


def _clean(out: str) -> None:
    assert "\x1b" not in out and "\x07" not in out and "Traceback" not in out
    assert "\nbundle OK" not in out


def test_safe_escapes_markup_and_control_characters() -> None:
    for raw, shown in zip(HOSTILE, SHOWN, strict=False):
        assert "\x1b" not in safe(raw)
        from rich.console import Console

        c = Console(width=400, record=True, color_system=None)
        c.print(safe(raw))
        assert c.export_text().strip() == shown
    assert safe("\nbundle OK") == "\\x0abundle OK"


def test_hostile_csv_header_in_an_error(ws: Path, tmp_path: Path) -> None:
    f = tmp_path / "h.csv"
    with f.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", *HOSTILE])
        w.writerow(["some text", *["v"] * len(HOSTILE)])
    res = _cli(ws, "data", "add", str(f), "--label-col", "nope")
    assert res.returncode == 4, res.stderr
    _clean(res.stdout + res.stderr)
    for shown in SHOWN:
        assert shown in res.stderr
    assert "\\x0abundle OK" in res.stderr


def _labelled(path: Path, labels: list[str]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        for i in range(100):
            w.writerow([f"abstract {i} about words number {i * 7}", labels[i % len(labels)]])
    return path


def test_hostile_labels_in_a_table(ws: Path, tmp_path: Path) -> None:
    # Markup in class names is stored and shown literally in the class table.
    res = _cli(ws, "data", "add", str(_labelled(tmp_path / "l.csv", HOSTILE[:2])))
    assert res.returncode == 0, res.stderr
    _clean(res.stdout + res.stderr)
    for shown in SHOWN[:2]:
        assert shown in res.stdout


def test_control_characters_in_labels_are_refused_and_shown_escaped(
    ws: Path, tmp_path: Path
) -> None:
    res = _cli(ws, "data", "add", str(_labelled(tmp_path / "c.csv", ["plain", *HOSTILE[2:]])))
    assert res.returncode == 4, res.stdout
    _clean(res.stdout + res.stderr)
    assert "control characters" in res.stderr
    assert "\\x1b[2J" in res.stderr


def test_markup_in_a_path_is_printed_literally(ws: Path, tmp_path: Path) -> None:
    out = tmp_path / "[bold]c[/bold][link=e].csv"
    res = _cli(ws, "data", "synth", str(out), "--n", "60")
    assert res.returncode == 0, res.stderr
    assert out.is_file()
    assert "[bold]c[/bold][link=e].csv" in res.stdout
