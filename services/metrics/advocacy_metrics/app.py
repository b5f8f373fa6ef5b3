"""The metrics service's app factory and command line."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging

from fastapi import FastAPI

from advocacy_common.entrypoint import service_cli
from advocacy_common.person_export import export_router
from advocacy_common.registry import Registration
from advocacy_common.runtime import Runtime, ServiceDefinition, create_service_app
from advocacy_common.testclock import FileClock
from advocacy_metrics.api import router
from advocacy_metrics.consumers import CONSUMERS
from advocacy_metrics.features import weekly
from advocacy_metrics.features.person_export import SECTIONS as EXPORT_SECTIONS
from advocacy_metrics.settings import MetricsSettings

log = logging.getLogger("advocacy.metrics")


async def on_start(runtime: Runtime) -> None:
    """Move what start-up allocated (modules, models, schemas: most of the heap) out of the
    collector's sight: a full collection during a consumed batch then scans only what was
    allocated since, instead of every object in the process."""
    gc.collect()
    gc.freeze()


async def weekly_reports(runtime: Runtime, stop: asyncio.Event) -> None:
    """Worker processes: compose the weekly reports that are due (every worker may run it; the
    report's key, tenant and week, makes each one once)."""
    s = runtime.settings
    assert isinstance(s, MetricsSettings)
    clock = FileClock(s.clock_file)  # the real time, unless an e2e test sets it (dev mode)
    while not stop.is_set():
        try:
            await weekly.compose_due(runtime.sessionmaker, clock())
        except Exception as e:
            log.warning("weekly report pass failed", extra={"error": f"{type(e).__name__}: {e}"})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), s.report_interval_seconds)


DEFINITION = ServiceDefinition(
    name="metrics",
    title="Advocacy metrics",
    description="Shares, clicks by verdict, reach, conversions and ROI, from the event stream.",
    routers=[router, export_router("metrics", EXPORT_SECTIONS)],
    consumers=CONSUMERS,
    worker_tasks=[weekly_reports],
    on_start=on_start,
)


def create_app(settings: MetricsSettings | None = None) -> FastAPI:
    return create_service_app(settings or MetricsSettings(), DEFINITION)


REGISTRATION = Registration(name="metrics", settings_class=MetricsSettings, create_app=create_app, dev_port=8003)


cli = service_cli("advocacy_metrics", MetricsSettings)


def main() -> None:
    cli()
