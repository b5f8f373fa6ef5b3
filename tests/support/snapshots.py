"""A session that lets a consumer batch commit in the middle of a read use case, between two of its
statements: the race behind the flaky "my points" answer (0 points beside a 10-point entry, commit
844c92c). A use case that reads from one snapshot (``advocacy_common.db.one_snapshot``) answers as
if the batch had come after it; one that reads each statement on its own shows the batch in some of
its figures and not in others."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession


class CommitBetweenReads:
    """Wraps ``session``: right after the first statement whose SQL mentions ``after`` (a table
    name, compared lowercase), runs ``commit`` (another transaction, e.g. a consumer's batch), then
    goes on with the caller's next statement."""

    def __init__(self, session: AsyncSession, after: str, commit: Callable[[], Awaitable[None]]) -> None:
        self.session = session
        self.after = after.lower()
        self.commit = commit
        self.committed = False

    async def _then(self, stmt: Any) -> None:
        if not self.committed and self.after in str(stmt).lower():
            self.committed = True
            await self.commit()

    async def execute(self, stmt: Any, *args: Any, **kw: Any) -> Any:
        out = await self.session.execute(stmt, *args, **kw)
        await self._then(stmt)
        return out

    async def scalar(self, stmt: Any, *args: Any, **kw: Any) -> Any:
        out = await self.session.scalar(stmt, *args, **kw)
        await self._then(stmt)
        return out

    async def scalars(self, stmt: Any, *args: Any, **kw: Any) -> Any:
        out = await self.session.scalars(stmt, *args, **kw)
        await self._then(stmt)
        return out

    async def stream(self, stmt: Any, *args: Any, **kw: Any) -> Any:
        out = await self.session.stream(stmt, *args, **kw)
        await self._then(stmt)
        return out

    async def get(self, *args: Any, **kw: Any) -> Any:
        return await self.session.get(*args, **kw)

    def begin(self) -> Any:
        return self.session.begin()
