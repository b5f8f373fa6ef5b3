"""``make run`` starts the console beside the services: the environment the dev stack gives it is the
one its settings read (a renamed variable would leave the console calling the default ports)."""

from __future__ import annotations

from pathlib import Path

import pytest

from advocacy_console.settings import ConsoleSettings
from advocacy_dev.devstack.stack import CONSOLE_PORT, console_env, console_origins


def test_the_console_reads_the_environment_the_dev_stack_gives_it(monkeypatch: pytest.MonkeyPatch) -> None:
    ports = {"content": 18001, "sharing": 18002, "metrics": 18003, "gamification": 18004}
    env = console_env(ports, Path("/tmp/keys"), port=18010)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s = ConsoleSettings()
    assert (s.port, s.dev_mode, s.dev_keys_dir, s.cookie_secure) == (18010, True, Path("/tmp/keys"), False)
    assert [s.content_url, s.sharing_url, s.metrics_url, s.gamification_url] == [
        f"http://127.0.0.1:{p}" for p in ports.values()
    ]
    assert s.stream_origin == "http://127.0.0.1:18004"


def test_the_services_allow_the_consoles_origin() -> None:
    assert f"http://127.0.0.1:{CONSOLE_PORT}" in console_origins()
