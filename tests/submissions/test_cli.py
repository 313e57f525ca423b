from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bedside.auth import authenticate
from bedside.cli.app import app
from bedside.errors import BundleError, LimitError
from bedside.workspace import Workspace

runner = CliRunner()

COMMANDS = [
    ["check"], ["submit"], ["submissions"], ["contributor"], ["contributor", "add"], ["contributor", "show"],
    ["contributor", "list"], ["contributor", "set"], ["contributor", "revoke"], ["contributor", "rotate-token"],
]  # fmt: skip


@pytest.mark.parametrize("cmd", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_every_command_has_help(cmd: list[str]) -> None:
    res = runner.invoke(app, [*cmd, "-h"])
    assert res.exit_code == 0, res.output
    assert "Usage" in res.output


def test_check_needs_no_workspace(make_bundle: Callable[..., Path]) -> None:
    res = runner.invoke(app, ["check", str(make_bundle("classifier")), "--no-smoke"])
    assert res.exit_code == 0, res.output
    assert "bundle OK: tiny-classifier (classifier, bert)" in res.output
    assert (
        "label-mapping" in res.output
        and "PFLOPs" in res.output
        and "skipped (--no-smoke)" in res.output
    )


def test_check_json(make_bundle: Callable[..., Path]) -> None:
    res = runner.invoke(
        app, ["check", str(make_bundle("causal-lm")), "--no-smoke", "--format", "json"]
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["bundle"]["kind"] == "causal-lm" and data["bundle"]["model_type"] == "llama"
    assert data["estimate"]["total"] > 0 and data["smoke"]["ran"] is False


def test_check_refuses_with_the_reason(make_bundle: Callable[..., Path]) -> None:
    b = make_bundle()
    (b / "pytorch_model.bin").write_bytes(b"x")
    res = runner.invoke(app, ["check", str(b), "--no-smoke"])
    assert res.exit_code != 0
    assert isinstance(res.exception, BundleError) and "pickle-based" in str(res.exception)


@pytest.mark.slow
def test_check_runs_the_smoke_run(make_bundle: Callable[..., Path]) -> None:
    res = runner.invoke(app, ["check", str(make_bundle("encoder")), "--format", "json"])
    assert res.exit_code == 0, res.output
    smoke = json.loads(res.output)["smoke"]
    assert smoke["ran"] is True
    assert smoke["phase1"]["ok"] is True and smoke["phase2"]["ok"] is True


def test_contributor_lifecycle(cws: Workspace, make_bundle: Callable[..., Path]) -> None:
    w = ["-w", str(cws.root)]
    res = runner.invoke(
        app, [*w, "contributor", "add", "acme", "--max-submissions", "2", "--budget-pflops", "10"]
    )
    assert res.exit_code == 0, res.output
    token = re.search(r"bsc_[A-Za-z0-9_-]+", res.output)
    assert token and authenticate(cws, token.group(0)).name == "acme"

    res = runner.invoke(app, [*w, "contributor", "list", "--format", "json"])
    assert [c["name"] for c in json.loads(res.output)] == ["acme"]
    assert token.group(0) not in res.output  # shown once, never listed

    res = runner.invoke(app, [*w, "submit", str(make_bundle()), "--contributor", "acme"])
    assert res.exit_code == 0, res.output
    assert "accepted: submission #1" in res.output
    res = runner.invoke(app, [*w, "submissions", "--format", "json"])
    subs = json.loads(res.output)
    assert [s["id"] for s in subs] == [1] and subs[0]["contributor"] == "acme"
    res = runner.invoke(app, [*w, "submissions", "--contributor", "acme"])
    assert res.exit_code == 0 and "acme" in res.output and "accepted" in res.output

    res = runner.invoke(app, [*w, "contributor", "show", "acme", "--format", "json"])
    shown = json.loads(res.output)
    assert shown["submissions_used"] == 1 and shown["submissions_left"] == 1

    res = runner.invoke(
        app, [*w, "contributor", "set", "acme", "--max-submissions", "1", "--format", "json"]
    )
    assert json.loads(res.output)["max_submissions"] == 1
    res = runner.invoke(
        app, [*w, "submit", str(make_bundle(name="second")), "--contributor", "acme"]
    )
    assert isinstance(res.exception, LimitError)

    res = runner.invoke(app, [*w, "contributor", "revoke", "acme"])
    assert res.exit_code == 0 and "revoked" in res.output
    res = runner.invoke(app, [*w, "contributor", "rotate-token", "acme"])
    assert res.exit_code == 0 and "bsc_" in res.output
