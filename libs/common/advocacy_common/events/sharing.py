"""Events the sharing service publishes: shares, clicks and their verdicts, conversions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from advocacy_common import topics
from advocacy_common.events.base import EventData, register
from advocacy_common.money import Money


class Verdict(StrEnum):
    counted = "counted"
    bot = "bot"
    duplicate = "duplicate"
    self = "self"
    rate_limited = "rate_limited"


class _EmployeeKeyed(EventData):
    """Keyed by tenant + employee: an employee's shares, clicks and points stay in order."""

    employee_id: str

    def partition_key(self, tenant_id: str) -> str:
        return f"{tenant_id}:{self.employee_id}"


@register
class ShareCreated(_EmployeeKeyed):
    TYPE = "io.advocacy.share.created.v1"
    TOPIC = topics.SHARES
    PARTNER_VISIBLE = True

    share_id: str
    content_id: str
    network: str
    code: str
    created_at: datetime
    employee_name: str | None = None
    team: str | None = None
    audience_size: int = 0

    def subject(self) -> str | None:
        return self.share_id


@register
class ClickReceived(EventData):
    """A request on /r/{code}, as the redirect saw it. Internal to sharing: keyed by link so one
    consumer holds each link's history and decides duplicate / self verdicts."""

    TYPE = "io.advocacy.click.received.v1"
    TOPIC = topics.CLICKS_RAW

    click_id: str
    code: str
    received_at: datetime
    visitor: str
    # The same visitor under yesterday's key: the key rotates daily, so the duplicate and self checks
    # compare against both.
    visitor_prev: str | None = None
    user_agent: str = ""
    method: str = "GET"
    referrer: str | None = None
    country: str | None = None
    # Verdicts the redirect could decide alone (bot, rate_limited); None leaves it to the worker.
    edge_verdict: Verdict | None = None
    # The visitor's network (IPv4 /24, IPv6 /48; never the address) and whether the request carried
    # Accept-Language, for the mail-scanner rules. None: recorded before they were.
    ip_network: str | None = None
    accept_language: bool | None = None

    def partition_key(self, tenant_id: str) -> str:
        return f"{tenant_id}:{self.code}"


@register
class ShareClicked(_EmployeeKeyed):
    """A click on a tracked link with its verdict; only ``counted`` clicks earn points."""

    TYPE = "io.advocacy.share.clicked.v1"
    TOPIC = topics.CLICKS
    PARTNER_VISIBLE = True

    click_id: str
    share_id: str
    code: str
    content_id: str
    network: str
    clicked_at: datetime
    verdict: Verdict
    team: str | None = None
    device: str | None = None
    browser: str | None = None
    os: str | None = None
    referrer_domain: str | None = None
    country: str | None = None
    # Why a click is not counted, when the verdict is ``bot`` (``ua_not_browser``,
    # ``known_crawler:<source>``, ``preview_fetcher``, ``head_request``, ``scanner_timing``, ...);
    # None otherwise, and on clicks judged before reasons were recorded.
    reason: str | None = None

    def subject(self) -> str | None:
        return self.click_id


def click_event_id(click_id: str) -> str:
    """The envelope id of a click's :class:`ShareClicked`: sharing sets it (so a re-published click
    is the same event to every inbox), and consumers find what a click earned by it (gamification's
    award, on the ledger's unique (tenant, event id) index, when the click is invalidated)."""
    return f"clicked-{click_id}"


@register
class ClickInvalidated(_EmployeeKeyed):
    """An admin judged a counted click fraudulent after the fact: points and metrics are taken back
    by the consumers (a reversal), never by editing totals."""

    TYPE = "io.advocacy.share.click_invalidated.v1"
    TOPIC = topics.CLICKS
    PARTNER_VISIBLE = True

    click_id: str
    share_id: str
    content_id: str
    network: str
    team: str | None = None
    clicked_at: datetime
    reason: str
    invalidated_at: datetime

    def subject(self) -> str | None:
        return self.click_id


@register
class ConversionRecorded(_EmployeeKeyed):
    """A partner reported a conversion against a click, attributed to the click's share."""

    TYPE = "io.advocacy.conversion.recorded.v1"
    TOPIC = topics.CONVERSIONS
    PARTNER_VISIBLE = True

    conversion_id: str
    click_id: str
    share_id: str
    content_id: str
    network: str
    team: str | None = None
    kind: str  # signup | lead | sale
    value: Money | None = None
    external_id: str
    occurred_at: datetime

    def subject(self) -> str | None:
        return self.conversion_id


@register
class AccountUpdated(_EmployeeKeyed):
    """An employee's audience size on a network (reach is computed from it)."""

    TYPE = "io.advocacy.account.updated.v1"
    TOPIC = topics.SHARES

    network: str
    audience_size: int
    updated_at: datetime
