"""JSON Schemas of every event type, generated from the models and checked in under docs/events/.

A published schema may only change additively within a version: :func:`incompatibilities` lists
what a new schema breaks for consumers of the old one (a removed or retyped property, a new
required property). A breaking change is a new ``.v2`` type published beside ``.v1``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from advocacy_common.events import REGISTRY

SCHEMA_DIR = Path("docs/events")


def event_schema(event_type: str) -> dict[str, Any]:
    model = REGISTRY[event_type]
    schema = model.model_json_schema(mode="serialization")
    schema["$id"] = f"https://advocacy.example/schemas/{event_type}.json"
    schema["title"] = event_type
    schema["x-topic"] = model.TOPIC
    schema["x-partner-visible"] = model.PARTNER_VISIBLE
    return schema


def all_schemas() -> dict[str, dict[str, Any]]:
    return {t: event_schema(t) for t in sorted(REGISTRY)}


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


README = Path("README.md")
_START, _END = "<!-- event-catalogue:start -->", "<!-- event-catalogue:end -->"


def write_all(directory: Path = SCHEMA_DIR, readme: Path = README) -> list[Path]:
    """Regenerate docs/events/*.json and the README's event catalogue."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for stale in directory.glob("*.json"):
        if stale.stem not in REGISTRY:
            stale.unlink()
    for t, schema in all_schemas().items():
        path = directory / f"{t}.json"
        path.write_text(render(schema))
        written.append(path)
    if readme.exists():
        text = readme.read_text()
        if _START in text and _END in text:
            head, rest = text.split(_START, 1)
            tail = rest.split(_END, 1)[1]
            readme.write_text(f"{head}{_START}\n{catalogue_markdown()}\n{_END}{tail}")
            written.append(readme)
    return written


def _prop_type(schema: dict[str, Any], prop: dict[str, Any]) -> Any:
    if "$ref" in prop:
        return prop["$ref"]
    if "anyOf" in prop:
        return sorted(json.dumps(_prop_type(schema, p), sort_keys=True) for p in prop["anyOf"])
    return prop.get("type")


def incompatibilities(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What ``new`` breaks for a consumer written against ``old``."""
    problems = []
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    for name, prop in old_props.items():
        if name not in new_props:
            problems.append(f"property {name!r} removed")
            continue
        before, after = _prop_type(old, prop), _prop_type(new, new_props[name])
        if before != after:
            problems.append(f"property {name!r} changed type: {before} -> {after}")
    added_required = set(new.get("required", [])) - set(old.get("required", []))
    for name in sorted(added_required):
        problems.append(f"property {name!r} became required")
    return problems


def partition_key_shape(event_type: str) -> str:
    """How a type is keyed, e.g. ``tenant:employee_id``, read off the model's own partition_key."""
    model = REGISTRY[event_type]
    fields: dict[str, Any] = {name: name for name in model.model_fields}
    probe = model.model_construct(None, **fields)
    return probe.partition_key("tenant")


def catalogue_markdown() -> str:
    """The README's event catalogue, generated from the registry so it cannot drift."""
    rows = ["| type | topic | key | partner feed | schema |", "|---|---|---|---|---|"]
    for t in sorted(REGISTRY):
        model = REGISTRY[t]
        rows.append(
            f"| `{t}` | `{model.TOPIC}` | `{partition_key_shape(t)}` | {'yes' if model.PARTNER_VISIBLE else 'no'} "
            f"| [schema](docs/events/{t}.json) |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    for written in write_all():
        print(f"wrote {written}")
