"""``advocacy metrics ...``: operator commands of the metrics service.

``advocacy metrics rebuild --tenant T`` recomputes every aggregate of T from the raw facts (how a
changed metric definition is rolled out) and says how the result differs from what was live.
``advocacy metrics backfill --all`` fills the aggregates added since a tenant had facts
(:mod:`advocacy_metrics.features.backfill`).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, TypeVar

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common.db import make_engine, make_sessionmaker
from advocacy_metrics.db import SHARE_FACTS
from advocacy_metrics.features import backfill as backfills
from advocacy_metrics.features.rebuild import fingerprint, rebuild_tenant

app = typer.Typer(help="Metrics: rebuild aggregates from the raw facts.", no_args_is_help=True, add_completion=False)
console = Console(stderr=True)


def database_url(explicit: str | None) -> str:
    """--database-url, else METRICS_DATABASE_URL, else the dev stack's metrics database."""
    if explicit:
        return explicit
    if os.environ.get("METRICS_DATABASE_URL"):
        return os.environ["METRICS_DATABASE_URL"]
    port = os.environ.get("ADVOCACY_PG_PORT") or "5433"
    return f"postgresql+asyncpg://postgres@127.0.0.1:{port}/advocacy_metrics"


def diff(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
    """The tables whose fingerprint changed: (rows before, rows after)."""
    return {name: (before[name][0], after[name][0]) for name in before if before[name] != after[name]}


T = TypeVar("T")

# The options every command takes: which tenants, and which database.
Tenants = Annotated[list[str] | None, typer.Option("--tenant", help="A tenant id; repeat for several.")]
AllTenants = Annotated[bool, typer.Option("--all", help="Every tenant with facts.")]
DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", help="The metrics database (default: $METRICS_DATABASE_URL, else the dev stack's)."),
]


def chosen(tenant: list[str] | None, all_tenants: bool) -> list[str]:
    """The ``--tenant`` ids once each, in order; one of ``--tenant`` and ``--all`` is required."""
    tenants = list(dict.fromkeys(tenant or []))
    if not tenants and not all_tenants:
        raise typer.BadParameter("give --tenant T (repeatable) or --all", param_hint="--tenant")
    return tenants


async def for_each_tenant(
    url: str,
    tenants: list[str],
    every: Callable[[AsyncSession], Awaitable[Iterable[str]]] | None,
    work: Callable[[AsyncSession, str], Awaitable[T]],
    *,
    commit: bool = True,
) -> dict[str, T]:
    """``work`` for each of ``tenants`` (and, with ``every``, each tenant it finds), one transaction
    per tenant, committed, or rolled back when not ``commit``: {tenant: what ``work`` returned}."""
    engine = make_engine(url, pool_size=1)
    results: dict[str, T] = {}
    try:
        sessionmaker = make_sessionmaker(engine)
        if every is not None:
            async with sessionmaker() as session:
                tenants = sorted(set(tenants) | set(await every(session)))
        for tenant in tenants:
            async with sessionmaker() as session:
                tx = await session.begin()
                results[tenant] = await work(session, tenant)
                await (tx.commit() if commit else tx.rollback())
    finally:
        await engine.dispose()
    return results


async def _with_share_facts(session: AsyncSession) -> list[str]:
    return list((await session.scalars(sa.select(SHARE_FACTS.c.tenant_id).distinct())).all())


async def run_rebuild(
    url: str, tenants: list[str], all_tenants: bool, dry_run: bool
) -> dict[str, dict[str, tuple[int, int]]]:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("facts"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:

        async def work(session: AsyncSession, tenant: str) -> dict[str, tuple[int, int]]:
            task = progress.add_task(f"rebuild {tenant}", total=None)

            def report(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            before = await fingerprint(session, tenant)
            await rebuild_tenant(session, tenant, progress=report)
            return diff(before, await fingerprint(session, tenant))

        every = _with_share_facts if all_tenants else None
        return await for_each_tenant(url, tenants, every, work, commit=not dry_run)


@app.command()
def rebuild(
    tenant: Tenants = None,
    all_tenants: AllTenants = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Compute and compare, then roll back.")] = False,
    url: DatabaseUrl = None,
) -> None:
    """Recompute every aggregate of the tenant(s) from the raw facts, in one transaction per tenant.

    Live consumption for the tenant waits meanwhile; readers see the old numbers until the commit.
    Prints which aggregate tables changed (nothing, when the definitions have not changed).
    """
    results = asyncio.run(run_rebuild(database_url(url), chosen(tenant, all_tenants), all_tenants, dry_run))
    for t, changed in results.items():
        if not changed:
            console.print(f"[green]{t}[/]: rebuilt aggregates are identical to the live ones")
        else:
            parts = ", ".join(f"{name} ({old} -> {new} rows)" for name, (old, new) in sorted(changed.items()))
            console.print(f"[yellow]{t}[/]: aggregates changed: {parts}")
    if dry_run:
        console.print("dry run: rolled back")


async def run_backfill(url: str, tenants: list[str], all_tenants: bool, aggregates: list[str]) -> dict[str, list[str]]:
    """Per tenant, one transaction: the aggregates filled."""

    async def work(session: AsyncSession, tenant: str) -> list[str]:
        return await backfills.backfill_tenant(session, tenant, aggregates)

    return await for_each_tenant(url, tenants, backfills.tenants if all_tenants else None, work)


@app.command()
def backfill(
    tenant: Tenants = None,
    all_tenants: AllTenants = False,
    aggregate: Annotated[
        list[str] | None,
        typer.Option(
            "--aggregate", help=f"Only this aggregate; repeat for several ({', '.join(backfills.BACKFILLS)})."
        ),
    ] = None,
    url: DatabaseUrl = None,
) -> None:
    """Fill the aggregates added after the tenant(s) had facts, and switch their reads to them.

    Run after upgrading, once no consumer of the previous version runs. One transaction per tenant;
    live consumption for the tenant waits meanwhile."""
    tenants = chosen(tenant, all_tenants)
    names = list(dict.fromkeys(aggregate or []))
    unknown = [n for n in names if n not in backfills.BACKFILLS]
    if unknown:
        raise typer.BadParameter(f"unknown: {', '.join(unknown)}", param_hint="--aggregate")
    for t, filled in asyncio.run(run_backfill(database_url(url), tenants, all_tenants, names)).items():
        console.print(f"[green]{t}[/]: filled {', '.join(filled)}")
