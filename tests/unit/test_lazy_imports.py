"""A service process does not carry what it only sometimes needs (issue 19).

Alembic (with Mako), joserfc (with cryptography) and httpx (with httpcore) took 21 MB of every
service's start-up heap. They are imported by the functions that use them: migrating, verifying a
token or a share link, calling out. Importing a service's app loads none of them, and the code's
migration heads, which a serving process needs, are read from the revision files' source, the same
as Alembic finds them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from advocacy_common import migrations

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
#: Every package with Alembic revisions (the console keeps its sessions with them too).
MIGRATED = sorted(p.parent.name for p in ROOT.glob("services/*/advocacy_*/migrations"))
#: The backend services; the console is left out: it is a web client of theirs, and verifying its
#: logins and calling the services (joserfc, httpx) is all it does.
SERVICES = ["content", "sharing", "metrics", "gamification", "notifications"]
#: Loaded only when used (the top-level package of each, and what it brings).
LAZY = ["alembic", "mako", "joserfc", "cryptography", "httpx", "httpcore"]


def test_every_migrated_package_is_found() -> None:
    assert {f"advocacy_{s}" for s in SERVICES} | {"advocacy_console"} <= set(MIGRATED)


@pytest.mark.parametrize("package", MIGRATED)
def test_code_revisions_are_alembics(package: str) -> None:
    script = ScriptDirectory.from_config(migrations.alembic_config(package, ""))
    heads, known = migrations.code_revisions(package)
    assert heads == frozenset(script.get_heads())
    assert known == frozenset(r.revision for r in script.walk_revisions())
    assert len(heads) == 1, f"{package}: one head, not {sorted(heads)}"


def test_revision_ids_read_every_form_alembic_writes() -> None:
    annotated = 'revision: str = "0003_b"\ndown_revision: Union[str, None] = "0002_a"\n'
    assert migrations._revision_ids(annotated, "x.py") == ("0003_b", ("0002_a",))
    merge = "revision = '0004_m'\ndown_revision = ('0003_b', '0003_c')\ndef upgrade() -> None:\n    revision = 'x'\n"
    assert migrations._revision_ids(merge, "x.py") == ("0004_m", ("0003_b", "0003_c"))
    assert migrations._revision_ids("revision = '0001'\ndown_revision = None\n", "x.py") == ("0001", ())


@pytest.mark.parametrize(
    "source",
    [
        "down_revision = None\n",  # no revision
        "revision = make_id()\ndown_revision = None\n",  # not a literal
        "revision = '0002'\ndown_revision = 2\n",
        "revision = '0002'\ndown_revision = ('0001', 2)\n",
    ],
)
def test_a_revision_that_cannot_be_read_without_running_it_is_refused(source: str) -> None:
    with pytest.raises(ValueError, match=r"x\.py"):
        migrations._revision_ids(source, "x.py")


def test_importing_a_service_app_loads_none_of_the_lazy_libraries() -> None:
    """In a fresh interpreter (this one has them all): every service's app and entry point."""
    script = (
        "import importlib, sys\n"
        f"for s in {SERVICES!r}:\n"
        "    importlib.import_module(f'advocacy_{s}.app')\n"
        # loaded modules: a None entry is one refused (httpx's command line, ADR 0024)
        f"print(' '.join(sorted({{m.split('.')[0] for m, v in sys.modules.items() if v}} & {set(LAZY)!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == [], f"imported by a service app: {out.stdout.strip()}"


#: Imported by structlog and httpx for a terminal (structlog's dev tracebacks, httpx's command line)
#: and used by no service or console process (ADR 0024).
TERMINAL = ["rich", "pygments"]


def _fresh(script: str) -> str:
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    return out.stdout.strip()


@pytest.mark.parametrize("package", [*(f"advocacy_{s}" for s in SERVICES), "advocacy_console"])
def test_a_process_serving_or_calling_out_loads_no_terminal_library(package: str) -> None:
    """Its app, its logging set up and httpx (which a service imports when it calls out)."""
    script = (
        "import importlib, sys\n"
        f"importlib.import_module('{package}.app')\n"
        "from advocacy_common.observability import configure_logging\n"
        "configure_logging('x', json=False)\n"
        "import httpx\n"
        f"print(' '.join(sorted({{m.split('.')[0] for m, v in sys.modules.items() if v}} & {set(TERMINAL)!r})))\n"
    )
    assert _fresh(script) == "", f"{package} loads {_fresh(script)}"


#: Imported by uvicorn for its ``--reload`` supervisor and by ua_parser for custom ``regexes.yaml``
#: files: no process of ours reloads, and sharing's parser uses the precompiled built-in rules.
UNUSED = ["watchfiles", "yaml"]


def test_service_and_console_processes_load_neither_watchfiles_nor_yaml() -> None:
    """Every app, its entry point (uvicorn) and one user agent parsed by sharing's verdicts."""
    script = (
        "import importlib, sys\n"
        f"for s in {[*SERVICES, 'console']!r}:\n"
        "    importlib.import_module(f'advocacy_{s}.app')\n"
        "import advocacy_common.entrypoint\n"
        "from advocacy_sharing.adapters import verdicts\n"
        "assert verdicts.parse_ua('Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0')"
        ".user_agent.family == 'Firefox'\n"
        f"print(' '.join(sorted({{m.split('.')[0] for m, v in sys.modules.items() if v}} & {set(UNUSED)!r})))\n"
    )
    assert _fresh(script) == ""


def test_hidden_modules_import_again_after_the_block() -> None:
    script = (
        "import sys\n"
        "from advocacy_common.unused_imports import hidden\n"
        "import json\n"  # imported already: hiding leaves it alone
        "with hidden('rich', 'json'):\n"
        "    try:\n"
        "        import rich\n"
        "        print('imported')\n"
        "    except ImportError:\n"
        "        print('refused')\n"
        "    import json\n"
        "import rich.console\n"  # the metrics CLI's progress bars, the dev tooling
        "print(sys.modules['rich'] is not None, 'json' in sys.modules)\n"
    )
    assert _fresh(script).split() == ["refused", "True", "True"]
