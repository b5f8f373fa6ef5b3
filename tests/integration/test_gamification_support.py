"""Fixtures and event builders shared by the gamification integration tests (no tests here).

- ``gam_url``: one migrated gamification database for the session (tests use their own tenants).
- ``gam``: a :class:`Gam` on it: ``await gam.apply(*envelopes)`` runs the consumer handler in one
  transaction (as the consumer runner does), ``gam.client(token)`` an HTTP client on the app (role
  api, lifespan running), ``gam.sm`` a sessionmaker.
- Builders: ``share(...)``, ``click(...)``, ``conversion(...)``, ``invalidate(...)``, ... return
  envelopes with fresh ids.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from advocacy_common.db import make_engine, make_sessionmaker
from advocacy_common.events import Envelope, new_event
from advocacy_common.events.content import MemberErased, MemberUpdated, SuggestionApproved, TenantSettingsUpdated
from advocacy_common.events.sharing import (
    ClickInvalidated,
    ConversionRecorded,
    ShareClicked,
    ShareCreated,
    Verdict,
    click_event_id,
)
from advocacy_common.migrations import upgrade
from advocacy_common.tenant import TenantSettings
from advocacy_gamification.features.awards import apply_events
from advocacy_gamification.settings import GamificationSettings

SHARING = "/advocacy/sharing"
CONTENT = "/advocacy/content"


def now() -> datetime:
    return datetime.now(UTC)


def uid(prefix: str = "x") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


# -- event builders ------------------------------------------------------------------------------------
def share(
    tenant: str,
    emp: str,
    *,
    content: str | None = None,  # None: an item of its own (shares of one item earn once, issue 13)
    at: datetime | None = None,
    name: str | None = None,
    team: str | None = None,
    share_id: str | None = None,
) -> Envelope[Any]:
    return new_event(
        SHARING,
        tenant,
        ShareCreated(
            employee_id=emp,
            share_id=share_id or uid("s"),
            content_id=content or uid("c"),
            network="linkedin",
            code=uid("code"),
            created_at=at or now(),
            employee_name=name or emp.title(),
            team=team,
        ),
    )


def click(
    tenant: str,
    emp: str,
    *,
    content: str = "c1",
    at: datetime | None = None,
    verdict: Verdict = Verdict.counted,
    click_id: str | None = None,
    team: str | None = None,
) -> Envelope[Any]:
    return from_sharing(
        tenant,
        ShareClicked(
            employee_id=emp,
            click_id=click_id or uid("k"),
            share_id="s",
            code="code",
            content_id=content,
            network="linkedin",
            clicked_at=at or now(),
            verdict=verdict,
            team=team,
        ),
    )


def from_sharing(tenant: str, data: Any) -> Envelope[Any]:
    """A sharing event as sharing builds it: a click's envelope id is its :func:`click_event_id`."""
    return new_event(SHARING, tenant, data, id=click_event_id(data.click_id) if type(data) is ShareClicked else None)


def invalidate(tenant: str, emp: str, click_id: str, *, reason: str = "fraud") -> Envelope[Any]:
    t = now()
    return new_event(
        SHARING,
        tenant,
        ClickInvalidated(
            employee_id=emp,
            click_id=click_id,
            share_id="s",
            content_id="c1",
            network="linkedin",
            clicked_at=t,
            reason=reason,
            invalidated_at=t,
        ),
    )


def conversion(
    tenant: str, emp: str, kind: str = "sale", *, content: str = "c1", at: datetime | None = None
) -> Envelope[Any]:
    return new_event(
        SHARING,
        tenant,
        ConversionRecorded(
            employee_id=emp,
            conversion_id=uid("conv"),
            click_id="k",
            share_id="s",
            content_id=content,
            network="linkedin",
            kind=kind,
            external_id=uid("ext"),
            occurred_at=at or now(),
        ),
    )


def suggestion(tenant: str, emp: str, *, content: str | None = None) -> Envelope[Any]:
    return new_event(
        CONTENT,
        tenant,
        SuggestionApproved(content_id=content or uid("c"), proposer_id=emp, approved_by="admin", approved_at=now()),
    )


def membership(
    tenant: str,
    emp: str,
    *,
    enrolled: bool = True,
    leaderboard: str = "ranked",
    name: str | None = None,
    team: str | None = None,
    at: datetime | None = None,
) -> Envelope[Any]:
    return new_event(
        CONTENT,
        tenant,
        MemberUpdated(
            employee_id=emp, enrolled=enrolled, leaderboard=leaderboard, name=name, team=team, updated_at=at or now()
        ),
    )


def erased(tenant: str, emp: str) -> Envelope[Any]:
    return new_event(CONTENT, tenant, MemberErased(employee_id=emp, erased_at=now()))


def tenant_settings(tenant: str, **kw: Any) -> Envelope[Any]:
    return new_event(CONTENT, tenant, TenantSettingsUpdated(settings=TenantSettings(**kw), updated_at=now()))


# -- fixtures ------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def gam_url(pg: Any) -> str:
    url: str = pg.create_database(f"gam_{uuid.uuid4().hex[:10]}")
    upgrade("advocacy_gamification", url)
    return url


class Gam:
    def __init__(self, url: str, mint: Callable[..., str], jwks_path: str, stack: AsyncExitStack) -> None:
        self.url = url
        self.mint = mint
        self.jwks_path = jwks_path
        self.engine = make_engine(url, pool_size=20)
        self.sm = make_sessionmaker(self.engine)
        self._stack = stack
        self._app: Any = None

    async def apply(self, *events: Envelope[Any]) -> None:
        async with self.sm() as s, s.begin():
            await apply_events(s, list(events))

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.engine.connect() as conn:
            return await conn.scalar(sa.text(sql), params)

    async def rows(self, sql: str, **params: Any) -> list[Any]:
        async with self.engine.connect() as conn:
            return list((await conn.execute(sa.text(sql), params)).all())

    async def app(self) -> Any:
        if self._app is None:
            from advocacy_gamification.app import create_app

            settings = GamificationSettings(
                database_url=self.url,
                role="api",
                dev_mode=True,
                jwt_jwks_path=self.jwks_path,
                log_json=False,
                log_level="WARNING",
            )
            app = create_app(settings)
            await self._stack.enter_async_context(app.router.lifespan_context(app))
            self._app = app
        return self._app

    async def client(self, token: str | None = None) -> httpx.AsyncClient:
        app = await self.app()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gam", headers=headers)
        await self._stack.enter_async_context(client)
        return client

    async def as_(self, tenant: str, sub: str, role: str = "employee", **kw: Any) -> httpx.AsyncClient:
        return await self.client(self.mint(tenant, sub, role, **kw))


@pytest.fixture
async def gam(gam_url: str, mint: Callable[..., str], dev_keys: Any) -> AsyncIterator[Gam]:
    async with AsyncExitStack() as stack:
        g = Gam(gam_url, mint, str(dev_keys.jwks_path), stack)
        try:
            yield g
        finally:
            await g.engine.dispose()


async def score_counts_agree(g: Gam, tenant: str) -> None:
    """``score_counts`` holds exactly the number of ranked people per score on every board."""
    bad = await g.rows(
        """
        WITH truth AS (
            SELECT "window", window_start, points, count(*) AS n FROM points_totals
            WHERE tenant_id = :t AND ranked GROUP BY 1, 2, 3
        ), kept AS (
            SELECT "window", window_start, points, count AS n FROM score_counts WHERE tenant_id = :t AND count <> 0
        )
        SELECT * FROM (SELECT * FROM truth EXCEPT SELECT * FROM kept) a
        UNION ALL SELECT * FROM (SELECT * FROM kept EXCEPT SELECT * FROM truth) b
        """,
        t=tenant,
    )
    assert bad == [], bad
