"""The notifications service's app factory and command line."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Mapping

from fastapi import FastAPI

from advocacy_common.entrypoint import service_cli
from advocacy_common.person_export import export_router
from advocacy_common.registry import DevPlace, Registration
from advocacy_common.runtime import Runtime, ServiceDefinition, create_service_app
from advocacy_common.supervision import backoff
from advocacy_common.testclock import FileClock
from advocacy_notifications.adapters.links import LINK_KEY, PUBLIC_BASE
from advocacy_notifications.adapters.smtp import RelayUnavailable
from advocacy_notifications.api import router
from advocacy_notifications.consumers import CONSUMERS
from advocacy_notifications.features import chat, digests, expiring, mail, notices, nudges, reports, share_buttons
from advocacy_notifications.features.person_export import SECTIONS as EXPORT_SECTIONS
from advocacy_notifications.settings import NotificationsSettings

log = logging.getLogger("advocacy.notifications")


def _settings(runtime: Runtime) -> NotificationsSettings:
    s = runtime.settings
    assert isinstance(s, NotificationsSettings)
    return s


async def on_start(runtime: Runtime) -> None:
    s = _settings(runtime)
    LINK_KEY.configure(s.link_secret.get_secret_value() if s.link_secret else None)
    PUBLIC_BASE.configure(s.public_base_url)


async def digest_scheduler(runtime: Runtime, stop: asyncio.Event) -> None:
    """Worker processes: queue the digests, nudges and expiry notices that are due (every worker
    may run it; each message's unique key makes it once)."""
    s = _settings(runtime)
    clock = FileClock(s.clock_file)  # the real time, unless a test sets it (dev mode)
    buttons = share_buttons.from_settings(s.action_key, s.share_base_url, s.action_link_ttl_hours)
    compose = functools.partial(digests.compose_due, buttons=buttons)
    while not stop.is_set():
        # digests, nudges, expiry notices: each pass its own transaction (one failing holds up none)
        for name, pass_ in (
            ("digest", compose),
            ("nudge", nudges.compose_due),
            ("expiring", expiring.compose_due),
            ("report", reports.compose_pending),
            ("challenge notice", notices.compose_due),
        ):
            try:
                async with runtime.sessionmaker() as session, session.begin():
                    await pass_(session, clock(), base_url=s.public_base_url, limit=s.digest_batch)
            except Exception as e:
                log.warning("scheduler pass failed", extra={"pass": name, "error": f"{type(e).__name__}: {e}"})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), s.digest_interval_seconds)


async def mail_sender(runtime: Runtime, stop: asyncio.Event) -> None:
    """Worker processes: hand pending mail to the relay. An unreachable relay is retried after a
    growing pause (at most a minute); the messages wait, none is lost."""
    s = _settings(runtime)
    clock = FileClock(s.clock_file)
    loop = asyncio.get_running_loop()
    pause: float | None = None
    while not stop.is_set():
        began = loop.time()
        wait = s.send_interval_seconds
        try:
            sent = await mail.deliver_pending(runtime.sessionmaker, s, clock)
            pause = None
            if sent >= s.send_batch:
                wait = 0  # more is waiting
        except RelayUnavailable as e:
            pause = min(backoff(pause, loop.time() - began), 60.0)
            wait = max(wait, pause)
            log.warning("SMTP relay unavailable: mail waits", extra={"error": str(e)[:300], "retry_in_s": wait})
        except Exception as e:
            log.warning("mail pass failed", extra={"error": f"{type(e).__name__}: {e}"})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), wait)


async def chat_sender(runtime: Runtime, stop: asyncio.Event) -> None:
    """Worker processes: post pending messages to the tenants' Slack and Teams channels (each
    message's retries are its own: a failing channel delays only its messages)."""
    s = _settings(runtime)
    while not stop.is_set():
        wait = s.webhook_interval_seconds
        try:
            if await chat.deliver_pending(runtime.sessionmaker, s) >= s.webhook_batch:
                wait = 0  # more is waiting
        except Exception as e:
            log.warning("chat pass failed", extra={"error": f"{type(e).__name__}: {e}"})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), wait)


DEFINITION = ServiceDefinition(
    name="notifications",
    title="Advocacy notifications",
    description="Digests and notices to employees by email, fed by the other services' events.",
    routers=[router, export_router("notifications", EXPORT_SECTIONS)],
    consumers=CONSUMERS,
    worker_tasks=[digest_scheduler, mail_sender, chat_sender],
    on_start=on_start,
)


def create_app(settings: NotificationsSettings | None = None) -> FastAPI:
    return create_service_app(settings or NotificationsSettings(), DEFINITION)


def dev_env(place: DevPlace) -> Mapping[str, str]:
    """In a dev stack, the links in messages point at this process. (Mail goes to the stack's own
    SMTP server on the default port: `advocacy mail` reads what it kept.)"""
    return {"NOTIFICATIONS_PUBLIC_BASE_URL": f"http://127.0.0.1:{place.port}"}


REGISTRATION = Registration(
    name="notifications",
    settings_class=NotificationsSettings,
    create_app=create_app,
    dev_port=8005,
    dev_env=dev_env,
)


cli = service_cli("advocacy_notifications", NotificationsSettings)


def main() -> None:
    cli()
