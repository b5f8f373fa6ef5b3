"""Tenant settings, the contract: owned by the content service, copied by every other service from events.

The model lives here so every service reads the same fields with the same defaults. It is pure
(pydantic, no SQL): the settings event carries it. Each service's copy, its table and upsert, is
:mod:`advocacy_common.tenant_store`.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from advocacy_common.money import ISO_4217, DecimalStr, Money
from advocacy_common.networks import Network

# Bounds that keep a settings event far below the broker's message size, whatever an admin sends: a
# rate like "1e2000000" was accepted and serialised as two million digits (issue 12), and the relay
# then retried that row forever, holding up every tenant's content events.
# - an exchange rate: at most 24 significant digits, 12 of them after the point (1 unit of a
#   currency worth 10^-12 .. 10^12 of another covers every real pair);
# - an audience: at most 10^12 people (the world is 8 * 10^9).
Rate = Annotated[DecimalStr, Field(gt=0, max_digits=24, decimal_places=12)]
Audience = Annotated[int, Field(ge=0, le=10**12)]

Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: tuple[str, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class ClickAllowList(BaseModel):
    """Traffic a tenant needs counted though the bot rules would not count it (issue 21): a user agent
    its own people use (an intranet app's webview: a substring of the agent, case-insensitive) or a
    network (its offices' egress, CIDR). A click that matches is judged without the user-agent and
    scanner rules (a HEAD, the sharer's own click, a duplicate still count nothing). Changing it is a
    settings change, in the content service's audit log like every other."""

    model_config = ConfigDict(extra="ignore")

    user_agents: list[Annotated[str, Field(min_length=4, max_length=200)]] = Field(default_factory=list, max_length=50)
    networks: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=50)

    @field_validator("networks")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        out = []
        for raw in v:
            try:
                net = ipaddress.ip_network(raw.strip(), strict=False)
            except ValueError as e:
                raise ValueError(f"not a network {raw!r} (CIDR expected, e.g. 203.0.113.0/24)") from e
            if net.prefixlen < (8 if net.version == 4 else 32):
                raise ValueError(f"network {raw!r} is wider than /8 (IPv4) or /32 (IPv6)")
            out.append(str(net))
        return out


class DirectorySettings(BaseModel):
    """How the SCIM directory (content's ``/scim/v2``, issue 17) reads a provisioned person.

    - ``employee_id_from``: the SCIM attribute whose value is the employee id tokens name the person by
      (their subject). ``externalId`` (the default: Entra ID sends the user's object id, the ``oid``
      claim) falls back to ``userName`` when a user arrives without one; ``userName`` suits an identity
      provider whose tokens' subject is the login. Read once, when the user is created: an id never
      changes afterwards.
    - ``team_from``: ``group`` (the person's team is the SCIM group they belong to; in several, the
      first by name) or ``department`` (the enterprise extension's ``department``).
    - ``erase_inactive_after_days``: a person deactivated (``active: false``) this many days ago is
      erased, as a SCIM DELETE would (content's worker, hourly); none (the default) keeps them.
    """

    model_config = ConfigDict(extra="ignore")

    employee_id_from: Literal["externalId", "userName"] = "externalId"
    team_from: Literal["group", "department"] = "group"
    erase_inactive_after_days: int | None = Field(default=None, ge=1, le=3650)


class TenantSettings(BaseModel):
    """What an admin configures for a tenant (API.md ``/v1/tenant/settings``).

    Unknown fields are ignored here (events evolve additively); request bodies use
    :class:`TenantSettingsIn`, which refuses them.
    """

    model_config = ConfigDict(extra="ignore")

    time_zone: str = "UTC"
    week_starts_on: Weekday = "monday"
    base_currency: str = "EUR"
    # 1 unit of the key currency = this many units of base_currency
    exchange_rates: dict[str, Rate] = Field(default_factory=dict)
    brand_audience: dict[Network, Audience] = Field(default_factory=dict)
    programme_cost: Money | None = None  # per month
    cpc: dict[Network, Money] = Field(default_factory=dict)
    cpm: dict[Network, Money] = Field(default_factory=dict)
    second_approver_required: bool = False
    partner_webhook_url: str | None = Field(default=None, max_length=2048)
    attribution_window_days: int = Field(default=90, ge=1, le=365)
    # How long the audit log of admin actions keeps an entry (advocacy_common.audit).
    audit_retention_days: int = Field(default=365, ge=30, le=3650)
    # User agents and networks whose clicks skip the bot rules (sharing's verdict worker).
    click_allow: ClickAllowList = Field(default_factory=ClickAllowList)
    # How SCIM provisioning names people and teams (content's directory).
    directory: DirectorySettings = Field(default_factory=DirectorySettings)

    @field_validator("time_zone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {v!r} (IANA name expected, e.g. Europe/Berlin)") from e
        return v

    @field_validator("base_currency")
    @classmethod
    def _base(cls, v: str) -> str:
        if v.upper() not in ISO_4217:
            raise ValueError(f"unknown currency {v!r} (ISO 4217 code expected)")
        return v.upper()

    @field_validator("exchange_rates")
    @classmethod
    def _rates(cls, v: dict[str, Decimal]) -> dict[str, Decimal]:
        out = {}
        for code, rate in v.items():
            if code.upper() not in ISO_4217:
                raise ValueError(f"unknown currency {code!r} (ISO 4217 code expected)")
            if rate <= 0:
                raise ValueError(f"exchange rate for {code} must be positive")
            out[code.upper()] = rate
        return out

    @field_validator("brand_audience")
    @classmethod
    def _audience(cls, v: dict[Network, int]) -> dict[Network, int]:
        if any(n < 0 for n in v.values()):
            raise ValueError("audience sizes cannot be negative")
        return v

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def week_start_index(self) -> int:
        """0 = Monday ... 6 = Sunday (datetime.weekday())."""
        return WEEKDAYS.index(self.week_starts_on)


class TenantSettingsIn(TenantSettings):
    model_config = ConfigDict(extra="forbid")


DEFAULT_SETTINGS = TenantSettings()


def local_day(at: datetime, settings: TenantSettings) -> Any:
    """The tenant's calendar day of an instant (aggregates and windows use the tenant's time zone)."""
    return at.astimezone(settings.zone).date()
