"""Published event schemas: regenerated == committed, and changes within a version are additive."""

from __future__ import annotations

import json
import subprocess

import pytest

from advocacy_dev.event_schemas import SCHEMA_DIR, all_schemas, incompatibilities, render


def test_every_event_type_has_its_committed_schema() -> None:
    generated = all_schemas()
    committed = {p.stem: p for p in SCHEMA_DIR.glob("*.json")}
    assert set(generated) == set(committed), (
        "run `.venv/bin/python -m advocacy_dev.event_schemas` and commit docs/events/"
    )
    for t, schema in generated.items():
        assert committed[t].read_text() == render(schema), f"{t}: schema drifted; regenerate and review"


def _schema_at_head(path: str) -> dict[str, object] | None:
    try:
        text = subprocess.run(["git", "show", f"HEAD:{path}"], capture_output=True, check=True, text=True).stdout
    except (subprocess.CalledProcessError, FileNotFoundError):
        return None
    return dict(json.loads(text))


def test_changes_since_last_commit_are_additive() -> None:
    for t, schema in all_schemas().items():
        before = _schema_at_head(f"{SCHEMA_DIR}/{t}.json")
        if before is None:
            continue  # a new type
        assert incompatibilities(before, schema) == [], t


BASE = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}, "required": ["a"]}


@pytest.mark.parametrize(
    "new,problem",
    [
        ({**BASE, "properties": {"a": {"type": "string"}}}, "property 'b' removed"),
        ({**BASE, "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}, "property 'a' changed type"),
        ({**BASE, "required": ["a", "b"]}, "property 'b' became required"),
    ],
)
def test_incompatible_changes_are_caught(new: dict[str, object], problem: str) -> None:
    assert any(p.startswith(problem) for p in incompatibilities(BASE, new))


def test_adding_an_optional_property_is_compatible() -> None:
    new = {**BASE, "properties": {**BASE["properties"], "c": {"type": "string"}}}  # type: ignore[dict-item]
    assert incompatibilities(BASE, new) == []


def test_readme_catalogue_lists_every_event() -> None:
    from pathlib import Path

    from advocacy_dev.event_schemas import catalogue_markdown

    readme = Path("README.md").read_text()
    section = readme.split("<!-- event-catalogue:start -->")[1].split("<!-- event-catalogue:end -->")[0]
    assert section.strip() == catalogue_markdown().strip(), "regenerate the README event catalogue"
