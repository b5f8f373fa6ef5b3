"""Services register themselves: each names its settings, its app factory and its place in a dev
stack, under the entry-point group ``advocacy.services``. Tools (the dev stack, the OpenAPI export)
read the registrations; the library names no service (ADR 0005, 0006).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

GROUP = "advocacy.services"


@dataclass(frozen=True, slots=True)
class DevPlace:
    """Where a service runs in a dev stack: the stack's data root and the service's own port."""

    data_dir: Path
    port: int


@dataclass(frozen=True, slots=True)
class Registration:
    """What tools need to know of a service. ``dev_env`` adds what only that service reads (sharing:
    its click journal's directory and its links' public base URL)."""

    name: str
    settings_class: type[Any]
    create_app: Callable[[Any], Any]
    dev_port: int
    dev_env: Callable[[DevPlace], Mapping[str, str]] | None = None

    @property
    def package(self) -> str:
        """The service's top-level package (``python -m <package> serve`` runs it)."""
        return self.create_app.__module__.partition(".")[0]


def registered() -> list[Registration]:
    """Every installed service, in dev-port order (the order a dev stack starts them in)."""
    found: list[Registration] = []
    for ep in entry_points(group=GROUP):
        registration = ep.load()
        if not isinstance(registration, Registration) or registration.name != ep.name:
            raise TypeError(f"entry point {ep.name} = {ep.value} is not the Registration of {ep.name!r}")
        found.append(registration)
    return sorted(found, key=lambda r: r.dev_port)


def registration(name: str) -> Registration:
    for r in registered():
        if r.name == name:
            return r
    raise LookupError(f"no service {name!r} is installed (entry-point group {GROUP})")
