"""Events in -> content's copies: who shared what (from sharing's ``share.created``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common import topics
from advocacy_common.consumer import ConsumerSpec
from advocacy_common.db import table_of
from advocacy_common.events import Envelope
from advocacy_common.events.sharing import ShareCreated
from advocacy_content.db import SharedContent

_SHARED = table_of(SharedContent)


async def record_shares(session: AsyncSession, events: Sequence[Envelope[Any]]) -> None:
    """Remember that the employee shared the item (the board ranks it lower for them). Other event
    types on the topic are ignored."""
    rows: dict[tuple[str, str, str], Any] = {}
    for env in events:
        data = env.data
        if not isinstance(data, ShareCreated):
            continue
        key = (env.tenant_id, data.employee_id, data.content_id)
        rows.setdefault(key, data.created_at)
    if not rows:
        return
    values = [
        {"tenant_id": t, "employee_id": e, "content_id": c, "first_shared_at": at} for (t, e, c), at in rows.items()
    ]
    for start in range(0, len(values), 5000):
        await session.execute(pg_insert(_SHARED).values(values[start : start + 5000]).on_conflict_do_nothing())


CONSUMERS = [ConsumerSpec(group_id="content-shares", topics=(topics.SHARES,), handler=record_shares)]
