"""Migration 0012 of notifications: the tenant's default language joins the tenant's defaults row.
What the release before wrote (``tenant_languages``) is there after the upgrade, and what it writes
while both releases run is copied over; this release reads and writes the defaults, language
included, in one row, and setting one part (PUT /defaults, PUT /defaults/language) keeps the other."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from advocacy_common.db import make_engine, make_sessionmaker
from advocacy_common.migrations import upgrade
from advocacy_notifications import db
from advocacy_notifications.domain import Defaults, Frequency, Language, QuietHours
from advocacy_notifications.features import preferences, quiet_hours, wording

pytestmark = pytest.mark.integration

ROW = "SELECT digest_frequency, digest_hour, nudge_after_days, expiring_notice_hours, language FROM tenant_defaults"


async def test_the_language_moves_into_the_defaults_and_the_release_before_still_writes_it(new_database: str) -> None:
    await asyncio.to_thread(upgrade, "advocacy_notifications", new_database, "0011_report_recipients")
    engine = make_engine(new_database, pool_size=1)
    try:
        async with engine.begin() as conn:  # the release before: a language alone, and one beside defaults
            for sql in (
                "INSERT INTO tenant_languages (tenant_id, language, updated_at)"
                " VALUES ('t1', 'de', now()), ('t2', 'de', now())",
                "INSERT INTO tenant_defaults (tenant_id, digest_frequency, digest_hour, updated_at)"
                " VALUES ('t2', 'daily', 7, now())",
            ):
                await conn.execute(sa.text(sql))
        await asyncio.to_thread(upgrade, "advocacy_notifications", new_database)
        async with engine.begin() as conn:
            rows = {t: tuple(r) for t, *r in (await conn.execute(sa.text(ROW.replace("SELECT", "SELECT tenant_id,"))))}
            assert rows == {"t1": ("weekly", 9, 30, 24, "de"), "t2": ("daily", 7, 30, 24, "de")}
            # the release before, still running during the rollout, writes where it always did
            for sql in (
                "INSERT INTO tenant_languages (tenant_id, language, updated_at) VALUES ('t3', 'de', now())",
                "UPDATE tenant_languages SET language = 'en' WHERE tenant_id = 't2'",
            ):
                await conn.execute(sa.text(sql))
            assert (await conn.execute(sa.text(f"{ROW} WHERE tenant_id = 't3'"))).one() == ("weekly", 9, 30, 24, "de")
            assert (await conn.execute(sa.text(f"{ROW} WHERE tenant_id = 't2'"))).one() == ("daily", 7, 30, 24, "en")
        sessions = make_sessionmaker(engine)
        async with sessions() as session, session.begin():
            assert await wording.tenant_language(session, "t1") is Language.de
            assert await wording.tenant_language(session, "t2") is Language.en
            assert await wording.tenant_language(session, "nobody") is Language.en
    finally:
        await engine.dispose()


async def test_each_part_of_the_defaults_is_set_without_touching_the_other(new_database: str) -> None:
    await asyncio.to_thread(upgrade, "advocacy_notifications", new_database)
    engine = make_engine(new_database, pool_size=1)
    now = datetime.now(UTC)
    try:
        sessions = make_sessionmaker(engine)
        async with sessions() as session, session.begin():
            await wording.set_tenant_language(session, "t", Language.de, now)
            assert await db.load_defaults(session, "t") == Defaults(language=Language.de)
            stored = await preferences.set_defaults(
                session, "t", Defaults(digest_frequency=Frequency.daily, digest_hour=8, quiet_hours=QuietHours(22, 7))
            )
            assert stored == Defaults(
                digest_frequency=Frequency.daily, digest_hour=8, quiet_hours=QuietHours(22, 7), language=Language.de
            )
            await wording.set_tenant_language(session, "t", Language.en, now)
            assert await db.load_defaults(session, "t") == Defaults(
                digest_frequency=Frequency.daily, digest_hour=8, quiet_hours=QuietHours(22, 7)
            )
            assert (await quiet_hours.load(session, "t")).default == QuietHours(22, 7)
            # this release writes the defaults row alone
            assert await session.scalar(sa.text("SELECT count(*) FROM tenant_languages")) == 0
    finally:
        await engine.dispose()
