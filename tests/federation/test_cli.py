"""`bedside federation`: help for every command, and bad options refused with a message."""

from __future__ import annotations

from typer.testing import CliRunner

from bedside.cli.app import app
from bedside.errors import ConfigError


def test_federation_commands_have_help() -> None:
    runner = CliRunner()
    for args in (
        ["federation", "--help"],
        ["federation", "demo", "--help"],
        ["federation", "run", "--help"],
        ["federation", "deploy", "--help"],
    ):
        res = runner.invoke(app, args)
        assert res.exit_code == 0 and "Usage" in res.output


def test_bad_drop_site_and_missing_config_are_refused(tmp_path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["federation", "demo", str(tmp_path / "d"), "--drop-site", "east"])
    assert isinstance(res.exception, ConfigError) and "SITE:ROUND" in res.exception.message
    assert res.exception.exit_code == 2 and not (tmp_path / "d").exists()
    for cmd in ("run", "deploy"):
        res = runner.invoke(app, ["federation", cmd, str(tmp_path / "nope.toml")])
        assert isinstance(res.exception, ConfigError) and "not found" in res.exception.message
