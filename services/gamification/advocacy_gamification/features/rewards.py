"""Rewards: a catalogue with a cost in points and a stock; redemptions spend both atomically.

A redemption is one transaction: claim the idempotency key (a row unique per employee and key; a
concurrent request with the same key waits on it), take one item of stock with a conditional
update (``stock > 0``; the row lock serialises concurrent redemptions of one reward, and each
re-checks the condition), then spend the points from the row-locked balance through the ledger.
Any shortfall raises, and the whole transaction rolls back: nothing changed.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common.errors import Conflict, NotFound, Unprocessable
from advocacy_common.events import new_event
from advocacy_common.events.gamification import RedemptionCancelled, RewardFulfilled, RewardRedeemed
from advocacy_common.money import Money
from advocacy_common.outbox import add_event
from advocacy_common.pagination import PageParams, as_str, as_time, encode_cursor, parse_cursor
from advocacy_gamification import domain
from advocacy_gamification.adapters.ledger import NewEntry, lock_balances, post
from advocacy_gamification.db import REDEMPTIONS, REWARDS
from advocacy_gamification.settings import SOURCE


def reward_out(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "name": r.name,
        "description": r.description,
        "cost_points": r.cost_points,
        "stock": r.stock,
        "value": r.value,
        "created_at": r.created_at,
    }


def redemption_out(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "reward_id": r.reward_id,
        "employee_id": r.employee_id,
        "cost_points": r.cost_points,
        "value": r.value,
        "status": r.status,
        "created_at": r.created_at,
        "fulfilled_at": r.fulfilled_at,
        "cancelled_at": r.cancelled_at,
        "cancel_reason": r.cancel_reason,
    }


def _money(raw: dict[str, Any] | None) -> Money | None:
    return Money.model_validate(raw) if raw else None


def _keyset(page: PageParams) -> tuple[datetime, str] | None:
    if not page.cursor:
        return None
    at, key = parse_cursor(page.cursor, as_time, as_str)
    return at, key


def _page(rows: list[Any], page: PageParams) -> tuple[list[Any], str | None]:
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    cursor = encode_cursor([rows[-1].created_at.isoformat(), rows[-1].id]) if more else None
    return rows, cursor


async def create(
    session: AsyncSession,
    tenant_id: str,
    by: str,
    name: str,
    description: str | None,
    cost_points: int,
    stock: int,
    value: Money | None,
) -> dict[str, Any]:
    row = (
        await session.execute(
            sa.insert(REWARDS)
            .values(
                id=str(uuid.uuid4()),
                tenant_id=tenant_id,
                name=name,
                description=description,
                cost_points=cost_points,
                stock=stock,
                value=value.model_dump(mode="json") if value else None,
                created_by=by,
                created_at=datetime.now(UTC),
            )
            .returning(REWARDS)
        )
    ).one()
    return reward_out(row)


async def get(session: AsyncSession, tenant_id: str, reward_id: str) -> dict[str, Any]:
    row = (
        await session.execute(sa.select(REWARDS).where(REWARDS.c.id == reward_id, REWARDS.c.tenant_id == tenant_id))
    ).first()
    if row is None:
        raise NotFound("no such reward")
    return reward_out(row)


async def catalogue(session: AsyncSession, tenant_id: str, page: PageParams) -> dict[str, Any]:
    stmt = sa.select(REWARDS).where(REWARDS.c.tenant_id == tenant_id).order_by(REWARDS.c.created_at, REWARDS.c.id)
    if (k := _keyset(page)) is not None:
        stmt = stmt.where(sa.tuple_(REWARDS.c.created_at, REWARDS.c.id) > k)
    rows, cursor = _page(list((await session.execute(stmt.limit(page.limit + 1))).all()), page)
    return {"items": [reward_out(r) for r in rows], "next_cursor": cursor}


async def redeem(session: AsyncSession, tenant_id: str, employee_id: str, reward_id: str, key: str) -> dict[str, Any]:
    """Spend ``cost_points`` and one item of stock, or raise (409) and change nothing. A replay of
    ``key`` by the same employee returns the original redemption."""
    reward = (
        await session.execute(sa.select(REWARDS).where(REWARDS.c.id == reward_id, REWARDS.c.tenant_id == tenant_id))
    ).first()
    if reward is None:
        raise NotFound("no such reward")
    now = datetime.now(UTC)
    redemption_id = str(uuid.uuid4())
    claimed = (
        await session.execute(
            pg_insert(REDEMPTIONS)
            .values(
                id=redemption_id,
                tenant_id=tenant_id,
                employee_id=employee_id,
                reward_id=reward_id,
                idempotency_key=key,
                cost_points=reward.cost_points,
                value=reward.value,
                status="pending",
                created_at=now,
            )
            .on_conflict_do_nothing(constraint="uq_redemption_key")
            .returning(REDEMPTIONS.c.id)
        )
    ).first()
    if claimed is None:
        original = (
            await session.execute(
                sa.select(REDEMPTIONS).where(
                    REDEMPTIONS.c.tenant_id == tenant_id,
                    REDEMPTIONS.c.employee_id == employee_id,
                    REDEMPTIONS.c.idempotency_key == key,
                )
            )
        ).one()
        if original.reward_id != reward_id:
            raise Unprocessable.field("Idempotency-Key", "this key was used for another reward")
        return {**redemption_out(original), "replayed": True}
    taken = (
        await session.execute(
            sa.update(REWARDS)
            .where(REWARDS.c.id == reward_id, REWARDS.c.tenant_id == tenant_id, REWARDS.c.stock > 0)
            .values(stock=REWARDS.c.stock - 1)
            .returning(REWARDS.c.stock)
        )
    ).first()
    if taken is None:
        raise Conflict("out of stock", code="out_of_stock")
    balance = (await lock_balances(session, [(tenant_id, employee_id)]))[(tenant_id, employee_id)]
    try:
        delta = domain.spend_balance_change(reward.cost_points, balance)
    except domain.InsufficientPoints as e:
        raise Conflict(f"not enough points: {e}", code="insufficient_points") from e
    await post(
        session,
        [
            NewEntry(
                tenant_id=tenant_id,
                employee_id=employee_id,
                event_id=f"redemption:{redemption_id}",
                rule_version=0,
                entry_type="redemption",
                action="redemption",
                ref=redemption_id,
                points=0,
                balance_delta=delta,
                occurred_at=now,
            )
        ],
    )
    await add_event(
        session,
        new_event(
            SOURCE,
            tenant_id,
            RewardRedeemed(
                employee_id=employee_id,
                redemption_id=redemption_id,
                reward_id=reward_id,
                cost_points=reward.cost_points,
                value=_money(reward.value),
                redeemed_at=now,
            ),
        ),
    )
    row = (await session.execute(sa.select(REDEMPTIONS).where(REDEMPTIONS.c.id == redemption_id))).one()
    return {**redemption_out(row), "replayed": False}


async def redemptions(
    session: AsyncSession,
    tenant_id: str,
    page: PageParams,
    *,
    employee_id: str | None = None,
    status: str | None = None,
) -> dict[str, Any]:
    stmt = sa.select(REDEMPTIONS).where(REDEMPTIONS.c.tenant_id == tenant_id)
    if employee_id is not None:
        stmt = stmt.where(REDEMPTIONS.c.employee_id == employee_id)
    if status is not None:
        stmt = stmt.where(REDEMPTIONS.c.status == status)
    if (k := _keyset(page)) is not None:
        stmt = stmt.where(sa.tuple_(REDEMPTIONS.c.created_at, REDEMPTIONS.c.id) > k)
    stmt = stmt.order_by(REDEMPTIONS.c.created_at, REDEMPTIONS.c.id).limit(page.limit + 1)
    rows, cursor = _page(list((await session.execute(stmt)).all()), page)
    return {"items": [redemption_out(r) for r in rows], "next_cursor": cursor}


async def _transition(session: AsyncSession, tenant_id: str, redemption_id: str, values: dict[str, Any]) -> Any:
    row = (
        await session.execute(
            sa.update(REDEMPTIONS)
            .where(
                REDEMPTIONS.c.id == redemption_id,
                REDEMPTIONS.c.tenant_id == tenant_id,
                REDEMPTIONS.c.status == "pending",
            )
            .values(**values)
            .returning(REDEMPTIONS)
        )
    ).first()
    if row is None:
        status = await session.scalar(
            sa.select(REDEMPTIONS.c.status).where(
                REDEMPTIONS.c.id == redemption_id, REDEMPTIONS.c.tenant_id == tenant_id
            )
        )
        if status is None:
            raise NotFound("no such redemption")
        raise Conflict(f"the redemption is already {status}", code=f"already_{status}")
    return row


async def fulfil(session: AsyncSession, tenant_id: str, redemption_id: str) -> dict[str, Any]:
    """Mark a pending redemption handed over; the employee is told (``reward.fulfilled``)."""
    now = datetime.now(UTC)
    row = await _transition(session, tenant_id, redemption_id, {"status": "fulfilled", "fulfilled_at": now})
    name = await session.scalar(
        sa.select(REWARDS.c.name).where(REWARDS.c.id == row.reward_id, REWARDS.c.tenant_id == tenant_id)
    )
    await add_event(
        session,
        new_event(
            SOURCE,
            tenant_id,
            RewardFulfilled(
                employee_id=row.employee_id,
                redemption_id=redemption_id,
                reward_id=row.reward_id,
                reward_name=name or "",
                fulfilled_at=now,
            ),
            at=now,
        ),
    )
    return redemption_out(row)


async def cancel(session: AsyncSession, tenant_id: str, redemption_id: str, reason: str | None) -> dict[str, Any]:
    """Cancel a pending redemption: the item goes back in stock and the points come back through
    the ledger (a refund entry, once: the redemption can be cancelled only while pending)."""
    now = datetime.now(UTC)
    row = await _transition(
        session, tenant_id, redemption_id, {"status": "cancelled", "cancelled_at": now, "cancel_reason": reason}
    )
    await session.execute(
        sa.update(REWARDS)
        .where(REWARDS.c.id == row.reward_id, REWARDS.c.tenant_id == tenant_id)
        .values(stock=REWARDS.c.stock + 1)
    )
    await post(
        session,
        [
            NewEntry(
                tenant_id=tenant_id,
                employee_id=row.employee_id,
                event_id=f"refund:{redemption_id}",
                rule_version=0,
                entry_type="refund",
                action="refund",
                ref=redemption_id,
                points=0,
                balance_delta=row.cost_points,
                occurred_at=now,
                reason=reason,
            )
        ],
    )
    await add_event(
        session,
        new_event(
            SOURCE,
            tenant_id,
            RedemptionCancelled(
                employee_id=row.employee_id,
                redemption_id=redemption_id,
                reward_id=row.reward_id,
                refunded_points=row.cost_points,
                value=_money(row.value),
                cancelled_at=now,
            ),
        ),
    )
    return redemption_out(row)
