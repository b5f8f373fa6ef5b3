from __future__ import annotations

from typing import ClassVar

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
    partner_topic_partitions: int = 3


# The CloudEvents source of every event this service publishes.
SOURCE = ContentSettings.event_source()
