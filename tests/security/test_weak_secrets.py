"""A service process started outside dev mode with a weak signing key stops at once, with one line
naming the variable and no traceback (issue 13, item 5). No database or broker is needed: the
settings are checked before anything is opened."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("service", "variable", "value"),
    [
        ("sharing", "SHARING_VISITOR_SECRET", "compose-visitor-secret-change-me"),
        ("sharing", "SHARING_CLICK_ID_SECRET", "too-short"),
        ("gamification", "GAMIFICATION_STREAM_TICKET_SECRET", "s" * 31),
    ],
)
def test_a_weak_key_outside_dev_mode_stops_the_process_with_one_line(
    service: str, variable: str, value: str, tmp_path: os.PathLike[str]
) -> None:
    prefixes = ("CONTENT_", "SHARING_", "METRICS_", "GAMIFICATION_", "JWT_", "DEV_MODE", "DATABASE_URL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env |= {
        f"{service.upper()}_DATABASE_URL": "postgresql+asyncpg://u:p@127.0.0.1:1/none",
        "JWT_JWKS_URL": "https://idp.example.com/.well-known/jwks.json",
        "JWT_ISSUER": "https://idp.example.com/",
        "SHARING_VISITOR_SECRET": secrets.token_urlsafe(32),
        "SHARING_CLICK_ID_SECRET": secrets.token_urlsafe(32),
        variable: value,
    }
    proc = subprocess.run(
        [sys.executable, "-m", f"advocacy_{service}", "serve"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"{service}: cannot start: {variable} "), lines[0]
    assert value not in lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""
