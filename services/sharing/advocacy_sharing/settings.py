from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from advocacy_common.settings import ServiceSettings


class SharingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SHARING_", extra="ignore")
    service_name: ClassVar[str] = "sharing"
    default_port: ClassVar[int] = 8002

    public_base_url: str = "http://127.0.0.1:8002"
    # Secret for the daily-rotating visitor hash (HMAC of IP + user agent). Set it in production.
    visitor_secret: str = "dev-visitor-secret"
    spool_dir: str = ".data/spool"
    link_cache_size: int = 200_000
