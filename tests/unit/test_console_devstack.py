"""``make run`` starts the console beside the services: the environment the dev stack gives it is the
one its settings read (a renamed variable would leave the console calling the default ports)."""

from __future__ import annotations

from pathlib import Path

import pytest

from advocacy_console.settings import ConsoleSettings
from advocacy_dev.devstack.stack import CONSOLE_PORT, console_env, console_origins, ensure_console_secret


def test_the_console_reads_the_environment_the_dev_stack_gives_it(monkeypatch: pytest.MonkeyPatch) -> None:
    ports = {"content": 18001, "sharing": 18002, "metrics": 18003, "gamification": 18004}
    url = "postgresql+asyncpg://postgres@127.0.0.1:5433/advocacy_console"
    env = console_env(ports, Path("/tmp/keys"), database_url=url, secret_key="k" * 43, port=18010)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s = ConsoleSettings()
    assert (s.port, s.dev_mode, s.dev_keys_dir, s.cookie_secure) == (18010, True, Path("/tmp/keys"), False)
    # sessions in the console's table, as in production (ADR 0014), not in the process's memory
    assert s.database_url == url and s.secret_key is not None and s.secret_key.get_secret_value() == "k" * 43
    assert [s.content_url, s.sharing_url, s.metrics_url, s.gamification_url] == [
        f"http://127.0.0.1:{p}" for p in ports.values()
    ]
    assert s.stream_origin == "http://127.0.0.1:18004"


def test_the_services_allow_the_consoles_origin() -> None:
    assert f"http://127.0.0.1:{CONSOLE_PORT}" in console_origins()


def test_the_dev_consoles_session_key_is_private_and_kept(tmp_path: Path) -> None:
    key = ensure_console_secret(tmp_path / "keys")
    assert len(key) >= 43 and ensure_console_secret(tmp_path / "keys") == key  # a restart opens the sessions
    assert (tmp_path / "keys" / "console-secret").stat().st_mode & 0o077 == 0
