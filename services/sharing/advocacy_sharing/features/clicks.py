"""Clicks: the verdict consumer, raw clicks in (keyed by link, so one consumer holds a link's history),
judged and enriched clicks out (``share.clicked.v1``), journaled in the ``clicks`` table.

The edge decided what it could alone (HEAD -> bot, over the rate -> rate_limited). Here: bots by
user agent (no evidence of a browser, three bot databases, preview fetchers: adapters/verdicts.py,
cached per user agent), visitors' networks inside known datacenter ranges (``datacenter_range``:
adapters/ranges.py), requests without Accept-Language (``no_accept_language``: domain.py), a mail
scanner's burst on a new link (``scanner_timing``), the sharer's own clicks and repeated visitors,
against the link's history in the database plus the batch itself. Every bot verdict stores its
reason (``clicks.reason`` and the event's ``reason``).

Invalidation (``POST /v1/clicks/invalidate``): an admin judges clicks fraudulent after the fact.

Matching clicks are marked (``invalidated_at``) in one UPDATE that only touches clicks not yet
invalidated, so the same click invalidated twice is taken back once; for each marked click that had
been counted, ``share.click_invalidated.v1`` goes out (its id derives from the click, so a
re-publish is deduplicated too). Points and metrics are taken back by their consumers.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from advocacy_common.bulk import unnest_insert
from advocacy_common.db import table_of
from advocacy_common.errors import NotFound
from advocacy_common.events import Envelope, new_event
from advocacy_common.events.sharing import ClickInvalidated, ClickReceived, ShareClicked, Verdict, click_event_id
from advocacy_common.outbox import add_events
from advocacy_common.tenant import TenantSettings
from advocacy_common.tenant_store import TENANT_SETTINGS
from advocacy_sharing import domain
from advocacy_sharing.adapters import ranges, verdicts
from advocacy_sharing.db import Click, Share
from advocacy_sharing.schemas import InvalidateIn, LinkVerdicts, VerdictCount
from advocacy_sharing.settings import SOURCE

# Fixed-text statements with array parameters: one prepared statement each whatever the batch size.
# (The first version built a multi-row VALUES insert of up to 1,000 rows x 17 columns and IN lists
# per batch: SQLAlchemy compiled each anew, and compiling was a quarter of the process's CPU at
# 1,000 clicks/s -- more than the redirects it serves.)
_SHARES = sa.text(
    "SELECT id, tenant_id, code, employee_id, team, content_id, network, created_at, creator_visitor "
    "FROM shares WHERE code = ANY(CAST(:codes AS text[]))"
)
# The duplicate check's memory: the counted clicks of exactly the (code, visitor) pairs the batch
# reads, one index probe each on ix_clicks_code_visitor (code, visitor, received_at): the cost
# follows the batch, not the table. The first version asked for ``code = ANY(codes) AND visitor =
# ANY(visitors)``, the cross product (at 1,000 clicks/s on 20 links, 20 x 2,000 keys for ~2,000
# pairs with yesterday's hashes), which walks each link's range of the index for the window: a hot
# link's whole day. ``OFFSET 0`` keeps the subquery a per-pair probe: a plain join is free to hash
# the whole window of the table instead, and did (bench/latency.py explains both).
_HISTORY = sa.text(
    "SELECT k.code, k.visitor, c.id, c.received_at "
    "FROM unnest(CAST(:codes AS text[]), CAST(:visitors AS text[])) AS k(code, visitor) "
    "CROSS JOIN LATERAL (SELECT id, received_at FROM clicks WHERE code = k.code AND visitor = k.visitor "
    "AND verdict = :counted AND received_at >= :lo AND received_at <= :hi OFFSET 0) AS c"
)
# The verdict loop gives the event loop a turn every this many clicks. It costs ~0.3 ms of CPU per
# click and awaits only at its statements: in role ``all`` (one process answering the redirects
# too) a batch of 1,000 held the loop for 0.3-0.6 s, and with it the click sender's wake-up (the
# ``send`` stage, budget 100 ms). 200 clicks is 60-120 ms; in role ``worker`` a turn is ~free.
_YIELD_EVERY = 200
_COLUMNS = (
    "id",
    "tenant_id",
    "code",
    "share_id",
    "employee_id",
    "content_id",
    "network",
    "received_at",
    "visitor",
    "verdict",
    "user_agent",
    "referrer_domain",
    "country",
    "device",
    "browser",
    "os",
    "method",
    "reason",
    "ip_network",
    "accept_language",
)
_INSERT = unnest_insert(table_of(Click), _COLUMNS, "ON CONFLICT DO NOTHING RETURNING id")
# Clicks already judged on fresh links from the networks of this batch's fresh clicks: the scanner
# rule's memory (read only when a batch has a click within seconds of its share's creation).
_NEIGHBOURS = sa.text(
    "SELECT id, code, ip_network, received_at, verdict, invalidated_at, visitor FROM clicks "
    "WHERE code = ANY(CAST(:codes AS text[])) AND ip_network = ANY(CAST(:networks AS text[])) "
    "AND received_at >= :lo AND received_at <= :hi"
)
_TAKE_BACK = sa.text(
    "UPDATE clicks SET invalidated_at = :at, invalidation_reason = :reason "
    "WHERE id = ANY(CAST(:ids AS text[])) AND invalidated_at IS NULL AND verdict = :counted "
    "RETURNING id, tenant_id, share_id, employee_id, content_id, network, received_at"
)


# The outbox rows of a batch, exactly as ``add_events`` writes them (``outbox_row``), in one
# statement: its executemany bound JSON per row through SQLAlchemy and was ~40 % of a batch's CPU.
# Same table, same transaction, same row content, ids assigned in list order (the relay's order).
async def _counted_history(
    session: AsyncSession, pairs: set[tuple[str, str]], lo: datetime, hi: datetime
) -> dict[tuple[str, str], list[tuple[str, datetime]]]:
    """Counted clicks of these (code, visitor) pairs in [lo, hi]: the duplicate check's memory."""
    codes = [code for code, _ in pairs]
    visitors = [visitor for _, visitor in pairs]
    rows = (
        await session.execute(
            _HISTORY, {"codes": codes, "visitors": visitors, "counted": Verdict.counted.value, "lo": lo, "hi": hi}
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
    new_agents = verdicts.cold({e.data.user_agent for e in raw})
    if new_agents:
        await asyncio.to_thread(verdicts.warm, new_agents)
        verdicts.mark_warm(new_agents)
    if not ranges.loaded():
        await asyncio.to_thread(ranges.datacenter)  # read once (~0.4 s), off the loop that answers /r/
    codes = {e.data.code for e in raw}
    shares = {s.code: s for s in (await session.execute(_SHARES, {"codes": list(codes)})).all()}
    times = [e.data.received_at for e in raw]
    history = await _counted_history(
        session,
        {k for e in raw for k in _history_keys(e.data)},
        min(times) - domain.DUPLICATE_WINDOW,
        max(times) + domain.DUPLICATE_WINDOW,
    )
    neighbours, judged = await _fresh_neighbours(session, raw, shares)
    allow = await _allow_lists(session, {e.tenant_id for e in raw})
    take_back: dict[str, tuple[str, datetime]] = {}  # counted click id -> (tenant, burst click's time)
    columns: dict[str, list[Any]] = {c: [] for c in _COLUMNS}
    out: list[Envelope[ShareClicked]] = []
    for i, env in enumerate(raw):
        if i and i % _YIELD_EVERY == 0:
            await asyncio.sleep(0)
        click: ClickReceived = env.data
        share = shares.get(click.code)
        if share is None or share.tenant_id != env.tenant_id:
            continue  # a link that never existed here; nothing to credit
        before = [at for k in _history_keys(click) for cid, at in history.get(k, ()) if cid != click.click_id]
        allowed = env.tenant_id in allow and domain.is_allowed(
            click.user_agent, click.ip_network, *allow[env.tenant_id]
        )
        if click.method == "HEAD":
            bot_reason: str | None = domain.HEAD_REQUEST
        elif allowed:  # the tenant's allow-list: no user-agent, range, header or scanner rule
            bot_reason = None
        else:  # the user agent, then the network, then the headers; the history's burst rule last
            bot_reason = (
                verdicts.ua_reason(click.user_agent)
                or ranges.network_reason(click.ip_network)
                or domain.header_reason(click.accept_language)
            )
        if (
            bot_reason is None
            and not allowed
            and click.ip_network
            and domain.is_fresh(click.received_at, share.created_at)
        ):
            # other visitors only: one visitor's repeats are duplicates (or rate-limited), not a burst
            near = [
                (cid, at)
                for cid, at, visitor in neighbours.get((click.code, click.ip_network), ())
                if visitor != click.visitor and cid != click.click_id
            ]
            bot_reason = domain.scanner_reason(click.received_at, share.created_at, _per_visitor(near, neighbours))
            if bot_reason is not None:  # the burst's clicks judged in earlier batches are taken back
                for cid, at in near:
                    if judged.get(cid) and abs(at - click.received_at) <= domain.BURST_WINDOW:
                        take_back[cid] = (env.tenant_id, click.received_at)
        verdict = domain.decide_verdict(
            domain.ClickFacts(
                is_bot=bot_reason is not None,
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
        reason = (bot_reason or domain.EDGE_BOT) if verdict is Verdict.bot else None
        if verdict is Verdict.counted:
            history.setdefault((click.code, click.visitor), []).append((click.click_id, click.received_at))
        device = verdicts.device_of(click.user_agent)
        ref = verdicts.referrer_domain(click.referrer)
        country = verdicts.country_code(click.country)
        for name, value in (
            ("id", click.click_id),
            ("tenant_id", env.tenant_id),
            ("code", click.code),
            ("share_id", share.id),
            ("employee_id", share.employee_id),
            ("content_id", share.content_id),
            ("network", share.network),
            ("received_at", click.received_at),
            ("visitor", click.visitor),
            ("verdict", verdict.value),
            ("user_agent", click.user_agent),
            ("referrer_domain", ref),
            ("country", country),
            ("device", device.device),
            ("browser", device.browser),
            ("os", device.os),
            ("method", click.method),
            ("reason", reason),
            ("ip_network", click.ip_network),
            ("accept_language", click.accept_language),
        ):
            columns[name].append(value)
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
                        reason=reason,
                    ),
                    at=click.received_at,
                    id=click_event_id(click.click_id),
                )
            )
    if columns["id"]:
        inserted = await session.execute(_INSERT, columns)
        new_ids = {r[0] for r in inserted.all()}
        await add_events(session, [e for e in out if e.data.click_id in new_ids])
    if take_back:
        await _take_back_scanner_clicks(session, take_back)


def _history_keys(click: ClickReceived) -> list[tuple[str, str]]:
    """The (code, visitor) pairs whose history decides whether ``click`` is a duplicate: today's
    visitor hash and, across the daily key rotation, yesterday's."""
    keys = [(click.code, click.visitor)]
    if click.visitor_prev:
        keys.append((click.code, click.visitor_prev))
    return keys


async def _allow_lists(session: AsyncSession, tenants: set[str]) -> dict[str, tuple[list[str], list[str]]]:
    """The click allow-lists (user agents, networks) of the batch's tenants that have one."""
    rows = (
        await session.execute(
            sa.select(TENANT_SETTINGS.c.tenant_id, TENANT_SETTINGS.c.settings).where(
                TENANT_SETTINGS.c.tenant_id.in_(tenants)
            )
        )
    ).all()
    out: dict[str, tuple[list[str], list[str]]] = {}
    for tenant_id, raw in rows:
        allow = TenantSettings.model_validate(raw).click_allow
        if allow.user_agents or allow.networks:
            out[tenant_id] = (allow.user_agents, allow.networks)
    return out


Neighbours = dict[tuple[str, str], list[tuple[str, datetime, str]]]


def _per_visitor(near: list[tuple[str, datetime]], neighbours: Neighbours) -> list[datetime]:
    """The times of ``near`` (click id, time), one per visitor (a visitor's first click)."""
    visitor_of = {cid: v for pairs in neighbours.values() for cid, _, v in pairs}
    first: dict[str, datetime] = {}
    for cid, at in near:
        v = visitor_of[cid]
        if v not in first or at < first[v]:
            first[v] = at
    return list(first.values())


async def _fresh_neighbours(
    session: AsyncSession, raw: list[Envelope[Any]], shares: dict[str, Any]
) -> tuple[Neighbours, dict[str, bool]]:
    """For the batch's fresh clicks (within seconds of their share's creation): every click on the
    same link from the same network near them, from the batch and the database, by (code, network);
    and which of the database's were counted and not taken back (click id -> True)."""
    fresh = [
        e.data
        for e in raw
        if e.data.ip_network
        and (share := shares.get(e.data.code)) is not None
        and domain.is_fresh(e.data.received_at, share.created_at)
    ]
    out: Neighbours = defaultdict(list)
    judged: dict[str, bool] = {}
    if not fresh:
        return out, judged
    codes = {c.code for c in fresh}
    networks = {c.ip_network for c in fresh}
    for e in raw:
        c = e.data
        if c.code in codes and c.ip_network in networks:
            out[(c.code, c.ip_network)].append((c.click_id, c.received_at, c.visitor))
    times = [c.received_at for c in fresh]
    rows = (
        await session.execute(
            _NEIGHBOURS,
            {
                "codes": list(codes),
                "networks": list(networks),
                "lo": min(times) - domain.BURST_WINDOW,
                "hi": max(times) + domain.BURST_WINDOW,
            },
        )
    ).all()
    batch_ids = {cid for pairs in out.values() for cid, _, _ in pairs}
    for cid, code, network, at, verdict, invalidated_at, visitor in rows:
        if cid not in batch_ids:
            out[(code, network)].append((cid, at, visitor))
        judged[cid] = verdict == Verdict.counted.value and invalidated_at is None
    return out, judged


async def _take_back_scanner_clicks(session: AsyncSession, take_back: dict[str, tuple[str, datetime]]) -> None:
    """Clicks counted before the rest of their burst arrived: marked invalidated with the reason
    ``scanner_timing`` and taken back (``share.click_invalidated.v1``), as an admin's invalidation is."""
    at = max(t for _, t in take_back.values())
    marked = (
        await session.execute(
            _TAKE_BACK,
            {"at": at, "reason": domain.SCANNER_TIMING, "ids": list(take_back), "counted": Verdict.counted.value},
        )
    ).all()
    await _add_invalidated_events(session, marked, domain.SCANNER_TIMING, at)


async def _add_invalidated_events(session: AsyncSession, taken_back: Sequence[Any], reason: str, at: datetime) -> None:
    """``share.click_invalidated.v1`` into the outbox for each counted click taken back (rows with
    ``id, tenant_id, share_id, employee_id, content_id, network, received_at``), with its share's team.
    An erased member's clicks credit no one, so there is nothing to take back for them."""
    taken_back = [r for r in taken_back if r.employee_id is not None]
    if not taken_back:
        return
    q = sa.select(col(Share.id), col(Share.team)).where(col(Share.id).in_({r.share_id for r in taken_back}))
    teams = {sid: team for sid, team in (await session.execute(q)).all()}
    events = [
        new_event(
            SOURCE,
            r.tenant_id,
            ClickInvalidated(
                click_id=r.id,
                share_id=r.share_id,
                content_id=r.content_id,
                network=r.network,
                employee_id=r.employee_id,
                team=teams.get(r.share_id),
                clicked_at=r.received_at,
                reason=reason,
                invalidated_at=at,
            ),
            at=at,
            id=f"invalidated-{r.id}",
        )
        for r in taken_back
    ]
    await add_events(session, events)


# -- reasons an admin can read -------------------------------------------------------------------------
_LINK_VERDICTS = sa.text(
    "SELECT verdict, reason, invalidation_reason, count(*) FROM clicks WHERE tenant_id = :t AND code = :c "
    "GROUP BY verdict, reason, invalidation_reason ORDER BY count(*) DESC, verdict, reason NULLS FIRST"
)


async def link_verdicts(session: AsyncSession, tenant_id: str, code: str) -> LinkVerdicts:
    """Clicks of one of the tenant's links by verdict and reason (404: not a link of this tenant)."""
    if not domain.is_code_shaped(code):
        raise NotFound("link not found")
    owner = await session.execute(
        sa.select(col(Share.id)).where(col(Share.code) == code, col(Share.tenant_id) == tenant_id)
    )
    if owner.first() is None:
        raise NotFound("link not found")
    rows = (await session.execute(_LINK_VERDICTS, {"t": tenant_id, "c": code})).all()
    return LinkVerdicts(
        code=code,
        items=[VerdictCount(verdict=v, reason=r, taken_back=t, clicks=n) for v, r, t, n in rows],
    )


# -- invalidation: an admin judges clicks fraudulent after the fact -----------------------------------
async def invalidate_clicks(
    session: AsyncSession, tenant_id: str, body: InvalidateIn, *, now: datetime | None = None
) -> int:
    """Returns how many counted clicks were taken back by this call."""
    now = now or datetime.now(UTC)
    conds = [col(Click.tenant_id) == tenant_id, col(Click.invalidated_at).is_(None)]
    if body.link_code:
        conds.append(col(Click.code) == body.link_code)
    if body.visitor:
        conds.append(col(Click.visitor) == body.visitor)
    if body.referrer_domain:
        conds.append(col(Click.referrer_domain) == body.referrer_domain.lower().removeprefix("www."))
    if body.from_:
        conds.append(col(Click.received_at) >= body.from_)
    if body.to:
        conds.append(col(Click.received_at) < body.to)
    marked = (
        await session.execute(
            sa.update(Click)
            .where(*conds)
            .values(invalidated_at=now, invalidation_reason=body.reason)
            .returning(
                col(Click.id),
                col(Click.tenant_id),
                col(Click.share_id),
                col(Click.employee_id),
                col(Click.content_id),
                col(Click.network),
                col(Click.received_at),
                col(Click.verdict),
            )
        )
    ).all()
    counted = [r for r in marked if r.verdict == Verdict.counted.value]
    await _add_invalidated_events(session, counted, body.reason, now)
    return len(counted)
