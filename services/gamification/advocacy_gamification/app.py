"""The gamification service's app factory and command line."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from datetime import timedelta

from fastapi import FastAPI

from advocacy_common.audit import audit_router, purge_task
from advocacy_common.entrypoint import service_cli
from advocacy_common.person_export import export_router
from advocacy_common.registry import Registration
from advocacy_common.runtime import Runtime, ServiceDefinition, create_service_app
from advocacy_gamification.adapters import pseudonyms
from advocacy_gamification.adapters.ledger import V1_TENANTS
from advocacy_gamification.adapters.stream import BoardHub, StreamLimits, Tickets
from advocacy_gamification.api import router
from advocacy_gamification.consumers import CONSUMERS
from advocacy_gamification.features import challenges, leaderboard, members
from advocacy_gamification.features.person_export import SECTIONS as EXPORT_SECTIONS
from advocacy_gamification.parts import GamificationParts, parts_of
from advocacy_gamification.settings import GamificationSettings

log = logging.getLogger("advocacy.gamification")


def _settings(runtime: Runtime) -> GamificationSettings:
    s = runtime.settings
    assert isinstance(s, GamificationSettings)
    return s


def _libpq_url(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"postgresql://{rest}" if scheme.startswith("postgresql") else url


async def on_start(runtime: Runtime) -> None:
    s = _settings(runtime)
    pseudonyms.configure(s.pseudonym_secret.get_secret_value() if s.pseudonym_secret else None)
    V1_TENANTS.configure(s.points_awarded_v1_tenants)
    freeze_heap()
    if s.role.serves_http:
        secret = s.stream_ticket_secret.get_secret_value() if s.stream_ticket_secret else None
        runtime.parts = GamificationParts(
            tickets=Tickets(runtime.sessionmaker, secret, members.is_erased),
            board_hub=BoardHub(
                _libpq_url(s.database_url),
                runtime.sessionmaker,
                leaderboard.live_board,
                min_interval=s.stream_min_interval_seconds,
                keepalive=s.stream_keepalive_seconds,
                limits=StreamLimits(
                    per_user=s.stream_max_per_user,
                    per_tenant=s.stream_max_per_tenant,
                    per_process=s.stream_max_per_process,
                    feeds_per_tenant=s.stream_max_feeds_per_tenant,
                ),
            ),
        )


def freeze_heap() -> None:
    """Move what start-up allocated (modules, models, schemas: most of the heap) out of the
    collector's sight: a full collection during a consumed batch then scans only what was
    allocated since, instead of every object in the process (the batch path spent a quarter of its
    CPU in full collections)."""
    gc.collect()
    gc.freeze()


async def board_listener(runtime: Runtime, stop: asyncio.Event) -> None:
    """API processes: LISTEN for board changes and feed the SSE streams."""
    await parts_of(runtime).board_hub.run(stop)


async def challenge_scheduler(runtime: Runtime, stop: asyncio.Event) -> None:
    """Worker processes: finalise ended challenges (every worker may run it; each challenge once)."""
    s = _settings(runtime)
    grace = timedelta(seconds=s.challenge_finalise_grace_seconds)
    while not stop.is_set():
        try:
            async with runtime.sessionmaker() as session, session.begin():
                await challenges.finalise_due(session, grace)
        except Exception as e:
            log.warning("challenge scheduler pass failed", extra={"error": f"{type(e).__name__}: {e}"})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), s.challenge_scheduler_interval_seconds)


DEFINITION = ServiceDefinition(
    name="gamification",
    title="Advocacy gamification",
    description="Points ledger, leaderboards, badges, challenges and rewards.",
    routers=[router, audit_router("gamification"), export_router("gamification", EXPORT_SECTIONS)],
    consumers=CONSUMERS,
    api_tasks=[board_listener],
    worker_tasks=[challenge_scheduler, purge_task(has_settings_copy=True)],
    on_start=on_start,
)


def create_app(settings: GamificationSettings | None = None) -> FastAPI:
    return create_service_app(settings or GamificationSettings(), DEFINITION)


REGISTRATION = Registration(
    name="gamification", settings_class=GamificationSettings, create_app=create_app, dev_port=8004
)


cli = service_cli("advocacy_gamification", GamificationSettings)


def main() -> None:
    cli()
