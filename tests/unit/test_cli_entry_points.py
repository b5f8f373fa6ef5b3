"""Services add their command groups to ``advocacy`` by entry point (the library names none)."""

from __future__ import annotations

from typer.testing import CliRunner

from advocacy_dev.cli import app


def test_the_metrics_command_group_is_registered_by_its_entry_point() -> None:
    result = CliRunner().invoke(app, ["metrics", "--help"])
    assert result.exit_code == 0, result.output
    assert "rebuild" in result.output


def test_the_content_command_group_is_registered_and_announce_needs_a_tenant() -> None:
    result = CliRunner().invoke(app, ["content", "--help"])
    assert result.exit_code == 0, result.output
    assert "announce" in result.output
    result = CliRunner().invoke(app, ["content", "announce"])
    assert result.exit_code != 0 and "--tenant" in result.output
