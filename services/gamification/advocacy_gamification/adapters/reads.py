"""A session for the hot read endpoints (boards, "me"): no transaction around the read.

``SessionDep`` wraps every request in BEGIN ... COMMIT: two extra round trips to PostgreSQL for a
read that is one statement. Here the connection is in autocommit (asyncpg then sends no BEGIN),
so a board is one round trip. Reads of several statements are not one snapshot: fine for a board.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession


@contextlib.asynccontextmanager
async def read_session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        async with AsyncSession(bind=conn, expire_on_commit=False) as session:
            yield session


async def _read_dep(request: Request) -> AsyncIterator[AsyncSession]:
    async with read_session(request.app.state.runtime.engine) as session:
        yield session


ReadSessionDep = Annotated[AsyncSession, Depends(_read_dep, scope="function")]
