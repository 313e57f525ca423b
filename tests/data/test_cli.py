from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bedside.cli.app import app
from bedside.errors import DataError
from bedside.workspace import Workspace

runner = CliRunner()
SUBCOMMANDS = ["add", "versions", "show", "eda", "synth"]


def _run(ws: Workspace, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["-w", str(ws.root), "data", *args])


@pytest.mark.parametrize("cmd", SUBCOMMANDS)
def test_every_subcommand_has_help(ws: Workspace, cmd: str) -> None:
    r = _run(ws, cmd, "-h")
    assert r.exit_code == 0 and "Usage" in r.stdout


def test_synth_add_versions_show_eda(ws: Workspace, tmp_path: Path) -> None:
    out, desc = tmp_path / "synth.csv", tmp_path / "desc.csv"
    r = _run(ws, "synth", str(out), "--n", "200", "--seed", "3", "--descriptions-out", str(desc))
    assert r.exit_code == 0, r.output
    assert out.exists() and desc.read_text().startswith("name,description")

    r = _run(ws, "add", str(out), "--descriptions", str(desc), "--format", "json")
    assert r.exit_code == 0, r.output
    added = json.loads(r.stdout)
    assert added["n_train"] + added["n_holdout"] == 200 and not added["existing"]
    assert added["classes"][0]["description"].startswith("Diseases of the heart")

    r = _run(ws, "add", str(out), "--descriptions", str(desc))  # identical: recognised
    assert r.exit_code == 0 and "already" in r.stdout

    r = _run(ws, "versions", "--format", "json")
    versions = json.loads(r.stdout)
    assert [v["hash"] for v in versions] == [added["hash"]] and versions[0]["active"]
    table = _run(ws, "versions")
    assert table.exit_code == 0 and "corpus versions" in table.stdout

    shown = json.loads(_run(ws, "show", "--format", "json").stdout)
    assert shown["hash"] == added["hash"] and shown["split"]["seed"] == 0
    assert _run(ws, "show").exit_code == 0

    plots = tmp_path / "plots"
    r = _run(ws, "eda", "--format", "json", "--plots", str(plots), "--plot-format", "svg")
    assert r.exit_code == 0, r.output
    eda = json.loads(r.stdout)
    assert eda["rows"]["total"] == 200 and len(eda["length_terciles"]) == 2
    assert sorted(p.name for p in plots.iterdir()) == [
        "class_distribution.svg",
        "word_length_by_class.svg",
        "word_length_histograms.svg",
    ]
    table = _run(ws, "eda", "--version", str(added["version_id"]))
    assert table.exit_code == 0 and "length in words" in table.stdout


def test_add_error_is_a_data_error(ws: Workspace, tmp_path: Path) -> None:
    r = _run(ws, "add", str(tmp_path / "missing.csv"))
    assert r.exit_code != 0 and isinstance(r.exception, DataError)
