"""Events the metrics service publishes (topic ``advocacy.metrics``).

The weekly programme report (issue 18): metrics composes it once per tenant and week from the same
queries and measures its API answers with, and notifications mails it to the tenant's admins. The
figures are metrics'; no one downstream recomputes them. Bounded: at most :data:`TOP_N` entries
per top list, so an event stays a few kilobytes whatever the tenant's size.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from advocacy_common import topics
from advocacy_common.events.base import EventData, register

#: Entries in each top list of the report.
TOP_N = 10


class Figures(BaseModel):
    """One period's totals, as ``GET /v1/metrics/summary`` gives them in ``totals``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    shares: int
    clicks: int = Field(description="Counted (unique human) clicks.")
    reach: int
    conversions: int


class Adoption(BaseModel):
    """The week's adoption, as ``GET /v1/metrics/adoption`` gives it for a range ending on the
    week's last day: the eligible workforce, and the eligible people who shared that week."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    eligible: int
    eligible_source: str  # directory | enrolled
    sharers: int
    share_rate: float | None


class Ranked(Figures):
    """One entry of a top list: a content item or an employee (by id; names are the reader's)."""

    key: str


class Week(BaseModel):
    """One week's figures: ``start`` to ``end`` inclusive, days in the tenant's time zone."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    start: date
    end: date
    totals: Figures
    adoption: Adoption
    top_content: list[Ranked] = Field(default_factory=list, max_length=TOP_N)
    top_advocates: list[Ranked] = Field(default_factory=list, max_length=TOP_N)


@register
class WeeklyReportComposed(EventData):
    """A tenant's programme report for the week that ended, with the week before for comparison.
    One per tenant and week (``report_id`` is the same on a re-publication). Keyed by tenant."""

    TYPE = "io.advocacy.report.weekly.v1"
    TOPIC = topics.METRICS

    report_id: str
    time_zone: str
    week: Week
    previous: Week
    composed_at: datetime

    def subject(self) -> str | None:
        return self.week.start.isoformat()
