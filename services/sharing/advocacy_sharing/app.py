"""The sharing service's app factory and command line."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI

from advocacy_common.audit import audit_router, purge_task
from advocacy_common.entrypoint import service_cli
from advocacy_common.events import Envelope
from advocacy_common.events.sharing import ClickReceived
from advocacy_common.person_export import export_router
from advocacy_common.registry import DevPlace, Registration
from advocacy_common.runtime import Runtime, ServiceDefinition, create_service_app
from advocacy_sharing.adapters import ranges, verdicts
from advocacy_sharing.adapters.clickid import ClickIds
from advocacy_sharing.adapters.emitter import ClickSender
from advocacy_sharing.adapters.redirect import LinkCache, Redirector, SharingAPI
from advocacy_sharing.adapters.spool import ClickJournal
from advocacy_sharing.api import REDIRECT_PATHS, router
from advocacy_sharing.consumers import CONSUMERS
from advocacy_sharing.features import action_links
from advocacy_sharing.features.person_export import SECTIONS as EXPORT_SECTIONS
from advocacy_sharing.features.shares import content_change
from advocacy_sharing.parts import SharingParts, parts_of, rewind_journal, watch_broker
from advocacy_sharing.settings import SharingSettings

_BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


def _warm_verdicts() -> None:
    """Read the datacenter ranges and compile the user-agent rules (~0.4 s of CPU)."""
    ranges.datacenter()
    verdicts.warm({_BROWSER})


async def _start(runtime: Runtime) -> None:
    settings = runtime.settings
    assert isinstance(settings, SharingSettings)
    parts = runtime.parts = SharingParts(click_ids=ClickIds(settings.click_id_secret))
    if settings.role.runs_workers:
        # The verdict worker's tables are read now, not by the first batch of clicks after a start:
        # that batch took 4.7 s on a loaded machine (bench/latency.py), every click in it waiting.
        await asyncio.to_thread(_warm_verdicts)
    if not settings.role.serves_http:
        return
    journal = ClickJournal(
        settings.spool_dir,
        retention_seconds=settings.journal_retention_days * 86400,
        segment_seconds=settings.journal_segment_seconds,
        max_bytes=settings.journal_max_bytes,
    )
    journal.open()
    sender = ClickSender(
        journal,
        runtime.get_producer,
        send_timeout=settings.kafka_send_timeout_seconds,
        batch_records=settings.click_send_batch_records,
        fsync_seconds=settings.journal_fsync_seconds,
        idle_seconds=settings.click_send_idle_seconds,
    )
    cache = LinkCache(
        runtime.sessionmaker,
        settings.link_cache_size,
        ttl=settings.link_cache_ttl_seconds,
        max_bytes=settings.link_cache_max_bytes,
    )
    # A web process allocates little that lives long: collect the young generation less often, and
    # move everything alive after start-up out of the collector's sight (fewer, shorter pauses).
    gc.set_threshold(50_000, 20, 50)
    gc.freeze()
    parts.journal = journal
    parts.sender = sender
    parts.cache = cache
    parts.redirector = Redirector(settings, cache, journal, sender)


async def _send_clicks(runtime: Runtime, stop: asyncio.Event) -> None:
    """Journal -> Kafka; on shutdown it flushes what is left, then closes the journal."""
    parts = parts_of(runtime)
    assert parts.sender is not None and parts.journal is not None  # API tasks run where HTTP is served
    try:
        await parts.sender.run(stop)
    finally:
        with contextlib.suppress(Exception):
            parts.journal.close()


async def _admission(runtime: Runtime, stop: asyncio.Event) -> None:
    redirector = parts_of(runtime).redirector
    assert redirector is not None
    await redirector.admission.run(stop)


async def _refresh_links(runtime: Runtime, stop: asyncio.Event) -> None:
    cache = parts_of(runtime).cache
    assert cache is not None
    await cache.run_refresher(stop)


async def _watch_broker_api(runtime: Runtime, stop: asyncio.Event) -> None:
    await watch_broker(runtime, stop)


log = logging.getLogger("advocacy.sharing")


async def _forget_used_links(runtime: Runtime, stop: asyncio.Event) -> None:
    """Worker: hourly, the records of used share buttons past their expiry are deleted (such a link
    is refused for its age before its record is read)."""
    while not stop.is_set():
        try:
            async with runtime.sessionmaker() as session, session.begin():
                await action_links.forget_expired(session, datetime.now(UTC))
        except Exception as e:  # the next round tries again
            log.warning("forgetting used share buttons failed", extra={"error": f"{type(e).__name__}: {e}"})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 3600.0)


def _on_applied(runtime: Runtime, events: Sequence[Envelope[Any]]) -> None:
    """After a batch commits: a verdict batch wakes the outbox relay (its ``share.clicked`` rows go
    out now, not at the relay's next poll: the ``relay`` stage of docs/latency-budget.md); after a
    content event, the link cache of this process follows at once."""
    if events and isinstance(events[0].data, ClickReceived):  # the verdict worker's group reads only these
        runtime.kick_outbox()
        return
    cache = parts_of(runtime).cache
    if cache is None:
        return
    for env in events:
        change = content_change(env)
        if change is not None:
            cache.content_changed(
                change.tenant_id,
                change.content_id,
                status=change.status,
                expires_at=change.expires_at,
                url=change.url,
                slug=change.slug,
            )


DEFINITION = ServiceDefinition(
    name="sharing",
    title="Advocacy sharing",
    description="Tracked links, the public redirect, click verdicts and conversions.",
    routers=[router, audit_router("sharing"), export_router("sharing", EXPORT_SECTIONS)],
    consumers=CONSUMERS,
    api_tasks=[_send_clicks, _refresh_links, _watch_broker_api, _admission],
    # sharing keeps a copy of the tenant settings: each tenant's audit_retention_days applies
    worker_tasks=[purge_task(has_settings_copy=True), _forget_used_links],
    on_broker_wiped=rewind_journal,
    on_start=_start,
    on_applied=_on_applied,
    api_needs_producer=True,
    openapi_paths=REDIRECT_PATHS,
)


def create_app(settings: SharingSettings | None = None) -> FastAPI:
    settings = settings or SharingSettings()
    # /r/{code} is answered before FastAPI's routing, middleware and telemetry (adapters/redirect.py).
    return create_service_app(settings, DEFINITION, app_class=SharingAPI if settings.role.serves_http else FastAPI)


def _dev_env(place: DevPlace) -> dict[str, str]:
    """In a dev stack: the click journal under the stack's data root, links served by this process."""
    return {
        "SHARING_SPOOL_DIR": str(place.data_dir / "spool"),
        "SHARING_PUBLIC_BASE_URL": f"http://127.0.0.1:{place.port}",
    }


REGISTRATION = Registration(
    name="sharing", settings_class=SharingSettings, create_app=create_app, dev_port=8002, dev_env=_dev_env
)


cli = service_cli("advocacy_sharing", SharingSettings)


def main() -> None:
    cli()
