"""The sharing service's app factory and command line."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from starlette.routing import Route

from advocacy_common.entrypoint import service_cli
from advocacy_common.runtime import Runtime, ServiceDefinition, create_service_app
from advocacy_sharing.api import router
from advocacy_sharing.consumers import CONSUMERS
from advocacy_sharing.redirect import ClickEmitter, LinkCache, Redirector
from advocacy_sharing.settings import SharingSettings


async def _start(runtime: Runtime) -> None:
    settings = runtime.settings
    assert isinstance(settings, SharingSettings)
    emitter = ClickEmitter(settings.kafka_send_timeout_seconds)
    cache = LinkCache(runtime.sessionmaker, settings.link_cache_size)
    runtime.extras["emitter"] = emitter
    runtime.extras["redirector"] = Redirector(settings, cache, emitter)


async def _emit_clicks(runtime: Runtime, stop: asyncio.Event) -> None:
    emitter: ClickEmitter = runtime.extras["emitter"]
    await emitter.run(runtime, stop)


DEFINITION = ServiceDefinition(
    name="sharing",
    title="Advocacy sharing",
    description="Tracked links, the public redirect, click verdicts and conversions.",
    routers=[router],
    consumers=CONSUMERS,
    api_tasks=[_emit_clicks],
    on_start=_start,
    api_needs_producer=True,
)


def create_app(settings: SharingSettings | None = None) -> FastAPI:
    settings = settings or SharingSettings()
    app = create_service_app(settings, DEFINITION)

    async def redirect(request):  # type: ignore[no-untyped-def]
        return await request.app.state.runtime.extras["redirector"](request)

    if settings.role.serves_http:
        app.router.routes.insert(0, Route("/r/{code}", redirect, methods=["GET", "HEAD"], name="redirect"))
    return app


cli = service_cli("advocacy_sharing", SharingSettings)


def main() -> None:
    cli()
