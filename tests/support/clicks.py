"""Events about a click, as sharing writes them: each repeats the click's id, its share, sharer,
content, network and team (what metrics and gamification key their facts by)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from advocacy_common.events.sharing import ClickInvalidated, ConversionRecorded, ShareClicked
from advocacy_common.money import Money


def _about(click: ShareClicked) -> dict[str, Any]:
    return {
        "click_id": click.click_id,
        "share_id": click.share_id,
        "employee_id": click.employee_id,
        "content_id": click.content_id,
        "network": click.network,
        "team": click.team,
    }


def invalidated(click: ShareClicked, *, reason: str, at: datetime) -> ClickInvalidated:
    """The click taken back (fraud found later) at ``at``."""
    return ClickInvalidated(**_about(click), clicked_at=click.clicked_at, reason=reason, invalidated_at=at)


def converted(
    click: ShareClicked, *, conversion_id: str, kind: str, value: Money | None, external_id: str, occurred_at: datetime
) -> ConversionRecorded:
    """A conversion a partner recorded for the click."""
    return ConversionRecorded(
        **_about(click),
        conversion_id=conversion_id,
        kind=kind,
        value=value,
        external_id=external_id,
        occurred_at=occurred_at,
    )
