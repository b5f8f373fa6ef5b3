"""The content service's app factory and command line."""

from __future__ import annotations

from fastapi import FastAPI

from advocacy_common.audit import audit_router, purge_task
from advocacy_common.entrypoint import service_cli
from advocacy_common.person_export import export_router
from advocacy_common.registry import Registration
from advocacy_common.runtime import ServiceDefinition, create_service_app
from advocacy_common.testclock import FileClock
from advocacy_content.adapters.events import use_clock
from advocacy_content.adapters.scheduler import scheduler_task
from advocacy_content.api import router
from advocacy_content.consumers import CONSUMERS
from advocacy_content.features.partner import PARTNER_FEED, deliver_webhooks
from advocacy_content.features.person_export import SECTIONS as EXPORT_SECTIONS
from advocacy_content.features.scim import erase_inactive_task
from advocacy_content.settings import ContentSettings

DEFINITION = ServiceDefinition(
    name="content",
    title="Advocacy content",
    description="The advocacy board: curated content, targeting, captions, policy and programme.",
    routers=[router, audit_router("content"), export_router("content", EXPORT_SECTIONS)],
    consumers=CONSUMERS,
    late_consumers=[PARTNER_FEED],
    worker_tasks=[scheduler_task, deliver_webhooks, purge_task(has_settings_copy=True), erase_inactive_task],
)


def create_app(settings: ContentSettings | None = None) -> FastAPI:
    settings = settings or ContentSettings()
    use_clock(FileClock(settings.clock_file))  # the real time unless a test sets it (dev mode)
    return create_service_app(settings, DEFINITION)


REGISTRATION = Registration(name="content", settings_class=ContentSettings, create_app=create_app, dev_port=8001)


cli = service_cli("advocacy_content", ContentSettings)


def main() -> None:
    cli()
