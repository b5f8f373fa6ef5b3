"""Fact rows read back as domain facts (the rebuild and the readers select these column lists)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from advocacy_metrics import domain

# -- from rows to domain facts (positional: rows selected with these column lists) ------------------
SHARE_FIELDS = ("tenant_id", "share_id", "employee_id", "content_id", "network", "team", "created_at", "audience_size")
CLICK_FIELDS = (
    "tenant_id",
    "click_id",
    "employee_id",
    "content_id",
    "network",
    "team",
    "clicked_at",
    "verdict",
    "country",
    "device",
    "referrer_domain",
    "reason",
    "invalidated",
)
CONVERSION_FIELDS = (
    "tenant_id",
    "conversion_id",
    "click_id",
    "employee_id",
    "content_id",
    "network",
    "team",
    "occurred_at",
    "kind",
    "amount",
    "currency",
)


def fields_sql(fields: Sequence[str], alias: str) -> str:
    return ", ".join(f"{alias}.{f}" for f in fields)


def share_of(r: Sequence[Any]) -> domain.Share:
    return domain.Share(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7])


#: The click columns :func:`dims_at` reads, in its order.
DIMS_SQL = ("country", "device", "referrer_domain", "reason")


def dims_at(r: Sequence[Any], i: int) -> domain.Dims:
    """The dimensions in ``r[i:i+4]`` (:data:`DIMS_SQL`: country, device, referrer, reason)."""
    return domain.Dims(r[i] or "", r[i + 1] or "", r[i + 2] or "", r[i + 3] or "")


def click_of(r: Sequence[Any]) -> domain.Click:
    return domain.Click(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], dims_at(r, 8), bool(r[12]))


def conversion_of(r: Sequence[Any]) -> domain.Conversion:
    return domain.Conversion(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], Decimal(r[9]), r[10])
