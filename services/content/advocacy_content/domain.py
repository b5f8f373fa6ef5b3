"""Pure rules of the advocacy board: status, audience matching, slugs. No I/O here."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


class Status:
    draft = "draft"
    scheduled = "scheduled"
    published = "published"
    expired = "expired"
    archived = "archived"
    pending_review = "pending_review"
    rejected = "rejected"

    ALL = (draft, scheduled, published, expired, archived, pending_review, rejected)


def initial_status(now: datetime, publish_at: datetime | None) -> str:
    """Published at once unless ``publish_at`` is in the future."""
    if publish_at is not None and publish_at > now:
        return Status.scheduled
    return Status.published


def slugify(title: str, max_length: int = 60) -> str:
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:max_length].rstrip("-") or "content"


@dataclass(frozen=True, slots=True)
class Viewer:
    team: str | None
    programme_roles: frozenset[str] = frozenset()
    topics: frozenset[str] = frozenset()


def audience_matches(audience: dict[str, Iterable[str]], viewer: Viewer) -> bool:
    """An empty dimension matches everyone; a non-empty one must contain the viewer's value."""
    teams = set(audience.get("teams") or ())
    if teams and (viewer.team is None or viewer.team not in teams):
        return False
    roles = set(audience.get("programme_roles") or ())
    return not (roles and not roles & viewer.programme_roles)


def visible_on_board(status: str, expires_at: datetime | None, now: datetime) -> bool:
    return status == Status.published and (expires_at is None or expires_at > now)
