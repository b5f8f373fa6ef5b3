from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from advocacy_common.settings import ServiceSettings


class GamificationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GAMIFICATION_", extra="ignore")
    service_name: ClassVar[str] = "gamification"
    default_port: ClassVar[int] = 8004
