"""What our dependencies import for a terminal, kept out of our processes (ADR 0024).

structlog imports rich (and rich's tracebacks import pygments) for its dev console's exception
boxes, and httpx imports click, pygments and rich for its command-line client, each when it is
imported: ~3.5 MB resident in every service process and the console, for code none of them runs.
Our logs format an exception as plain text before any renderer sees it (``format_exc_info`` in
advocacy_common.observability), and no process of ours runs httpx's command line. Both libraries
import these optionally and fall back when the import fails; here it fails, for them only.
Likewise uvicorn's ``--reload`` supervisor (watchfiles) and ua_parser's loader of custom
``regexes.yaml`` files (PyYAML): see the addendum of ADR 0024.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

#: httpx's command-line client: ``import httpx`` tries ``from ._main import main`` and, when that
#: fails, defines a ``main`` that only says the client's dependencies are missing.
HTTPX_CLI = "httpx._main"


@contextlib.contextmanager
def hidden(*names: str) -> Iterator[None]:
    """Inside the block, importing a module of ``names`` raises ImportError (a library importing it
    optionally takes its fallback). Modules already imported stay as they are; after the block every
    name imports as usual (the metrics CLI's progress bars and the dev tooling use rich)."""
    hid = [name for name in names if name not in sys.modules]
    for name in hid:
        sys.modules[name] = None  # type: ignore[assignment]  # the import system's "not importable"
    try:
        yield
    finally:
        for name in hid:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


def skip_httpx_cli() -> None:
    """httpx, whenever it is imported in this process, leaves out its command-line client (the
    ``httpx`` command, a process of its own, still has it). A no-op once httpx is imported."""
    if "httpx" not in sys.modules:
        sys.modules.setdefault(HTTPX_CLI, None)  # type: ignore[arg-type]
