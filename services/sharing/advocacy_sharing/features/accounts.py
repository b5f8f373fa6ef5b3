"""Accounts: an employee's handle and audience size per network (reach is computed from them)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from advocacy_common.auth import Principal
from advocacy_common.events import new_event
from advocacy_common.events.sharing import AccountUpdated
from advocacy_common.networks import Network
from advocacy_common.outbox import add_event
from advocacy_sharing.db import Account
from advocacy_sharing.schemas import AccountIn
from advocacy_sharing.settings import SOURCE


async def put_account(
    session: AsyncSession, who: Principal, network: Network, body: AccountIn, *, now: datetime | None = None
) -> Account:
    now = now or datetime.now(UTC)
    account = Account(
        tenant_id=who.tenant_id,
        employee_id=who.sub,
        network=network.value,
        handle=body.handle,
        audience_size=body.audience_size,
        updated_at=now,
    )
    stmt = pg_insert(Account).values(**account.model_dump())
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant_id", "employee_id", "network"],
            set_={k: stmt.excluded[k] for k in ("handle", "audience_size", "updated_at")},
        )
    )
    event = AccountUpdated(employee_id=who.sub, network=network.value, audience_size=body.audience_size, updated_at=now)
    await add_event(session, new_event(SOURCE, who.tenant_id, event, at=now))
    return account


async def list_accounts(session: AsyncSession, who: Principal) -> list[Account]:
    q = (
        select(Account)
        .where(Account.tenant_id == who.tenant_id, Account.employee_id == who.sub)
        .order_by(col(Account.network))
    )
    return list((await session.scalars(q)).all())
