from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from advocacy_common.settings import ServiceSettings


class MetricsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="METRICS_", extra="ignore")
    service_name: ClassVar[str] = "metrics"
    default_port: ClassVar[int] = 8003

    # A backlog is drained in batches this large: the aggregate rows (per person, content, day)
    # move once per batch, so a larger batch moves fewer rows per event (harness, 2,000 people:
    # 1,000 -> 5,000 cut the database time per click by a third; pipeline bench, 5,000 -> 9,000 with one
    # batch in hand: +19 % events/s, ADR 0037). A caught-up consumer gets small batches whatever this
    # says. Clicks (~350 bytes) stay under the runner's byte bound (BATCH_MAX_BYTES) at this count.
    consumer_batch_max: int = 9000
    # How often a worker looks for tenants whose weekly report is due (issue 18). A report is due
    # from 06:00 local on the first day of the tenant's week; it is composed once whatever this is.
    report_interval_seconds: float = Field(300.0, gt=0)


# The CloudEvents source of every event this service publishes.
SOURCE = MetricsSettings.event_source()
