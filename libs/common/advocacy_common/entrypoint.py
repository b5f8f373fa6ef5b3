"""The command line of one service: ``serve`` (uvicorn, configured by the environment) and ``migrate``."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import typer
import uvicorn

from advocacy_common.migrations import upgrade
from advocacy_common.settings import ServiceSettings


class GracefulServer(uvicorn.Server):
    """uvicorn, except that a connection accepted just before shutdown gets its request answered.

    uvicorn's shutdown closes every connection that has not started a request yet, including one
    accepted a moment ago whose request bytes are still on their way: the client gets a closed
    connection with no answer (reliability scenario 7 saw 13-18 per SIGTERM at ~100 req/s). Here
    the listeners close first, then those fresh connections have up to ``FRESH_GRACE`` seconds to
    start their request (answered, then the connection is closed) before the usual shutdown runs.
    """

    FRESH_GRACE = 1.0

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.FRESH_GRACE
        while loop.time() < deadline and any(_fresh(c) for c in list(self.server_state.connections)):
            await asyncio.sleep(0.01)
        await super().shutdown(sockets)


def _fresh(connection: object) -> bool:
    """Accepted, still open, and no request received on it yet."""
    transport = getattr(connection, "transport", None)
    return getattr(connection, "cycle", True) is None and transport is not None and not transport.is_closing()


def service_cli(package: str, settings_factory: Callable[[], ServiceSettings]) -> typer.Typer:
    cli = typer.Typer(add_completion=False, no_args_is_help=False, help=f"{package} service")

    @cli.command()
    def serve() -> None:
        """Serve the service (role api, worker or all, from the environment)."""
        s = settings_factory()
        config = uvicorn.Config(
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
        GracefulServer(config).run()

    @cli.command()
    def migrate() -> None:
        """Apply the service's Alembic migrations to its database."""
        s = settings_factory()
        upgrade(package, s.database_url)
        typer.echo(f"{package}: migrated")

    return cli
