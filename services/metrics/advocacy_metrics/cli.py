"""``advocacy metrics ...``: operator commands of the metrics service.

``advocacy metrics rebuild --tenant T`` recomputes every aggregate of T from the raw facts (how a
changed metric definition is rolled out) and says how the result differs from what was live.
``advocacy metrics backfill --all`` fills the aggregates added since a tenant had facts
(:mod:`advocacy_metrics.features.backfill`).
"""

from __future__ import annotations

import asyncio
import os
from typing import Annotated, Any

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

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


async def run_rebuild(
    url: str, tenants: list[str], all_tenants: bool, dry_run: bool
) -> dict[str, dict[str, tuple[int, int]]]:
    engine = make_engine(url, pool_size=1)
    results: dict[str, dict[str, tuple[int, int]]] = {}
    try:
        sessionmaker = make_sessionmaker(engine)
        if all_tenants:
            async with sessionmaker() as session:
                tenants = sorted(
                    set(tenants) | set((await session.scalars(sa.select(SHARE_FACTS.c.tenant_id).distinct())).all())
                )
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("facts"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=console) as progress:
            for tenant in tenants:
                task = progress.add_task(f"rebuild {tenant}", total=None)

                def report(done: int, total: int, task: Any = task) -> None:
                    progress.update(task, completed=done, total=total)

                async with sessionmaker() as session:
                    tx = await session.begin()
                    before = await fingerprint(session, tenant)
                    await rebuild_tenant(session, tenant, progress=report)
                    results[tenant] = diff(before, await fingerprint(session, tenant))
                    if dry_run:
                        await tx.rollback()
                    else:
                        await tx.commit()
    finally:
        await engine.dispose()
    return results


@app.command()
def rebuild(
    tenant: Annotated[list[str] | None, typer.Option("--tenant", help="A tenant id; repeat for several.")] = None,
    all_tenants: Annotated[bool, typer.Option("--all", help="Every tenant with facts.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Compute and compare, then roll back.")] = False,
    url: Annotated[
        str | None,
        typer.Option(
            "--database-url", help="The metrics database (default: $METRICS_DATABASE_URL, else the dev stack's)."
        ),
    ] = None,
) -> None:
    """Recompute every aggregate of the tenant(s) from the raw facts, in one transaction per tenant.

    Live consumption for the tenant waits meanwhile; readers see the old numbers until the commit.
    Prints which aggregate tables changed (nothing, when the definitions have not changed).
    """
    tenants = list(dict.fromkeys(tenant or []))
    if not tenants and not all_tenants:
        raise typer.BadParameter("give --tenant T (repeatable) or --all", param_hint="--tenant")
    results = asyncio.run(run_rebuild(database_url(url), tenants, all_tenants, dry_run))
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
    engine = make_engine(url, pool_size=1)
    done: dict[str, list[str]] = {}
    try:
        sessionmaker = make_sessionmaker(engine)
        if all_tenants:
            async with sessionmaker() as session:
                tenants = sorted(set(tenants) | set(await backfills.tenants(session)))
        for tenant in tenants:
            async with sessionmaker() as session, session.begin():
                done[tenant] = await backfills.backfill_tenant(session, tenant, aggregates)
    finally:
        await engine.dispose()
    return done


@app.command()
def backfill(
    tenant: Annotated[list[str] | None, typer.Option("--tenant", help="A tenant id; repeat for several.")] = None,
    all_tenants: Annotated[bool, typer.Option("--all", help="Every tenant with facts.")] = False,
    aggregate: Annotated[
        list[str] | None,
        typer.Option(
            "--aggregate", help=f"Only this aggregate; repeat for several ({', '.join(backfills.BACKFILLS)})."
        ),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--database-url", help="The metrics database (default: $METRICS_DATABASE_URL, else the dev stack's)."
        ),
    ] = None,
) -> None:
    """Fill the aggregates added after the tenant(s) had facts, and switch their reads to them.

    Run after upgrading, once no consumer of the previous version runs. One transaction per tenant;
    live consumption for the tenant waits meanwhile."""
    tenants = list(dict.fromkeys(tenant or []))
    if not tenants and not all_tenants:
        raise typer.BadParameter("give --tenant T (repeatable) or --all", param_hint="--tenant")
    names = list(dict.fromkeys(aggregate or []))
    unknown = [n for n in names if n not in backfills.BACKFILLS]
    if unknown:
        raise typer.BadParameter(f"unknown: {', '.join(unknown)}", param_hint="--aggregate")
    for t, filled in asyncio.run(run_backfill(database_url(url), tenants, all_tenants, names)).items():
        console.print(f"[green]{t}[/]: filled {', '.join(filled)}")
