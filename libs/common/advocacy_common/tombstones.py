"""Keyed tombstones for erased people: one implementation for every service that must remember, after
an erasure, that events or requests about someone are to be refused (issue 13).

A tombstone is ``k1:`` + HMAC-SHA256(tenant key, employee id), the tenant key being
HMAC-SHA256(service key, "tenant\\0" + tenant id): without the service key, a dictionary of likely
ids finds nobody (an unsalted SHA-256 of tenant and id did). The service key is a configured secret
when the service has one, else a random value a migration stored once in the service's
``service_secrets`` table (every replica reads the same). It must never change: tombstones made under
another key are not found, and events about those people would count again.

Gamification wrote unkeyed SHA-256 tombstones before its revision 0007; :meth:`Tombstones.forms`
gives both forms so lookups find either. Sharing and content start keyed.

Each service holds one :class:`Tombstones` over its own two tables (the service key is cached per
instance, so two services in one test process never share one).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

KEY_NAME = "pseudonym_key"
KEYED = "k1:"
_KEY_PREFIX = b"advocacy-pseudonym\x00"

Key = tuple[str, str]  # (tenant id, employee id)

_meta = sa.MetaData()
ERASURES = sa.Table(
    "erasures",
    _meta,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("employee_hash", sa.Text, primary_key=True),
    sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
)
"""People erased, by keyed tombstone only (the table of sharing and content; gamification's has the
same shape)."""

SERVICE_SECRETS = sa.Table(
    "service_secrets",
    _meta,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
"""Secrets every replica must share and nobody configured (here: the pseudonym key)."""


def add_tombstone_tables(metadata: sa.MetaData) -> None:
    """Put the erasures and service-secrets tables into a service's metadata (so Alembic migrates them)."""
    ERASURES.to_metadata(metadata)
    SERVICE_SECRETS.to_metadata(metadata)


#: The advisory-lock space of erasure locks (``pg_advisory_xact_lock(int, int)``: the two-int key
#: space never meets the one-bigint locks of the outbox and the migrations).
PERSON_LOCK_SPACE = 0x45525345  # "ERSE"


async def hold_person(session: AsyncSession, tenant_id: str, employee_id: str) -> None:
    """Take the person's erasure lock until the transaction ends (two people may share a lock
    slot by hash: they then wait for each other briefly, nothing more)."""
    digest = hashlib.sha256(b"%s\x00%s" % (tenant_id.encode(), employee_id.encode())).digest()
    slot = int.from_bytes(digest[:4], "big", signed=True)
    await session.execute(sa.select(sa.func.pg_advisory_xact_lock(PERSON_LOCK_SPACE, slot)))


def derive_key(secret: str) -> bytes:
    """The service key from a configured secret or a stored value."""
    return hashlib.sha256(_KEY_PREFIX + secret.encode()).digest()


# Tenants whose keyed HMAC is kept ready (a consumer's batch hashes thousands of people of a few
# tenants). An entry is a pure function of the service key and the tenant id, both part of its
# cache key: it never goes stale (another service key, e.g. a configured one, is another entry;
# an erasure changes no key), so the bound only limits memory (~1 KB an entry).
_TENANT_MACS = 1024


@functools.lru_cache(maxsize=_TENANT_MACS)
def _tenant_mac(key: bytes, tenant_id: str) -> hmac.HMAC:
    """HMAC-SHA256 under the tenant's key, nothing hashed yet: copied for each person, it saves
    deriving the tenant key and the HMAC's padded-key blocks again (3.3 -> 1.6 us a tombstone)."""
    tenant_key = hmac.new(key, b"tenant\x00" + tenant_id.encode(), hashlib.sha256).digest()
    return hmac.new(tenant_key, digestmod=hashlib.sha256)


def tombstone(key: bytes, tenant_id: str, employee_id: str) -> str:
    mac = _tenant_mac(key, tenant_id).copy()  # the cached one is never updated itself
    mac.update(employee_id.encode())
    return KEYED + mac.hexdigest()


def legacy(tenant_id: str, employee_id: str) -> str:
    """The unkeyed form of gamification's tombstones written before its revision 0007."""
    return hashlib.sha256(f"{tenant_id}\x00{employee_id}".encode()).hexdigest()


def forms(key: bytes, tenant_id: str, employee_id: str) -> tuple[str, str]:
    """Every form a tombstone of this person may have: keyed, then legacy."""
    return tombstone(key, tenant_id, employee_id), legacy(tenant_id, employee_id)


class Tombstones:
    """A service's tombstones: its erasures table, and the table its stored key is in."""

    def __init__(
        self, erasures: sa.Table = ERASURES, secrets: sa.Table = SERVICE_SECRETS, *, legacy: bool = False
    ) -> None:
        self.erasures = erasures
        self.secrets = secrets
        self.legacy = legacy  # look for the unkeyed form too (gamification before its revision 0007)
        self._configured: bytes | None = None
        self._stored: bytes | None = None

    def configure(self, secret: str | None) -> None:
        """Use a configured secret (from settings) instead of the stored key; None: the stored key."""
        self._configured = derive_key(secret) if secret else None

    async def key(self, session: AsyncSession) -> bytes:
        if self._configured is not None:
            return self._configured
        if self._stored is None:
            value = await session.scalar(sa.select(self.secrets.c.value).where(self.secrets.c.name == KEY_NAME))
            if value is None:
                raise RuntimeError("no pseudonym key in service_secrets: run the service's migrations")
            self._stored = derive_key(str(value))
        return self._stored

    def _forms(self, key: bytes, tenant_id: str, employee_id: str) -> tuple[str, ...]:
        if self.legacy:
            return forms(key, tenant_id, employee_id)
        return (tombstone(key, tenant_id, employee_id),)

    async def erased(self, session: AsyncSession, keys: Iterable[Key]) -> set[Key]:
        """The keys among ``keys`` that belong to erased people (one query, whatever their number)."""
        people = {(t, e) for t, e in keys if e}
        if not people:
            return set()
        key = await self.key(session)
        by_hash = {(t, h): (t, e) for t, e in people for h in self._forms(key, t, e)}
        by_tenant: dict[str, list[str]] = defaultdict(list)
        for t, h in sorted(by_hash):
            by_tenant[t].append(h)
        e = self.erasures
        # one array per tenant: two bind parameters per tenant, whatever the number of people
        rows = await session.execute(
            sa.select(e.c.tenant_id, e.c.employee_hash).where(
                sa.or_(
                    *(
                        sa.and_(e.c.tenant_id == t, e.c.employee_hash == sa.any_(sa.literal(hs, ARRAY(sa.Text))))
                        for t, hs in by_tenant.items()
                    )
                )
            )
        )
        return {by_hash[(r.tenant_id, r.employee_hash)] for r in rows.all()}

    async def is_erased(self, session: AsyncSession, tenant_id: str, employee_id: str) -> bool:
        return bool(await self.erased(session, [(tenant_id, employee_id)]))

    async def hold(self, session: AsyncSession, tenant_id: str, employee_id: str) -> bool:
        """Whether this person is erased, their erasure lock held until the transaction ends.

        For a write on the person's behalf (a share): checked with :meth:`is_erased` alone, a write
        whose check ran just before an erasure committed, and whose row committed just after the
        erasure unlinked the person's rows, kept their name. Holding the lock, the write either
        commits before the erasure starts (which then unlinks its row too) or waits for the erasure
        and sees its tombstone (READ COMMITTED: the check is a statement after the wait)."""
        await hold_person(session, tenant_id, employee_id)
        return await self.is_erased(session, tenant_id, employee_id)

    async def add(self, session: AsyncSession, tenant_id: str, employee_id: str, at: datetime) -> bool:
        """Record the erasure; False when this person was already erased (in either form). Takes
        the person's erasure lock first: writes that :meth:`hold` it wait for this transaction."""
        await hold_person(session, tenant_id, employee_id)
        if await self.is_erased(session, tenant_id, employee_id):
            return False
        key = await self.key(session)
        stmt = pg_insert(self.erasures).values(
            tenant_id=tenant_id, employee_hash=tombstone(key, tenant_id, employee_id), erased_at=at
        )
        res = await session.execute(stmt.on_conflict_do_nothing().returning(self.erasures.c.tenant_id))
        return res.first() is not None
