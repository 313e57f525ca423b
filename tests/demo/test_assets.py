"""The embedded default corpus: it loads, has the real shape, and its license ships with it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from fnmatch import fnmatch
from pathlib import Path

import pytest

from bedside.data.assets import (
    ASSETS_DIR,
    CORPUS_GZ,
    LABELS_CSV,
    SOURCE_MD,
    load_embedded_corpus,
    write_embedded_corpus,
)
from bedside.data.corpus import load_corpus
from bedside.data.ingest import add_corpus
from bedside.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]
ASSET_FILES = (CORPUS_GZ, LABELS_CSV, SOURCE_MD)


def test_embedded_corpus_has_1888_rows_in_five_classes() -> None:
    df = load_embedded_corpus()
    assert len(df) == 1888
    assert sorted(df["condition_label"].unique()) == [1, 2, 3, 4, 5]
    assert df["condition_label"].value_counts().sort_index().tolist() == [417, 192, 246, 402, 631]
    assert df["medical_abstract"].str.len().min() > 50


def test_subset_is_stratified_and_seeded() -> None:
    a, b = load_embedded_corpus(300, seed=1), load_embedded_corpus(300, seed=1)
    assert a.equals(b)
    assert abs(len(a) - 300) <= 5
    shares = a["condition_label"].value_counts(normalize=True).sort_index()
    full = load_embedded_corpus()["condition_label"].value_counts(normalize=True).sort_index()
    assert (shares - full).abs().max() < 0.02


def test_written_files_go_through_intake(ws: Workspace, tmp_path: Path) -> None:
    files = write_embedded_corpus(tmp_path / "inbox")
    assert files.rows == 1888 and files.source.read_text() == (ASSETS_DIR / SOURCE_MD).read_text()
    r = add_corpus(ws, files.corpus, labels=files.labels, seed=0)
    assert r["n_train"] + r["n_holdout"] == 1888
    assert [c.name for c in load_corpus(ws).classes][-1] == "general pathological conditions"


def test_license_and_attribution_beside_the_data() -> None:
    text = (ASSETS_DIR / SOURCE_MD).read_text()
    for needle in (
        "CC BY-SA 3.0",
        "creativecommons.org/licenses/by-sa/3.0",
        "Schopf",
        "test split",
    ):
        assert needle in text


def test_package_data_globs_cover_the_assets() -> None:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = cfg["tool"]["setuptools"]["package-data"]["bedside"]
    for name in ASSET_FILES:
        assert any(fnmatch(f"data/assets/{name}", g) for g in globs), name


@pytest.mark.slow
def test_wheel_ships_corpus_and_license(tmp_path: Path) -> None:
    # Build from a copy: setuptools writes build/ and egg-info beside the sources.
    src = tmp_path / "src-tree"
    shutil.copytree(ROOT / "src", src / "src", ignore=shutil.ignore_patterns("*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(ROOT / name, src / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w"]
        + [str(tmp_path), str(src)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("bedside-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ASSET_FILES:
        assert f"bedside/data/assets/{name}" in names
