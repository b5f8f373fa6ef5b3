"""The audit log: what admins did, by whom, when, and the state before and after (issue 13).

Each service keeps the entries for the actions it owns in its own ``audit_log`` table (added to its
metadata with :func:`add_audit_table`), written with :func:`record` in the transaction of the change
itself, so an entry exists exactly when the change does. Admins read them at
``GET /v1/audit/<service>`` (:func:`audit_router`: newest first, paged, filtered by action, actor,
target and time).

Entries are kept for the tenant's ``audit_retention_days`` (a tenant setting; services without a copy
of the settings use the default) and purged by :func:`purge`. When a person is erased,
:func:`forget_person` replaces their id wherever an entry names them: the entry stays (what was done
and when), the person does not.

Actions are ``<thing>.<verb>`` names, listed in :data:`ACTIONS` so a reader can filter on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

import orjson
import sqlalchemy as sa
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common.auth.deps import AdminPrincipal
from advocacy_common.db import SessionDep
from advocacy_common.instants import Instant
from advocacy_common.pagination import Page, PageDep, as_int, as_time, encode_cursor, parse_cursor
from advocacy_common.tenant import DEFAULT_SETTINGS

log = logging.getLogger("advocacy.audit")

#: Every action an entry may record (the service that records it in brackets).
ACTIONS: dict[str, str] = {
    "tenant_settings.updated": "the tenant's settings replaced (content)",
    "policy.updated": "the content policy replaced (content)",
    "suggestion.approved": "an admin approved a suggestion (content)",
    "suggestion.rejected": "an admin rejected a suggestion (content)",
    "member.erased": "a person erased (content; the entry does not name them)",
    "scim_secret.rotated": "the tenant's SCIM provisioning secret rotated (content)",
    "rules.updated": "the scoring rules replaced (gamification)",
    "points.reversed": "an award reversed (gamification)",
    "clicks.invalidated": "clicks invalidated (sharing)",
    "conversion_secret.created": "a conversion secret created or rotated (sharing)",
    "conversion_secret.revoked": "a conversion secret revoked (sharing)",
    "partner.created": "a partner created, with its first conversion secret (sharing)",
    "partner.revoked": "a partner revoked: its secrets and tokens stop (sharing)",
    "webhook_endpoint.created": "a partner webhook endpoint created, with its first secret (content)",
    "webhook_endpoint.updated": "a webhook endpoint's URL, types, scheme or state changed (content)",
    "webhook_endpoint.secret_rotated": "a webhook endpoint's secret rotated, with an overlap (content)",
    "webhook_deliveries.replayed": "webhook deliveries sent again: one, or an endpoint's time range (content)",
}

#: An erased person, wherever an entry named them.
ERASED = "erased"

#: A before/after document larger than this is stored as a note of its size instead: the log keeps
#: what changed, not a second copy of a large document.
MAX_STATE_BYTES = 64 * 1024

_meta = sa.MetaData()
AUDIT_LOG = sa.Table(
    "audit_log",
    _meta,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("target", sa.Text, nullable=True),
    sa.Column("before", JSONB, nullable=True),
    sa.Column("after", JSONB, nullable=True),
    sa.Index("ix_audit_log_tenant_at", "tenant_id", "at", "id"),
    sa.Index("ix_audit_log_at", "at"),
)


def add_audit_table(metadata: sa.MetaData) -> None:
    """Put ``audit_log`` into a service's metadata (so Alembic migrates it)."""
    AUDIT_LOG.to_metadata(metadata)


def _state(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    raw = orjson.dumps(value, default=str)
    if len(raw) > MAX_STATE_BYTES:
        return {"omitted": f"{len(raw)} bytes, over the audit log's {MAX_STATE_BYTES}"}
    return orjson.loads(raw)


async def record(
    session: AsyncSession,
    tenant_id: str,
    actor: str,
    action: str,
    *,
    target: str | None = None,
    before: Any = None,
    after: Any = None,
    at: datetime | None = None,
) -> None:
    """Add an entry in the caller's transaction (it commits or rolls back with the change)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}: add it to advocacy_common.audit.ACTIONS")
    values: dict[str, Any] = {
        "tenant_id": tenant_id,
        "actor": actor,
        "action": action,
        "target": target,
        "before": _state(before),
        "after": _state(after),
    }
    if at is not None:
        values["at"] = at
    await session.execute(sa.insert(AUDIT_LOG).values(**values))


async def forget_person(session: AsyncSession, tenant_id: str, employee_id: str) -> None:
    """Erasure: entries made by or about the person keep what happened, not who."""
    t = AUDIT_LOG.c
    await session.execute(
        sa.update(AUDIT_LOG).where(t.tenant_id == tenant_id, t.actor == employee_id).values(actor=ERASED)
    )
    await session.execute(
        sa.update(AUDIT_LOG).where(t.tenant_id == tenant_id, t.target == employee_id).values(target=ERASED)
    )


_PURGE = sa.text("DELETE FROM audit_log WHERE at < now() - make_interval(days => :default)")
_PURGE_BY_TENANT = sa.text(
    "DELETE FROM audit_log a WHERE a.at < now() - make_interval(days => coalesce("
    "(SELECT (s.settings->>'audit_retention_days')::int FROM tenant_settings s WHERE s.tenant_id = a.tenant_id),"
    " :default))"
)


async def purge(session: AsyncSession, *, has_settings_copy: bool) -> int:
    """Delete entries older than their tenant's ``audit_retention_days`` (the default where the
    service keeps no copy of the settings, or the tenant set none). Returns how many."""
    stmt = _PURGE_BY_TENANT if has_settings_copy else _PURGE
    result = await session.execute(stmt, {"default": DEFAULT_SETTINGS.audit_retention_days})
    return int(getattr(result, "rowcount", 0) or 0)


def purge_task(
    *, has_settings_copy: bool, every_seconds: float = 3600.0
) -> Callable[[Any, asyncio.Event], Awaitable[None]]:
    """A worker task (``ServiceDefinition.worker_tasks``) purging expired entries every hour."""

    async def audit_purge(runtime: Any, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with runtime.sessionmaker() as session, session.begin():
                    n = await purge(session, has_settings_copy=has_settings_copy)
                if n:
                    log.info("audit log: entries past their retention deleted", extra={"deleted": n})
            except Exception as e:  # the next round tries again
                log.warning("audit log purge failed", extra={"error": f"{type(e).__name__}: {e}"})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_seconds)

    return audit_purge


class AuditEntry(BaseModel):
    id: int
    at: datetime
    actor: str = Field(description=f'The admin\'s id, or "{ERASED}" once they were erased.')
    action: str = Field(description="What was done: one of the actions listed in the operation's description.")
    target: str | None = Field(None, description="What it was done to (a content id, an employee id...).")
    before: Any = None
    after: Any = None


async def read(
    session: AsyncSession,
    tenant_id: str,
    page: Any,
    *,
    action: str | None = None,
    actor: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page[AuditEntry]:
    """A page of the tenant's entries, newest first."""
    t = AUDIT_LOG.c
    stmt = sa.select(AUDIT_LOG).where(t.tenant_id == tenant_id)
    if action is not None:
        stmt = stmt.where(t.action == action)
    if actor is not None:
        stmt = stmt.where(t.actor == actor)
    if target is not None:
        stmt = stmt.where(t.target == target)
    if since is not None:
        stmt = stmt.where(t.at >= since)
    if until is not None:
        stmt = stmt.where(t.at < until)
    if page.cursor is not None:
        at, last_id = parse_cursor(page.cursor, as_time, as_int)
        stmt = stmt.where(sa.tuple_(t.at, t.id) < sa.tuple_(sa.literal(at), sa.literal(last_id)))
    rows = (await session.execute(stmt.order_by(t.at.desc(), t.id.desc()).limit(page.limit + 1))).all()
    items = [AuditEntry.model_validate(r._mapping) for r in rows[: page.limit]]
    cursor = None
    if len(rows) > page.limit:
        last = items[-1]
        cursor = encode_cursor([last.at.isoformat(), last.id])
    return Page[AuditEntry](items=items, next_cursor=cursor)


def audit_router(service: str) -> APIRouter:
    """``GET /audit/<service>``: the entries this service keeps (admins only)."""
    router = APIRouter(prefix="/v1", tags=["audit"])
    listed = "\n".join(f"- `{name}`: {what}" for name, what in ACTIONS.items())

    @router.get(
        f"/audit/{service}",
        response_model=Page[AuditEntry],
        operation_id=f"list{service.capitalize()}AuditEntries",
        description=f"The audit log of the admin actions {service} records, newest first. Actions:\n\n{listed}",
    )
    async def list_audit_entries(
        admin: AdminPrincipal,
        session: SessionDep,
        page: PageDep,
        action: Annotated[str | None, Query(max_length=64)] = None,
        actor: Annotated[str | None, Query(max_length=200)] = None,
        target: Annotated[str | None, Query(max_length=200)] = None,
        since: Instant | None = None,
        until: Instant | None = None,
    ) -> Page[AuditEntry]:
        return await read(
            session, admin.tenant_id, page, action=action, actor=actor, target=target, since=since, until=until
        )

    return router
