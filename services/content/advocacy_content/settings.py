from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from advocacy_common.settings import ServiceSettings


class ContentSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CONTENT_", extra="ignore")
    service_name: ClassVar[str] = "content"
    default_port: ClassVar[int] = 8001
