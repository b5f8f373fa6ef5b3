"""The gamification service's app factory and command line."""

from __future__ import annotations

from fastapi import FastAPI

from advocacy_common.entrypoint import service_cli
from advocacy_common.runtime import ServiceDefinition, create_service_app
from advocacy_gamification.api import router
from advocacy_gamification.consumers import CONSUMERS
from advocacy_gamification.settings import GamificationSettings

DEFINITION = ServiceDefinition(
    name="gamification",
    title="Advocacy gamification",
    description="Points ledger, leaderboards, badges, challenges and rewards.",
    routers=[router],
    consumers=CONSUMERS,
)


def create_app(settings: GamificationSettings | None = None) -> FastAPI:
    return create_service_app(settings or GamificationSettings(), DEFINITION)


cli = service_cli("advocacy_gamification", GamificationSettings)


def main() -> None:
    cli()
