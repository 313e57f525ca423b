"""Fixtures shared by every test area. Each area keeps its own conftest for the rest."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bedside.workspace import Workspace

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "medical-abstracts"


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """A fresh, empty workspace."""
    workspace, _token = Workspace.init(tmp_path / "ws")
    return workspace


@pytest.fixture
def ws_with_token(tmp_path: Path) -> tuple[Workspace, str]:
    """A fresh workspace and its owner token."""
    return Workspace.init(tmp_path / "ws")


@pytest.fixture
def shared_data() -> Path:
    """The real dev corpus from ../shared, or skip when this checkout has none beside it."""
    if not (SHARED_DATA / "dev.csv").exists():
        pytest.skip("../shared/data/medical-abstracts/dev.csv is not present")
    return SHARED_DATA


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"
