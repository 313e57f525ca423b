"""Fixtures of the web tests: a populated workspace (see ``webdata``), copied per test."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

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


ORIGIN = "http://testserver"  # TestClient's own origin
_TOKEN = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def form_token(client: TestClient, path: str = "/login") -> str:
    """The CSRF token a bedside page gives this client's session."""
    found = _TOKEN.search(client.get(path).text)
    assert found, f"no csrf_token field on {path}"
    return found.group(1)


def post_form(
    client: TestClient, url: str, data: dict[str, Any] | None = None, **kw: Any
) -> Response:
    """POST a page form as the browser does: from bedside's own origin, with the form token."""
    headers = {"Origin": ORIGIN, **kw.pop("headers", {})}
    body = {**(data or {}), "csrf_token": form_token(client)}
    return client.post(url, data=body, headers=headers, **kw)
