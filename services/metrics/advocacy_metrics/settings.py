from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from advocacy_common.settings import ServiceSettings


class MetricsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="METRICS_", extra="ignore")
    service_name: ClassVar[str] = "metrics"
    default_port: ClassVar[int] = 8003
