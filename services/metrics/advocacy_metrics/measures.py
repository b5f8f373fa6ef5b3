"""The measures, as pure functions of summed aggregates and the tenant's settings.

- click-through per share = counted clicks / shares
- conversion rate = conversions / counted clicks
- potential reach = sum of each share's audience size at share time (summed in the aggregates)
- amplification = reach / the brand's own audience, over the networks where the admin set one
- earned media value = per network, counted clicks x CPC + reach / 1000 x CPM (per currency)

A ratio with a zero denominator is ``None`` (not zero: nothing to divide by). Money stays per
currency here; :mod:`advocacy_metrics.roi` converts to the base currency.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from advocacy_common.tenant import TenantSettings
from advocacy_metrics.domain import VERDICTS, Sum

CENT = Decimal("0.01")
BASIS = Decimal("0.0001")


@dataclass
class StatSums:
    shares: int = 0
    reach: int = 0
    clicks: dict[str, int] = field(default_factory=lambda: dict.fromkeys(VERDICTS, 0))

    def add(self, other: StatSums) -> None:
        self.shares += other.shares
        self.reach += other.reach
        for v, n in other.clicks.items():
            self.clicks[v] += n


@dataclass
class GroupTotals:
    """One group's sums: stats per network, conversions per (kind, currency)."""

    by_network: dict[str, StatSums] = field(default_factory=dict)
    conversions: dict[tuple[str, str], Sum] = field(default_factory=dict)

    def network(self, name: str) -> StatSums:
        return self.by_network.setdefault(name, StatSums())

    def conversion(self, kind: str, currency: str) -> Sum:
        return self.conversions.setdefault((kind, currency), Sum())

    def add(self, other: GroupTotals) -> None:
        for n, s in other.by_network.items():
            self.network(n).add(s)
        for (kind, cur), c in other.conversions.items():
            self.conversion(kind, cur).add(c.count, c.amount)

    @property
    def stats(self) -> StatSums:
        total = StatSums()
        for s in self.by_network.values():
            total.add(s)
        return total


def amount_str(amount: Decimal) -> str:
    """A decimal string with at least 2 decimals and at most 4 (``"12.50"``, ``"0.0125"``)."""
    q = amount.quantize(BASIS, rounding=ROUND_HALF_EVEN)
    if q == q.quantize(CENT):
        return format(q.quantize(CENT), "f")
    return format(q.normalize(), "f")


def money_list(amounts: dict[str, Decimal]) -> list[dict[str, str]]:
    """``[{"amount": "12.50", "currency": "EUR"}, ...]`` sorted by currency; no-value ("") left out."""
    return [{"amount": amount_str(a), "currency": c} for c, a in sorted(amounts.items()) if c]


def ratio(numerator: int | Decimal, denominator: int | Decimal) -> float | None:
    return None if not denominator else float(numerator) / float(denominator)


def conversion_values(conversions: dict[tuple[str, str], Sum]) -> dict[str, Decimal]:
    out: defaultdict[str, Decimal] = defaultdict(Decimal)
    for (_kind, currency), s in conversions.items():
        if currency:
            out[currency] += s.amount
    return dict(out)


def earned_media_value(by_network: dict[str, StatSums], settings: TenantSettings) -> dict[str, Decimal]:
    """Counted clicks x CPC + reach / 1000 x CPM, per network, summed per currency."""
    out: defaultdict[str, Decimal] = defaultdict(Decimal)
    cpc = {str(k): v for k, v in settings.cpc.items()}
    cpm = {str(k): v for k, v in settings.cpm.items()}
    for network, s in by_network.items():
        if network in cpc:
            out[cpc[network].currency] += s.clicks["counted"] * cpc[network].amount
        if network in cpm:
            out[cpm[network].currency] += Decimal(s.reach) / 1000 * cpm[network].amount
    return dict(out)


def amplification(
    by_network: dict[str, StatSums], settings: TenantSettings, scope: Sequence[str] | None
) -> float | None:
    """Employees' reach over the brand's own audience, on the networks with a brand audience set
    (``scope`` narrows to some networks, e.g. the group's own when grouping by network)."""
    brand = {str(k): v for k, v in settings.brand_audience.items() if v > 0}
    if scope is not None:
        brand = {k: v for k, v in brand.items() if k in scope}
    reach = sum(s.reach for n, s in by_network.items() if n in brand)
    return ratio(reach, sum(brand.values()))


def measures(
    g: GroupTotals, settings: TenantSettings, *, with_shares: bool = True, scope: Sequence[str] | None = None
) -> dict[str, Any]:
    """Every measure of one group. ``with_shares=False`` for click-only dimensions (country,
    device, referrer): shares carry none, so share-based measures are ``None`` there."""
    s = g.stats
    counted = s.clicks["counted"]
    conversions = sum(c.count for c in g.conversions.values())
    by_kind: defaultdict[str, int] = defaultdict(int)
    for (kind, _cur), c in g.conversions.items():
        by_kind[kind] += c.count
    return {
        "shares": s.shares if with_shares else None,
        "reach": s.reach if with_shares else None,
        "clicks": counted,
        "clicks_by_verdict": dict(s.clicks),
        "click_through": ratio(counted, s.shares) if with_shares else None,
        "conversions": conversions,
        "conversions_by_kind": dict(sorted(by_kind.items())),
        "conversion_value": money_list(conversion_values(g.conversions)),
        "conversion_rate": ratio(conversions, counted),
        "amplification": amplification(g.by_network, settings, scope) if with_shares else None,
        "earned_media_value": money_list(earned_media_value(g.by_network, settings)) if with_shares else None,
    }


def merge(groups: Iterable[GroupTotals]) -> GroupTotals:
    total = GroupTotals()
    for g in groups:
        total.add(g)
    return total
