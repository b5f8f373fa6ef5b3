"""Return on investment in the tenant's base currency, as pure functions.

ROI = (conversion value + earned media value - programme cost) / programme cost, where programme
cost = the monthly fee prorated over the range (each calendar month by the share of its days in
range) + the money value of rewards redeemed (and not cancelled) in the range.

Amounts in a currency without an exchange rate in the settings cannot be added up: conversion value
and earned media value in such a currency are reported apart and left out of ROI (the answer says
so); a programme cost that cannot be converted leaves ROI undefined rather than flattered.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from advocacy_common.money import Money
from advocacy_common.tenant import TenantSettings
from advocacy_metrics.domain.measures import BASIS, amount_str


@dataclass
class Converted:
    base: Decimal = Decimal(0)
    #: currency -> amount that had no exchange rate
    excluded: dict[str, Decimal] = field(default_factory=dict)


def to_base(amounts: dict[str, Decimal], settings: TenantSettings) -> Converted:
    """Sum ``amounts`` in the base currency; ``exchange_rates[c]`` is the base value of 1 unit of c."""
    out = Converted()
    for currency, amount in sorted(amounts.items()):
        if not currency or not amount:
            continue
        if currency == settings.base_currency:
            out.base += amount
        elif currency in settings.exchange_rates:
            out.base += amount * settings.exchange_rates[currency]
        else:
            out.excluded[currency] = out.excluded.get(currency, Decimal(0)) + amount
    return out


def prorated_fee(monthly: Money | None, start: date, end: date) -> Decimal:
    """The monthly fee over ``start``..``end`` (inclusive): each month by the share of its days in range."""
    if monthly is None or end < start:
        return Decimal(0)
    total = Decimal(0)
    day = start
    while day <= end:
        days_in_month = calendar.monthrange(day.year, day.month)[1]
        month_end = day.replace(day=days_in_month)
        last = min(end, month_end)
        total += monthly.amount * Decimal((last - day).days + 1) / Decimal(days_in_month)
        day = last + timedelta(days=1)
    return total


def money(amount: Decimal, currency: str) -> dict[str, str]:
    return {"amount": amount_str(amount), "currency": currency}


def roi_report(
    *,
    conversion_value: dict[str, Decimal],
    earned_media_value: dict[str, Decimal],
    rewards: dict[str, Decimal],
    settings: TenantSettings,
    start: date,
    end: date,
) -> dict[str, Any]:
    base = settings.base_currency
    conv = to_base(conversion_value, settings)
    emv = to_base(earned_media_value, settings)
    fee_amount = prorated_fee(settings.programme_cost, start, end)
    fee = to_base({settings.programme_cost.currency: fee_amount} if settings.programme_cost else {}, settings)
    reward_cost = to_base(rewards, settings)
    cost = fee.base + reward_cost.base
    net = conv.base + emv.base - cost

    excluded: list[dict[str, str]] = []
    notes: list[str] = []
    for what, converted in (
        ("conversion_value", conv),
        ("earned_media_value", emv),
        ("programme_fee", fee),
        ("rewards", reward_cost),
    ):
        for currency, amount in sorted(converted.excluded.items()):
            excluded.append({"what": what, **money(amount, currency)})
            label = what.replace("_", " ")
            if what in ("conversion_value", "earned_media_value"):
                notes.append(f"{label} in {currency} has no exchange rate to {base} in the settings: left out of ROI")
            else:
                notes.append(f"{label} in {currency} has no exchange rate to {base} in the settings: ROI is undefined")
    cost_complete = not fee.excluded and not reward_cost.excluded
    value: str | None = None
    if not cost_complete:
        pass
    elif cost == 0:
        notes.append("no programme cost in the range (set programme_cost in the tenant settings): ROI is undefined")
    else:
        value = format((net / cost).quantize(BASIS), "f")
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "base_currency": base,
        "conversion_value": [money(a, c) for c, a in sorted(conversion_value.items()) if c],
        "conversion_value_in_base": money(conv.base, base),
        "earned_media_value": money(emv.base, base),
        "programme_cost": {
            "fee": money(fee.base, base),
            "rewards": money(reward_cost.base, base),
            "total": money(cost, base),
        },
        "net_return": money(net, base),
        "roi": value,
        "excluded": excluded,
        "notes": notes,
    }
