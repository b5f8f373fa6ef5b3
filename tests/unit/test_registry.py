"""Services register themselves (entry points, advocacy_common.registry); tools read registrations."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from advocacy_common.registry import DevPlace, registered, registration

pytestmark = pytest.mark.unit


def test_every_service_is_registered_once_in_dev_port_order() -> None:
    found = registered()
    assert [r.name for r in found] == ["content", "sharing", "metrics", "gamification", "notifications"]
    assert len({r.dev_port for r in found}) == len(found)


@pytest.mark.parametrize("name", ["content", "sharing", "metrics", "gamification", "notifications"])
def test_a_registration_runs_and_builds_its_service(name: str) -> None:
    r = registration(name)
    assert importlib.util.find_spec(f"{r.package}.__main__") is not None  # `python -m <package>` runs it
    settings = r.settings_class(dev_mode=True, role="all", database_url="postgresql+asyncpg://x@127.0.0.1:1/x")
    assert settings.service_name == name
    app = r.create_app(settings)
    assert app.openapi()["info"]["title"].lower().endswith(name)


def test_sharing_and_notifications_add_to_the_dev_environment(tmp_path: Path) -> None:
    place = DevPlace(data_dir=tmp_path, port=18002)
    extra = {r.name: dict(r.dev_env(place)) for r in registered() if r.dev_env is not None}
    assert extra == {
        "sharing": {"SHARING_SPOOL_DIR": str(tmp_path / "spool"), "SHARING_PUBLIC_BASE_URL": "http://127.0.0.1:18002"},
        "notifications": {"NOTIFICATIONS_PUBLIC_BASE_URL": "http://127.0.0.1:18002"},
    }


def test_an_unknown_service_is_named_in_the_error() -> None:
    with pytest.raises(LookupError, match="'billing'"):
        registration("billing")
