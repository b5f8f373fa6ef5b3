"""The tenant policy: every change is a new version (who, when, what changed), published as
``io.advocacy.policy.updated.v1`` so sharing judges messages against the same rules."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from advocacy_common import policycheck
from advocacy_common.auth.principal import Principal
from advocacy_common.errors import Unprocessable
from advocacy_common.events.content import PolicyUpdated
from advocacy_common.networks import RULES, Network
from advocacy_common.pagination import PageParams, as_int, encode_cursor, parse_cursor
from advocacy_common.policy import Policy, normalize_domain
from advocacy_content import domain
from advocacy_content.adapters.events import emit, now
from advocacy_content.db import PolicyVersion
from advocacy_content.schemas import (
    PolicyCheckIn,
    PolicyCheckOut,
    PolicyIn,
    PolicyPublic,
    PolicyVersionPublic,
    ViolationOut,
)


def to_policy(row: PolicyVersion | None) -> Policy:
    if row is None:
        return Policy()
    return Policy(
        version=row.version,
        blocked_terms=tuple(row.blocked_terms),
        required_disclosures=MappingProxyType(dict(row.required_disclosures)),
        allowed_domains=tuple(row.allowed_domains),
        max_lengths=MappingProxyType({k: int(v) for k, v in row.max_lengths.items()}),
    )


async def latest_version(session: AsyncSession, tenant_id: str) -> PolicyVersion | None:
    stmt = (
        select(PolicyVersion)
        .where(PolicyVersion.tenant_id == tenant_id)
        .order_by(col(PolicyVersion.version).desc())
        .limit(1)
    )
    return (await session.scalars(stmt)).first()


async def current_policy(session: AsyncSession, tenant_id: str) -> tuple[Policy, PolicyVersion | None]:
    row = await latest_version(session, tenant_id)
    return to_policy(row), row


def _document(row: PolicyVersion | None) -> dict[str, Any]:
    if row is None:
        return {
            "guidelines": "",
            "blocked_terms": [],
            "required_disclosures": {},
            "allowed_domains": [],
            "max_lengths": {},
        }
    return {
        "guidelines": row.guidelines,
        "blocked_terms": list(row.blocked_terms),
        "required_disclosures": dict(row.required_disclosures),
        "allowed_domains": list(row.allowed_domains),
        "max_lengths": dict(row.max_lengths),
    }


def to_public(row: PolicyVersion | None, *, admin: bool) -> PolicyPublic:
    doc = _document(row)
    return PolicyPublic(
        version=row.version if row else 0,
        guidelines=doc["guidelines"],
        blocked_terms=doc["blocked_terms"] if admin else None,
        required_disclosures=doc["required_disclosures"],
        allowed_domains=doc["allowed_domains"],
        max_lengths=doc["max_lengths"],
        updated_by=row.updated_by if row else None,
        updated_at=row.updated_at if row else None,
    )


def version_public(row: PolicyVersion) -> PolicyVersionPublic:
    return PolicyVersionPublic(**to_public(row, admin=True).model_dump(), changes=row.changes)


def _validated(body: PolicyIn) -> dict[str, Any]:
    """The policy document to store, or a 422 naming the field at fault."""
    terms = dict.fromkeys(" ".join(term.split()) for term in body.blocked_terms)  # shapes: put_policy
    domains: dict[str, None] = {}
    for i, d in enumerate(body.allowed_domains):
        nd = normalize_domain(d)
        if not nd or "." not in nd or any(not label for label in nd.split(".")) or " " in nd or "/" in nd:
            raise Unprocessable.field(f"allowed_domains.{i}", f"not a domain name: {d!r}")
        domains[nd] = None
    lengths: dict[str, int] = {}
    for network, limit in body.max_lengths.items():
        own = RULES[Network(network)].max_length
        if limit > own:
            raise Unprocessable.field(f"max_lengths.{network}", f"{network} allows at most {own} characters")
        lengths[str(network)] = limit
    return {
        "guidelines": body.guidelines,
        "blocked_terms": list(terms),
        "required_disclosures": {str(k): v.strip() for k, v in body.required_disclosures.items()},
        "allowed_domains": list(domains),
        "max_lengths": lengths,
    }


async def put_policy(session: AsyncSession, who: Principal, body: PolicyIn) -> tuple[PolicyVersion, bool]:
    """Store a new version if anything changed; returns (the version in force, whether it is new)."""
    bad = await policycheck.misshapen_term(body.blocked_terms)
    if bad is not None:
        raise Unprocessable.field(f"blocked_terms.{bad[0]}", bad[1])
    doc = _validated(body)
    # one writer per tenant at a time, so versions are consecutive and never collide
    await session.execute(
        sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(f"policy:{who.tenant_id}", 0)))
    )
    old = await latest_version(session, who.tenant_id)
    changes = domain.policy_changes(_document(old), doc)
    if old is not None and not changes:
        return old, False
    at = now()
    row = PolicyVersion(
        tenant_id=who.tenant_id,
        version=(old.version if old else 0) + 1,
        changes=changes,
        updated_by=who.sub,
        updated_at=at,
        **doc,
    )
    session.add(row)
    await emit(
        session,
        who.tenant_id,
        PolicyUpdated(
            version=row.version,
            blocked_terms=row.blocked_terms,
            required_disclosures=row.required_disclosures,
            allowed_domains=row.allowed_domains,
            max_lengths=row.max_lengths,
            updated_by=who.sub,
            updated_at=at,
        ),
        at,
    )
    await session.flush()
    return row, True


async def list_versions(
    session: AsyncSession, who: Principal, page: PageParams
) -> tuple[list[PolicyVersion], str | None]:
    stmt = select(PolicyVersion).where(PolicyVersion.tenant_id == who.tenant_id)
    if page.cursor:
        (before,) = parse_cursor(page.cursor, as_int)
        stmt = stmt.where(col(PolicyVersion.version) < before)
    stmt = stmt.order_by(col(PolicyVersion.version).desc()).limit(page.limit + 1)
    rows = list((await session.scalars(stmt)).all())
    cursor = None
    if len(rows) > page.limit:
        rows = rows[: page.limit]
        cursor = encode_cursor([rows[-1].version])
    return rows, cursor


async def check(session: AsyncSession, who: Principal, body: PolicyCheckIn) -> PolicyCheckOut:
    policy, _ = await current_policy(session, who.tenant_id)
    network = Network(body.network)
    judged = await policycheck.judge(policy, network, body.text, link=body.link)
    found = judged.violations
    return PolicyCheckOut(
        ok=not found,
        policy_version=policy.version,
        length=judged.length,
        limit=policy.limit_for(network),
        violations=[ViolationOut(rule=v.rule, message=v.message, span=v.span) for v in found],
    )
