"""The console's own small database: its sessions, in one table (ADR 0014).

Sessions in a table survive a restart and are shared by every replica (no sticky sessions). The
console owns no other data: this module is the only one of the console that may reach a database
(import contract ``console-holds-no-data``). A copy of the table opens no session and calls no API:
rows are keyed by the SHA-256 of the session id (not the cookie's value), and the tokens in a row
are sealed (JWE ``dir`` + A256GCM, a key derived from ``CONSOLE_SECRET_KEY``; a row that does not
open, after a key change, is no session). Ended rows are deleted when read, and a login sweeps up to
:data:`SWEEP_LIMIT` rows idle or older than their limits (so the table holds about the live
sessions, at most ``CONSOLE_SESSIONS_PER_PERSON`` per person).

The schema is migrated with Alembic like every service's (``advocacy_console/migrations``); the
console applies it at start-up under the library's advisory lock (several replicas starting at
once: one migrates, the others wait).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from advocacy_console.sessions import Session, digest

# At most this many ended rows are deleted per login (a sweep never turns into a long statement).
SWEEP_LIMIT = 1000
# The fields of a session sealed in its row: what would let a reader call the APIs as the person.
SEALED = ("token", "refresh_token", "id_token")

metadata = sa.MetaData()

SESSIONS = sa.Table(
    "console_sessions",
    metadata,
    sa.Column("id_hash", sa.Text, primary_key=True),
    sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("data", JSONB, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_console_sessions_person", "tenant_id", "subject", "seq"),
    sa.Index("ix_console_sessions_last_seen", "last_seen"),
)


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def async_url(url: str) -> str:
    return "postgresql+asyncpg://" + url.split("://", 1)[1] if url.startswith("postgresql://") else url


async def migrate(url: str) -> None:
    """Bring the table to the code's head (Alembic, in a worker thread: it runs its own loop)."""
    from advocacy_common.migrations import upgrade

    await asyncio.to_thread(upgrade, "advocacy_console", async_url(url))


class TableBackend:
    """:class:`advocacy_console.sessions.Backend` over PostgreSQL."""

    def __init__(
        self, url: str, *, secret_key: bytes, idle_seconds: float, max_age_seconds: float, pool_size: int = 5
    ) -> None:
        self._key = OctKey.import_key(hashlib.sha256(b"advocacy-console-session-tokens\0" + secret_key).digest())
        self.engine: AsyncEngine = create_async_engine(
            async_url(url),
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_recycle=1800,
            connect_args={"server_settings": {"application_name": "advocacy-console"}, "timeout": 5},
        )
        self.idle = timedelta(seconds=idle_seconds)
        self.max_age = timedelta(seconds=max_age_seconds)

    def _seal(self, session: Session) -> dict[str, Any]:
        data = session.data()
        secret = json.dumps({name: data.pop(name) for name in SEALED}).encode()
        data["sealed"] = jwe.encrypt_compact({"alg": "dir", "enc": "A256GCM"}, secret, self._key)
        return data

    def _open(self, session_id: str, data: dict[str, Any]) -> Session | None:
        try:
            secret = json.loads(jwe.decrypt_compact(str(data.pop("sealed")), self._key).plaintext or b"")
            return Session.from_data(session_id, {**data, **{name: secret[name] for name in SEALED}})
        except (JoseError, ValueError, KeyError, TypeError):
            return None

    def _row(self, session: Session) -> dict[str, Any]:
        return {
            "tenant_id": session.person.tenant,
            "subject": session.person.sub,
            "data": self._seal(session),
            "created_at": _at(session.created_at),
            "last_seen": _at(session.last_seen),
        }

    async def insert(self, session: Session) -> None:
        now = _at(session.created_at)
        ended = (
            sa.select(SESSIONS.c.id_hash)
            .where(sa.or_(SESSIONS.c.last_seen < now - self.idle, SESSIONS.c.created_at < now - self.max_age))
            .limit(SWEEP_LIMIT)
        )
        async with self.engine.begin() as conn:
            await conn.execute(sa.delete(SESSIONS).where(SESSIONS.c.id_hash.in_(ended.scalar_subquery())))
            await conn.execute(sa.insert(SESSIONS).values(id_hash=digest(session.id), **self._row(session)))

    async def load(self, session_id: str) -> Session | None:
        async with self.engine.connect() as conn:
            data = await conn.scalar(sa.select(SESSIONS.c.data).where(SESSIONS.c.id_hash == digest(session_id)))
        return self._open(session_id, data) if isinstance(data, dict) else None

    async def update(self, session: Session) -> None:
        # a session deleted meanwhile (a logout in another tab, on another replica) stays deleted
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.update(SESSIONS).where(SESSIONS.c.id_hash == digest(session.id)).values(**self._row(session))
            )

    async def remove(self, session_id: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(sa.delete(SESSIONS).where(SESSIONS.c.id_hash == digest(session_id)))

    async def trim_person(self, tenant: str, sub: str, keep: int) -> None:
        newest = (
            sa.select(SESSIONS.c.id_hash)
            .where(SESSIONS.c.tenant_id == tenant, SESSIONS.c.subject == sub)
            .order_by(SESSIONS.c.seq.desc())
            .limit(keep)
        )
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.delete(SESSIONS).where(
                    SESSIONS.c.tenant_id == tenant,
                    SESSIONS.c.subject == sub,
                    SESSIONS.c.id_hash.not_in(newest.scalar_subquery()),
                )
            )

    async def count(self) -> int:
        async with self.engine.connect() as conn:
            return int(await conn.scalar(sa.select(sa.func.count()).select_from(SESSIONS)) or 0)

    async def close(self) -> None:
        await self.engine.dispose()
