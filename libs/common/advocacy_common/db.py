"""Database plumbing: engine, sessions, one transaction per request, and the messaging tables.

Each service's tables derive from a SQLModel base with its own registry (so two services may
both have a ``content`` table in one test process); the outbox and inbox tables are added to that
metadata with :func:`add_messaging_tables`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Annotated, Any, TypeVar, cast

import sqlalchemy as sa
from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import SessionTransaction

_messaging = sa.MetaData()

T = TypeVar("T")

OUTBOX = sa.Table(
    "outbox",
    _messaging,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("event_id", sa.Text, nullable=False, unique=True),
    sa.Column("topic", sa.Text, nullable=False),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("headers", JSONB, nullable=False),
    sa.Column("value", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
    # A row the broker will never take (too large, invalid): set aside with the reason, and its key
    # held (later rows of that topic and key wait) until an operator retries or discards it.
    sa.Column("parked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("park_reason", sa.Text, nullable=True),
    sa.Index("ix_outbox_unpublished", "id", postgresql_where=sa.text("published_at IS NULL")),
    sa.Index("ix_outbox_created_at", "created_at"),
    sa.Index("ix_outbox_parked", "topic", "key", postgresql_where=sa.text("parked_at IS NOT NULL")),
)
"""Events waiting to be published, written in the transaction of the change that caused them."""

INBOX = sa.Table(
    "inbox",
    _messaging,
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("event_id", sa.Text, primary_key=True),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("dead_lettered", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("ix_inbox_processed_at", "processed_at"),
)
"""Event ids each consumer group has applied: a redelivered event changes nothing. ``source`` holds
"<consumer group> <ce_source>", so two groups of one service each apply an event once."""


def add_messaging_tables(metadata: sa.MetaData) -> None:
    """Put the outbox and inbox into a service's metadata (so Alembic migrates them)."""
    OUTBOX.to_metadata(metadata)
    INBOX.to_metadata(metadata)


def make_engine(url: str, *, pool_size: int = 10, application_name: str = "advocacy") -> AsyncEngine:
    if url.startswith("postgresql://"):
        url = "postgresql+asyncpg://" + url[len("postgresql://") :]
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        pool_recycle=1800,
        connect_args={"server_settings": {"application_name": application_name}, "timeout": 5},
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One request, one transaction, committed before the response is sent (scope="function")."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.runtime.sessionmaker
    async with sessionmaker() as session, session.begin():
        yield session
    kick = getattr(request.app.state.runtime, "kick_outbox", None)
    if kick is not None:
        kick()


SessionDep = Annotated[AsyncSession, Depends(_request_session, scope="function")]


def after_commit(session: AsyncSession, fn: Callable[[], object]) -> None:
    """Call ``fn()`` once the session's transaction has committed, never when it rolls back: for what
    must follow only committed rows (a cache warmed with a row another request may now read). It
    runs inside the commit, on the event loop's thread: keep it short and let it schedule any I/O.

    For a request's session (it lives for one transaction or a few): each call leaves a listener on
    the session that is a no-op once it has ended, so a long-lived session calling it in a loop
    would grow its listener list."""
    ended = False  # by the first commit or rollback after this call (listeners cannot be removed
    # while SQLAlchemy runs them: each runs once and the later one finds this set)

    def committed(_session: object) -> None:
        nonlocal ended
        if not ended:
            ended = True
            fn()

    def rolled_back(_session: object, previous: SessionTransaction) -> None:
        nonlocal ended
        if previous.parent is None:  # the transaction's rollback, not a savepoint's
            ended = True

    event.listen(session.sync_session, "after_commit", committed, once=True)
    event.listen(session.sync_session, "after_soft_rollback", rolled_back)


_ONE_SNAPSHOT = sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")


async def one_snapshot(session: AsyncSession) -> None:
    """Make the rest of the session's transaction read from one snapshot, and write nothing. Call it
    first: PostgreSQL refuses it after the transaction's first query.

    Under the default (READ COMMITTED) each statement sees what was committed when it started, so an
    answer put together from several reads can show a commit in one part and not in another: a
    total read just before a consumer's batch commits and the entries read just after it (``GET
    /v1/points/me`` once answered 0 points beside a 10-point entry). REPEATABLE READ takes the
    snapshot at the first statement and keeps it; a read-only transaction never waits or conflicts."""
    await session.execute(_ONE_SNAPSHOT)


async def ping(engine: AsyncEngine, timeout: float = 2.0) -> bool:
    import asyncio

    async def _q() -> Any:
        async with engine.connect() as conn:
            return await conn.scalar(sa.text("SELECT 1"))

    try:
        return bool(await asyncio.wait_for(_q(), timeout))
    except Exception:
        return False


def table_of(model: type[Any]) -> sa.Table:
    """The table of a SQLModel table class (what ``Model.__table__`` is, typed)."""
    table = sa.inspect(model).local_table
    if not isinstance(table, sa.Table):
        raise TypeError(f"{model.__name__} is not mapped to a table")
    return table


async def overlapped(statement: Awaitable[Any], work: Callable[[], T]) -> T:
    """``work()`` while the database executes ``statement``: the statement is sent first, then
    ``work`` runs, then the statement's answer is awaited. ``work`` must be Python alone (it must not
    use the session: the connection is busy). A consumer's process and the database take turns on a
    batch; this is one turn taken at once (issue 19: gamification builds a batch's ``points.awarded``
    events while the totals move; metrics computes a batch's aggregate deltas while its clicks land,
    and each roll-up's rows while the previous roll-up moves).

    A statement not yet prepared on the connection does its prepare round trip first (that call gets
    no overlap). A failing ``work`` waits for the statement before it raises (the transaction then
    rolls back on an idle connection)."""
    running = asyncio.ensure_future(statement)
    await asyncio.sleep(0)  # the statement goes out (a prepared statement: bind and execute, no wait)
    try:
        out = work()
    except BaseException:
        await asyncio.wait([running])
        if not running.cancelled():
            running.exception()  # retrieved: the error of ``work`` is the one raised
        raise
    await running
    return out


#: PostgreSQL's unique_violation: the one error :func:`insert_new` answers by skipping what is there.
UNIQUE_VIOLATION = "23505"


async def insert_new(
    session: AsyncSession,
    plain: sa.Executable,
    skipping: sa.Executable,
    params: Mapping[str, Any],
    meanwhile: Callable[[], T],
) -> tuple[Sequence[Sequence[Any]], T]:
    """Insert rows that are nearly always new (a consumer's batch of facts or entries), by ``plain``, an
    ``INSERT`` without ``ON CONFLICT``, under a savepoint; ``meanwhile()`` runs while the database
    executes it (:func:`overlapped`). Returns the rows the statement that ran returned (none if it has
    no ``RETURNING``), and what ``meanwhile()`` returned.

    ``ON CONFLICT`` makes every row a speculative insertion (each unique index probed, the row
    inserted, then the insertion confirmed): issue 19's harness, batches of 5,000 clicks: gamification's
    ledger 57-73 -> 42-49 ms, metrics' click facts 58-145 -> 35-67 ms. If a row is there already (a
    redelivered batch; a concurrent transaction's row is waited for, as by ``ON CONFLICT``), the
    unique violation rolls the savepoint back and ``skipping`` runs: the same rows, by the statement
    that skips what the table holds (``ON CONFLICT DO NOTHING``), so what is skipped is exactly what
    it always was. Any other error (a check, a foreign key) is raised as it is.

    ``meanwhile`` must be Python alone, as :func:`overlapped`'s ``work``; it runs once, under
    ``plain``, whichever statement's rows come back."""
    ran: list[sa.CursorResult[Any]] = []  # a Core statement's result: returns_rows says if it has any
    done: list[T] = []

    async def insert() -> None:
        ran.append(cast(sa.CursorResult[Any], await session.execute(plain, params)))

    try:
        async with session.begin_nested():
            # the SAVEPOINT goes out here, not with ``plain`` (the ORM emits it on the first use of the
            # connection): else ``plain`` would be sent only once ``meanwhile()`` had run
            await session.connection()
            await overlapped(insert(), lambda: done.append(meanwhile()))
    except sa.exc.IntegrityError as e:
        if getattr(e.orig, "sqlstate", None) != UNIQUE_VIOLATION:
            raise
        ran.append(cast(sa.CursorResult[Any], await session.execute(skipping, params)))
    result = ran[-1]
    return (result.all() if result.returns_rows else []), done[0]
