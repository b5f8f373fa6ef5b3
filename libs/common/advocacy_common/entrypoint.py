"""The command line of one service: ``serve`` (uvicorn, configured by the environment) and ``migrate``."""

from __future__ import annotations

import asyncio
import functools
import socket
import struct
from collections.abc import Callable
from typing import Any

import typer
from pydantic import ValidationError

from advocacy_common import migrations
from advocacy_common.migrations import upgrade
from advocacy_common.settings import HTTP_KEEP_ALIVE_SECONDS, ServiceSettings, settings_error_line
from advocacy_common.unused_imports import hidden

with hidden("watchfiles"):  # uvicorn's --reload supervisor: we never reload (ADR 0024)
    import uvicorn

# How long a listener may wait for its accept queue to be empty before it closes anyway.
ACCEPT_DRAIN_MAX_SECONDS = 1.0
_TCP_INFO_LEN = 104  # enough of struct tcp_info for tcpi_unacked


def accept_queue_length(sock: Any) -> int | None:
    """Connections the kernel has completed on a listening socket that nobody has accepted yet
    (Linux: ``tcpi_unacked`` of a listener is its accept queue); None where that cannot be read."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_LEN)
    except (OSError, AttributeError):
        return None
    if len(info) < 8 + 5 * 4:
        return None
    return int(struct.unpack_from("5I", info, 8)[4])


class GracefulServer(uvicorn.Server):
    """uvicorn, except that a connection that may be carrying a request at shutdown gets it answered.

    uvicorn's shutdown closes at once every connection not in the middle of a request: one accepted a
    moment ago whose request bytes are still on their way, and an idle keep-alive connection on which
    the client has just sent its next request. Either way the client gets a closed connection and no
    answer (reliability scenario 7: 13-18 per SIGTERM at ~100 req/s for fresh connections; 4 in one
    run for keep-alive ones). Here the listeners close first; from then on no response keeps its
    connection alive (each carries ``connection: close``); fresh and idle connections get up to
    ``FRESH_GRACE`` seconds to bring a request, which is answered and then closes the connection;
    only what is still silent after that is closed by the usual shutdown.
    """

    FRESH_GRACE = 1.0

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Connections the kernel has completed but the loop has not accepted yet are reset when the
        # listener closes (scenario 7 saw up to 17 at once on a busy sharing process, with a fixed
        # 50 ms wait): the listeners close at a moment when their accept queues are empty, checked
        # in the same step of the loop as the close (the loop accepts while we wait); those
        # accepted are fresh connections, answered below.
        loop = asyncio.get_running_loop()
        listeners = [sock for server in self.servers for sock in server.sockets]
        drain_until = loop.time() + ACCEPT_DRAIN_MAX_SECONDS
        while loop.time() < drain_until and any(accept_queue_length(sock) for sock in listeners):
            await asyncio.sleep(0.002)
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            _no_more_keep_alive(connection)
        deadline = loop.time() + self.FRESH_GRACE
        while loop.time() < deadline and any(_waiting(c) for c in list(self.server_state.connections)):
            await asyncio.sleep(0.01)
        await super().shutdown(sockets)


class _ClosingParser:
    """A connection's HTTP parser, except that no request asks to keep the connection alive (uvicorn
    reads ``should_keep_alive()`` when a request's headers are complete)."""

    def __init__(self, parser: Any) -> None:
        self._parser = parser

    def should_keep_alive(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._parser, name)


def _no_more_keep_alive(connection: Any) -> None:
    """The request in hand and every later one on ``connection`` close it after their response."""
    parser = getattr(connection, "parser", None)
    if parser is not None and not isinstance(parser, _ClosingParser):
        connection.parser = _ClosingParser(parser)
    cycle = getattr(connection, "cycle", None)
    if cycle is not None and not cycle.response_complete:
        cycle.keep_alive = False


def _waiting(connection: object) -> bool:
    """Still open and not in a request: just accepted, or idle between keep-alive requests."""
    transport = getattr(connection, "transport", None)
    if transport is None or transport.is_closing():
        return False
    cycle = getattr(connection, "cycle", True)
    return cycle is None or bool(getattr(cycle, "response_complete", False))


def settings_or_exit(settings_class: type[ServiceSettings]) -> ServiceSettings:
    """The process's settings; when they are invalid (a weak signing key, a missing database URL...)
    the process exits at once with status 2 and one line on stderr naming the variable, not a traceback."""
    try:
        return settings_class()
    except ValidationError as e:
        typer.echo(settings_error_line(settings_class, e), err=True)
        raise typer.Exit(2) from None


def uvicorn_config(package: str, s: ServiceSettings) -> uvicorn.Config:
    """How ``serve`` runs uvicorn for ``package``."""
    return uvicorn.Config(
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
        # above the proxies' upstream idle timeout: they close idle connections, not we
        timeout_keep_alive=HTTP_KEEP_ALIVE_SECONDS,
        backlog=4096,
    )


def service_cli(package: str, settings_class: type[ServiceSettings]) -> typer.Typer:
    cli = typer.Typer(add_completion=False, no_args_is_help=False, help=f"{package} service")
    settings_factory = functools.partial(settings_or_exit, settings_class)

    @cli.command()
    def serve() -> None:
        """Serve the service (role api, worker or all, from the environment)."""
        GracefulServer(uvicorn_config(package, settings_factory())).run()

    migrate = typer.Typer(add_completion=False, help="The service's database schema (Alembic).")

    @migrate.callback(invoke_without_command=True)
    def migrate_default(
        ctx: typer.Context,
        sql: bool = typer.Option(False, "--sql", help="print the SQL instead of running it"),
    ) -> None:
        """Apply the service's migrations (with no subcommand)."""
        if ctx.invoked_subcommand is not None:
            return
        s = settings_factory()
        upgrade(package, s.database_url, sql=sql)
        if not sql:
            typer.echo(f"{package}: migrated")

    @migrate.command("current")
    def migrate_current() -> None:
        """The database's revision and where it stands against this code."""
        revisions, state = _schema(package, settings_factory().database_url)
        typer.echo(f"{package}: {', '.join(sorted(revisions)) or '(none)'} ({state})")

    @migrate.command("history")
    def migrate_history() -> None:
        """This code's revisions, newest first."""
        for line in migrations.history(package):
            typer.echo(line)

    @migrate.command("check")
    def migrate_check() -> None:
        """Exit 0 when the database is at this code's head or ahead of it, 1 when it is behind."""
        _, state = _schema(package, settings_factory().database_url)
        typer.echo(f"{package}: schema {state}")
        if state not in (migrations.CURRENT, migrations.AHEAD):
            raise typer.Exit(1)

    cli.add_typer(migrate, name="migrate")

    cli.add_typer(_outbox_cli(settings_factory), name="outbox")
    return cli


def _schema(package: str, database_url: str) -> tuple[set[str], str]:
    from advocacy_common.db import make_engine

    async def main() -> set[str]:
        engine = make_engine(database_url, pool_size=1)
        try:
            async with engine.connect() as conn:
                return await migrations.database_revisions(conn)
        finally:
            await engine.dispose()

    found = asyncio.run(main())
    heads, known = migrations.code_revisions(package)
    return found, migrations.schema_state(found, heads, known)


def _outbox_cli(settings_factory: Callable[[], ServiceSettings]) -> typer.Typer:
    """``python -m advocacy_<service> outbox parked | retry | discard``: the rows the broker refused."""
    from advocacy_common import outbox
    from advocacy_common.db import make_engine

    group = typer.Typer(add_completion=False, no_args_is_help=True, help="Parked outbox rows (ADR 0007).")

    def run(work: Callable[[Any], Any]) -> Any:
        async def main() -> Any:
            engine = make_engine(settings_factory().database_url, pool_size=1)
            try:
                return await work(engine)
            finally:
                await engine.dispose()

        return asyncio.run(main())

    @group.command()
    def parked(limit: int = typer.Option(100, help="at most this many rows")) -> None:
        """List parked rows, oldest first, with how many rows of their key wait behind each."""
        rows = run(lambda engine: outbox.parked_rows(engine, limit=limit))
        if not rows:
            typer.echo("no parked rows")
        for r in rows:
            typer.echo(
                f"{r['id']}  {r['parked_at']:%Y-%m-%d %H:%M:%S}  {r['topic']}  key={r['key']}  {r['event_type']}  "
                f"tenant={r['tenant_id']}  waiting={r['waiting']}  {r['park_reason']}"
            )

    @group.command()
    def retry(
        ids: list[int] = typer.Argument(None, help="row ids (see `parked`)"),
        every: bool = typer.Option(False, "--all", help="every parked row"),
    ) -> None:
        """Put parked rows back in line (after the cause is fixed, e.g. the broker's size limit)."""
        if not ids and not every:
            raise typer.BadParameter("name row ids, or --all")
        n = run(lambda engine: outbox.retry_parked(engine, None if every else ids))
        typer.echo(f"{n} row(s) back in line")

    @group.command()
    def discard(ids: list[int] = typer.Argument(..., help="row ids (see `parked`)")) -> None:
        """Give up on parked rows: never sent; the later rows of their key go on."""
        n = run(lambda engine: outbox.discard_parked(engine, ids))
        typer.echo(f"{n} row(s) discarded")

    return group
