"""Every command answers -h, and the CLI starts without importing torch."""

from __future__ import annotations

import subprocess
import sys

import typer
from typer.testing import CliRunner

from bedside.cli.app import app


def _paths(cmd: object, prefix: list[str]) -> list[list[str]]:
    out = [prefix]
    if hasattr(cmd, "commands"):  # a group (typer ships its own click)
        for name, sub in cmd.commands.items():
            out += _paths(sub, [*prefix, name])
    return out


def test_every_command_has_help() -> None:
    root = typer.main.get_command(app)
    paths = _paths(root, [])
    names = {" ".join(p) for p in paths}
    for expected in (
        "init",
        "data add",
        "data eda",
        "check",
        "submit",
        "worker",
        "serve",
        "demo",
        "baseline",
    ):
        assert expected in names
    runner = CliRunner()
    for p in paths:
        res = runner.invoke(app, [*p, "-h"])
        assert res.exit_code == 0, (p, res.output)
        assert "Usage" in res.output


def test_cli_starts_without_torch() -> None:
    code = "import sys; import bedside.cli.app; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_error_is_one_line_with_exit_code(tmp_path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bedside.cli.app", "-w", str(tmp_path), "data", "versions"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 3
    assert "no bedside workspace" in out.stderr and "Traceback" not in out.stderr
