"""The command line of one service: ``serve`` (uvicorn, configured by the environment) and ``migrate``."""

from __future__ import annotations

from collections.abc import Callable

import typer
import uvicorn

from advocacy_common.migrations import upgrade
from advocacy_common.settings import ServiceSettings


def service_cli(package: str, settings_factory: Callable[[], ServiceSettings]) -> typer.Typer:
    cli = typer.Typer(add_completion=False, no_args_is_help=False, help=f"{package} service")

    @cli.command()
    def serve() -> None:
        """Serve the service (role api, worker or all, from the environment)."""
        s = settings_factory()
        uvicorn.run(
            f"{package}.app:create_app",
            factory=True,
            host=s.host,
            port=s.port,
            loop="uvloop",
            http="httptools",
            log_config=None,
            access_log=False,
            # X-Forwarded-For is judged by the app against TRUSTED_PROXIES (advocacy_common.net);
            # uvicorn's own rewrite would trust any loopback peer whatever the settings say.
            proxy_headers=False,
            timeout_graceful_shutdown=s.graceful_shutdown_seconds,
            backlog=4096,
        )

    @cli.command()
    def migrate() -> None:
        """Apply the service's Alembic migrations to its database."""
        s = settings_factory()
        upgrade(package, s.database_url)
        typer.echo(f"{package}: migrated")

    return cli
