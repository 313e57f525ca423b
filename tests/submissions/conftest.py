"""Fixtures for intake tests: tiny bundles (built once per session, copied per test) and a
workspace with a small active corpus."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bedside.testing.tinymodels import make_tiny_bundle
from bedside.workspace import Workspace

from .helpers import add_corpus, edit_manifest

KINDS = ("encoder", "classifier", "causal-lm")


@pytest.fixture(scope="session")
def built_bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One tiny bundle per kind, built once (building takes seconds)."""
    base = tmp_path_factory.mktemp("bundles")
    return {k: make_tiny_bundle(base / k, kind=k) for k in KINDS}


@pytest.fixture
def make_bundle(built_bundles: dict[str, Path], tmp_path: Path) -> Callable[..., Path]:
    """``make_bundle(kind, name=None, **manifest_changes)``: a fresh copy to edit."""
    counter = {"n": 0}

    def _make(kind: str = "encoder", name: str | None = None, **changes: Any) -> Path:
        counter["n"] += 1
        dest = tmp_path / f"{kind}-{counter['n']}"
        shutil.copytree(built_bundles[kind], dest)
        if name or changes:
            edit_manifest(dest, name=name, **changes)
        return dest

    return _make


@pytest.fixture
def cws(ws: Workspace) -> Workspace:
    """A workspace with a small active corpus of the five default classes."""
    add_corpus(ws)
    return ws
