"""The committed OpenAPI document of each service (docs/openapi/<service>.json), generated from its app.

Each service's ``create_app(settings)`` is built with dev settings and role ``all`` (every router
mounted; nothing is started: the lifespan does not run), and ``app.openapi()`` is written out.

    python -m advocacy_dev.openapi_export           # rewrite docs/openapi/*.json
    python -m advocacy_dev.openapi_export --check   # exit 1 if a committed file differs
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

from advocacy_common.registry import registered, registration

OPENAPI_DIR = Path("docs/openapi")
REGENERATE = ".venv/bin/python -m advocacy_dev.openapi_export"
SERVICES = tuple(r.name for r in registered())  # every installed service, from its registration


def openapi(service: str) -> dict[str, Any]:
    """``app.openapi()`` of one service, built with dev settings (no I/O happens)."""
    service_registration = registration(service)
    settings = service_registration.settings_class(
        dev_mode=True,
        role="all",
        database_url=f"postgresql+asyncpg://openapi@127.0.0.1:5432/advocacy_{service}",
        log_json=False,
    )
    # create_app configures logging for a service process; leave the caller's logging as it was.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        app = service_registration.create_app(settings)
        doc: dict[str, Any] = app.openapi()
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    return doc


def render(service: str) -> str:
    """docs/openapi/<service>.json's text."""
    return json.dumps(openapi(service), indent=2, ensure_ascii=False) + "\n"


def path_for(service: str, directory: Path = OPENAPI_DIR) -> Path:
    return directory / f"{service}.json"


def stale(directory: Path = OPENAPI_DIR) -> list[str]:
    """The services whose committed document differs from their app's."""
    return [
        s for s in SERVICES if not path_for(s, directory).exists() or path_for(s, directory).read_text() != render(s)
    ]


def write_all(directory: Path = OPENAPI_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for service in SERVICES:
        path = path_for(service, directory)
        path.write_text(render(service))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if "--check" in args:
        drifted = stale()
        if drifted:
            print(f"out of date: {', '.join(drifted)}; regenerate with: {REGENERATE}", file=sys.stderr)
            return 1
        return 0
    for path in write_all():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
