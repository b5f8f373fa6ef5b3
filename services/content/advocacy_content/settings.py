from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from advocacy_common.settings import ServiceSettings


class ContentSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CONTENT_", extra="ignore")
    service_name: ClassVar[str] = "content"
    default_port: ClassVar[int] = 8001

    # The tracked link sharing appends to a caption, for judging caption lengths when they are
    # saved (X counts any link as 23; other networks count its characters).
    tracked_link_sample: str = "https://share.example.com/r/AbCdEfGhIjKl"
    # How often the scheduler looks for new work at most (it also wakes exactly when an item is due).
    scheduler_poll_seconds: float = 0.5
    # Partner webhooks to private/loopback addresses are refused unless this is set (tests, labs).
    webhook_allow_private: bool = False
    # One webhook call, all of it (resolve, connect, TLS, send, answer), must finish within this;
    # at most this much of the partner's answer is read (docs/partners.md, "Webhooks").
    webhook_deadline_seconds: float = Field(default=10.0, gt=0, le=60)
    webhook_max_response_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)
    # Deliveries one endpoint is given at a time, how many of them are sent side by side, and
    # endpoints served at once per worker process: a slow endpoint holds one of these, never the others.
    webhook_per_endpoint: int = Field(default=5, ge=1, le=100)
    webhook_parallel_per_endpoint: int = Field(default=4, ge=1, le=100)
    webhook_max_endpoints_in_flight: int = Field(default=32, ge=1, le=1000)
    # A secret rotation keeps the previous secret signing (both signatures sent) this long by default
    # (a rotation may ask for 0 .. 168 hours), so partners switch without a failed delivery.
    webhook_secret_overlap_hours: int = Field(default=24, ge=0, le=168)
    # The delivery log (deliveries and their attempts) keeps finished deliveries this long.
    webhook_log_retention_days: int = Field(default=30, ge=1, le=3650)
    partner_topic_partitions: int = 3


# The CloudEvents source of every event this service publishes.
SOURCE = ContentSettings.event_source()
