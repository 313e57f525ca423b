"""Fixtures of the web tests: a populated workspace (see ``webdata``), copied per test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bedside.workspace import Workspace
from tests.web.webdata import Populated, populate


@pytest.fixture(scope="session")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Populated:
    return populate(tmp_path_factory.mktemp("template") / "ws")


@pytest.fixture
def pop(_template: Populated, tmp_path: Path) -> Iterator[Populated]:
    """A private copy of the populated workspace."""
    dest = tmp_path / "ws"
    shutil.copytree(_template.ws.root, dest)
    ws = Workspace.open(dest)
    yield Populated(
        ws,
        _template.owner,
        _template.tokens,
        _template.submissions,
        _template.jobs,
        _template.results,
    )
    ws.store.dispose()


@pytest.fixture
def client(pop: Populated) -> Iterator[TestClient]:
    from bedside.web.app import create_app

    with TestClient(create_app(pop.ws, max_upload_bytes=4096)) as c:
        yield c
