"""``advocacy content ...``: operator commands of the content service.

``advocacy content announce --tenant T`` (or ``--all``) re-announces T's waves, memberships and
announced items through the outbox (:mod:`advocacy_content.features.announce`): run once after
deploying share eligibility (issue 13), so sharing's copies learn what existed before.
"""

from __future__ import annotations

import asyncio
import os
from typing import Annotated

import sqlalchemy as sa
import typer
from rich.console import Console
from sqlmodel import col

from advocacy_common.db import make_engine, make_sessionmaker
from advocacy_content.db import ContentItem, Member, Wave
from advocacy_content.features.announce import Announced, announce_tenant

app = typer.Typer(help="Content: operator commands.", no_args_is_help=True, add_completion=False)
console = Console(stderr=True)


def database_url(explicit: str | None) -> str:
    """--database-url, else CONTENT_DATABASE_URL, else the dev stack's content database."""
    if explicit:
        return explicit
    if os.environ.get("CONTENT_DATABASE_URL"):
        return os.environ["CONTENT_DATABASE_URL"]
    port = os.environ.get("ADVOCACY_PG_PORT") or "5433"
    return f"postgresql+asyncpg://postgres@127.0.0.1:{port}/advocacy_content"


async def run_announce(url: str, tenants: list[str], all_tenants: bool) -> dict[str, Announced]:
    engine = make_engine(url, pool_size=1)
    out: dict[str, Announced] = {}
    try:
        sessionmaker = make_sessionmaker(engine)
        if all_tenants:
            async with sessionmaker() as session:
                found: set[str] = set()
                for column in (col(ContentItem.tenant_id), col(Member.tenant_id), col(Wave.tenant_id)):
                    found |= set((await session.scalars(sa.select(column).distinct())).all())
                tenants = sorted(set(tenants) | found)
        for tenant in tenants:
            async with sessionmaker() as session, session.begin():  # one transaction per tenant
                out[tenant] = await announce_tenant(session, tenant)
    finally:
        await engine.dispose()
    return out


@app.command()
def announce(
    tenant: Annotated[list[str] | None, typer.Option("--tenant", help="A tenant id; repeat for several.")] = None,
    all_tenants: Annotated[bool, typer.Option("--all", help="Every tenant with content, members or waves.")] = False,
    url: Annotated[
        str | None,
        typer.Option(
            "--database-url", help="The content database (default: $CONTENT_DATABASE_URL, else the dev stack's)."
        ),
    ] = None,
) -> None:
    """Re-announce the tenant(s)' waves, memberships and published or expired items (events through
    the outbox; the relay publishes them). Harmless to repeat."""
    tenants = list(dict.fromkeys(tenant or []))
    if not tenants and not all_tenants:
        raise typer.BadParameter("give --tenant T (repeatable) or --all", param_hint="--tenant")
    for t, n in asyncio.run(run_announce(database_url(url), tenants, all_tenants)).items():
        console.print(f"{t}: {n.waves} waves, {n.members} memberships, {n.items} items announced")
