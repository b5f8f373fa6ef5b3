"""The verdict consumer: raw clicks in (keyed by link, so one consumer holds a link's history),
judged and enriched clicks out (``share.clicked.v1``), journaled in the ``clicks`` table.

The edge decided what it could alone (HEAD -> bot, over the rate -> rate_limited). Here: bots by
user agent (crawlerdetect + crawler patterns + preview fetchers, cached), the sharer's own clicks
and repeated visitors, against the link's history in the database plus the batch itself.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from advocacy_common.events import Envelope, new_event
from advocacy_common.events.sharing import ClickReceived, ShareClicked, Verdict
from advocacy_common.outbox import add_events
from advocacy_sharing import domain, verdicts
from advocacy_sharing.db import Click, Share

SOURCE = "/advocacy/sharing"


async def _counted_history(
    session: AsyncSession, codes: set[str], visitors: set[str], lo: datetime, hi: datetime
) -> dict[tuple[str, str], list[tuple[str, datetime]]]:
    """Counted clicks by (code, visitor) in [lo, hi]: the duplicate check's memory."""
    rows = (
        await session.execute(
            sa.select(col(Click.code), col(Click.visitor), col(Click.id), col(Click.received_at)).where(
                col(Click.code).in_(codes),
                col(Click.visitor).in_(visitors),
                col(Click.verdict) == Verdict.counted.value,
                col(Click.received_at) >= lo,
                col(Click.received_at) <= hi,
            )
        )
    ).all()
    out: dict[tuple[str, str], list[tuple[str, datetime]]] = defaultdict(list)
    for code, visitor, cid, at in rows:
        out[(code, visitor)].append((cid, at))
    return out


async def judge_clicks(session: AsyncSession, events: Sequence[Envelope[Any]]) -> None:
    raw = [e for e in events if isinstance(e.data, ClickReceived)]
    if not raw:
        return
    await asyncio.to_thread(verdicts.warm, {e.data.user_agent for e in raw})
    codes = {e.data.code for e in raw}
    shares = {s.code: s for s in (await session.scalars(select(Share).where(col(Share.code).in_(codes)))).all()}
    visitors: set[str] = set()
    for e in raw:
        visitors.add(e.data.visitor)
        if e.data.visitor_prev:
            visitors.add(e.data.visitor_prev)
    times = [e.data.received_at for e in raw]
    history = await _counted_history(
        session, codes, visitors, min(times) - domain.DUPLICATE_WINDOW, max(times) + domain.DUPLICATE_WINDOW
    )
    rows: list[dict[str, Any]] = []
    out: list[Envelope[ShareClicked]] = []
    for env in raw:
        click: ClickReceived = env.data
        share = shares.get(click.code)
        if share is None or share.tenant_id != env.tenant_id:
            continue  # a link that never existed here; nothing to credit
        keys = [(click.code, click.visitor)]
        if click.visitor_prev:
            keys.append((click.code, click.visitor_prev))
        before = [at for k in keys for cid, at in history.get(k, ()) if cid != click.click_id]
        verdict = domain.decide_verdict(
            domain.ClickFacts(
                is_bot=click.method == "HEAD" or verdicts.is_bot(click.user_agent),
                edge_verdict=click.edge_verdict,
                is_self=domain.is_self_click(
                    creator_visitor=share.creator_visitor,
                    share_created_at=share.created_at,
                    visitor=click.visitor,
                    visitor_prev=click.visitor_prev,
                    at=click.received_at,
                ),
                is_duplicate=domain.is_duplicate(before, click.received_at),
            )
        )
        if verdict is Verdict.counted:
            history.setdefault((click.code, click.visitor), []).append((click.click_id, click.received_at))
        device = verdicts.device_of(click.user_agent)
        ref = verdicts.referrer_domain(click.referrer)
        country = verdicts.country_code(click.country)
        rows.append(
            {
                "id": click.click_id,
                "tenant_id": env.tenant_id,
                "code": click.code,
                "share_id": share.id,
                "employee_id": share.employee_id,
                "content_id": share.content_id,
                "network": share.network,
                "received_at": click.received_at,
                "visitor": click.visitor,
                "verdict": verdict.value,
                "user_agent": click.user_agent,
                "referrer_domain": ref,
                "country": country,
                "device": device.device,
                "browser": device.browser,
                "os": device.os,
                "method": click.method,
            }
        )
        if share.employee_id is not None:
            out.append(
                new_event(
                    SOURCE,
                    env.tenant_id,
                    ShareClicked(
                        click_id=click.click_id,
                        share_id=share.id,
                        code=click.code,
                        content_id=share.content_id,
                        employee_id=share.employee_id,
                        team=share.team,
                        network=share.network,
                        clicked_at=click.received_at,
                        verdict=verdict,
                        device=device.device,
                        browser=device.browser,
                        os=device.os,
                        referrer_domain=ref,
                        country=country,
                    ),
                    at=click.received_at,
                    id=f"clicked-{click.click_id}",
                )
            )
    if rows:
        new_ids: set[str] = set()
        for start in range(0, len(rows), 1000):  # 17 columns: stay under 32767 parameters
            inserted = await session.execute(
                pg_insert(Click).values(rows[start : start + 1000]).on_conflict_do_nothing().returning(col(Click.id))
            )
            new_ids.update(r[0] for r in inserted.all())
        await add_events(session, [e for e in out if e.data.click_id in new_ids])
