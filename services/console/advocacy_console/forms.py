"""Pure translations between the console's HTML forms and the public APIs' JSON (no I/O, no FastAPI).

A form field is always a string; the APIs want lists, objects and RFC 3339 times. Everything a form
sends is bounded here before it is sent on (the APIs bound it again and say why in a 422).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

# Ids the services issue: letters, digits, - and _ (anything else cannot be one: a 404 here).
ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# The networks a caption can be written for, in the order the editor shows them (content's
# ``Network`` enum; the first two are open by default, the others behind "more networks").
NETWORKS = (
    "linkedin",
    "x",
    "facebook",
    "xing",
    "instagram",
    "threads",
    "bluesky",
    "whatsapp",
    "telegram",
    "reddit",
    "email",
)
# Targeting: the audience's dimensions the editor offers, with the API's per-dimension bound.
AUDIENCE = ("teams", "departments", "locations", "topics")
# Programme roles are a fixed set (content's enum): one checkbox each, ``role_<name>``.
PROGRAMME_ROLES = ("sharer", "creator", "champion")
MAX_AUDIENCE_VALUES = 100
MAX_TAGS = 30
# A caption is at most this long (content's schema); the policy check says what the network allows.
MAX_CAPTION = 10_000
# The datetime-local input's value ("2026-12-03T09:30"), read as UTC: the editor labels it so.
LOCAL_MINUTE = "%Y-%m-%dT%H:%M"
# Rows of the top-content and top-advocates tables.
TOP_N = 10


class FormError(ValueError):
    """A field that cannot be what the API expects; the message names the field."""


def dict_of(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def split_list(value: str, limit: int) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``, at most ``limit`` values, duplicates once."""
    out: list[str] = []
    for part in value.split(","):
        part = part.strip()
        if part and part not in out:
            out.append(part)
    return out[:limit]


def utc_time(value: str, field: str) -> str | None:
    """A datetime-local value (UTC) as RFC 3339, or None when empty."""
    value = value.strip()
    if not value:
        return None
    try:
        moment = datetime.strptime(value[:16], LOCAL_MINUTE)
    except ValueError as e:
        raise FormError(f"{field}: a date and time like 2026-12-03T09:30") from e
    return moment.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")


def local_minute(value: Any) -> str:
    """An API time (RFC 3339) as the datetime-local value in UTC; "" when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return ""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return ""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime(LOCAL_MINUTE)


def content_body(form: dict[str, str]) -> dict[str, Any]:
    """The editor's form as content's ``ContentCreate`` (also a full ``ContentPatch``: every field
    sent, so an emptied field is cleared: ``body``, ``publish_at`` and ``expires_at`` as null)."""
    publish_at = utc_time(form.get("publish_at", ""), "Publish at")
    expires_at = utc_time(form.get("expires_at", ""), "Expires at")
    if publish_at and expires_at and expires_at <= publish_at:
        raise FormError("Expires at: after the publication time")
    body = form.get("body", "").strip()
    return {
        "title": form.get("title", "").strip(),
        "url": form.get("url", "").strip(),
        "body": body or None,
        "tags": split_list(form.get("tags", ""), MAX_TAGS),
        "captions": {
            net: form[f"caption_{net}"][:MAX_CAPTION] for net in NETWORKS if form.get(f"caption_{net}", "").strip()
        },
        "audience": {
            **{dim: split_list(form.get(dim, ""), MAX_AUDIENCE_VALUES) for dim in AUDIENCE},
            "programme_roles": [r for r in PROGRAMME_ROLES if form.get(f"role_{r}")],
        },
        "publish_at": publish_at,
        "expires_at": expires_at,
    }


def content_values(item: dict[str, Any]) -> dict[str, str]:
    """A content item (``ContentPublic``) as the editor's field values: the inverse of ``content_body``."""
    audience, captions = dict_of(item.get("audience")), dict_of(item.get("captions"))
    values = {
        "title": str(item.get("title") or ""),
        "url": str(item.get("url") or ""),
        "body": str(item.get("body") or ""),
        "tags": ", ".join(str(t) for t in item.get("tags") or []),
        "publish_at": local_minute(item.get("publish_at")),
        "expires_at": local_minute(item.get("expires_at")),
    }
    for dim in AUDIENCE:
        values[dim] = ", ".join(str(v) for v in audience.get(dim) or [])
    for role in PROGRAMME_ROLES:
        values[f"role_{role}"] = "on" if role in (audience.get("programme_roles") or []) else ""
    for net in NETWORKS:
        values[f"caption_{net}"] = str(captions.get(net) or "")
    return values


def changed_fields(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``new`` that differ from ``old``: a PATCH sends only what the editor changed
    (a time left as it was is not re-sent, rounded to the minute the form shows)."""
    return {k: v for k, v in new.items() if old.get(k) != v}


def items_of(body: Any) -> list[dict[str, Any]]:
    """The ``items`` of an API page (objects only)."""
    items = body.get("items", []) if isinstance(body, dict) else []
    return [i for i in items if isinstance(i, dict)]


# -- rules ------------------------------------------------------------------------------------------
POINT_FIELDS = ("share", "click", "suggestion_approved")
CONVERSION_FIELDS = ("signup", "lead", "sale")
CAP_FIELDS = ("share", "click", "conversion", "suggestion_approved")
# A points value or a cap (gamification's bound on each).
MAX_POINTS = 1_000_000


def _int(form: dict[str, str], name: str, label: str, *, optional: bool = False) -> int | None:
    raw = form.get(name, "").strip()
    if not raw and optional:
        return None
    try:
        value = int(raw)
    except ValueError as e:
        raise FormError(f"{label}: a whole number") from e
    if not 0 <= value <= MAX_POINTS:
        raise FormError(f"{label}: between 0 and {MAX_POINTS:,}")
    return value


def rules_body(form: dict[str, str], current: dict[str, Any]) -> dict[str, Any]:
    """The rules form as gamification's ``RulesIn``: points, conversions, daily caps and the share
    mode from the form; multipliers and badges as they are now (the page does not edit them)."""
    points: dict[str, Any] = {f: _int(form, f"points_{f}", f"Points per {f.replace('_', ' ')}") for f in POINT_FIELDS}
    points["conversion"] = {f: _int(form, f"conversion_{f}", f"Points per {f}") for f in CONVERSION_FIELDS}
    caps = {f: _int(form, f"cap_{f}", f"Daily cap on {f.replace('_', ' ')}", optional=True) for f in CAP_FIELDS}
    per = form.get("share_points_per", "content")
    if per not in ("content", "network"):
        raise FormError("Share points: per content or per network")
    multipliers = [
        {k: m.get(k) for k in ("name", "factor", "actions", "content_ids", "starts_at", "ends_at")}
        for m in current.get("multipliers") or []
        if isinstance(m, dict)
    ]
    body: dict[str, Any] = {
        "points": points,
        "daily_caps": caps,
        "multipliers": multipliers,
        "share_points_per": per,
    }
    if isinstance(current.get("badges"), dict):
        body["badges"] = current["badges"]
    return body


def rules_values(rules: dict[str, Any]) -> dict[str, str]:
    """Current rules (``CurrentRules``) as the rules form's field values."""
    points = dict_of(rules.get("points"))
    conversion = dict_of(points.get("conversion"))
    caps = dict_of(rules.get("daily_caps"))
    values = {f"points_{f}": str(points.get(f, "")) for f in POINT_FIELDS}
    values.update({f"conversion_{f}": str(conversion.get(f, "")) for f in CONVERSION_FIELDS})
    values.update({f"cap_{f}": "" if caps.get(f) is None else str(caps[f]) for f in CAP_FIELDS})
    values["share_points_per"] = str(rules.get("share_points_per") or "content")
    return values


def simulation_rows(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Gamification's ``SimulatedBoard`` items as before/after rows: rank and points now, under the
    proposed rules, and the change (a positive ``moved`` is places gained)."""
    rows = []
    for entry in items:
        before_rank, after_rank = entry.get("current_rank"), entry.get("rank")
        before, after = int(entry.get("current_points") or 0), int(entry.get("points") or 0)
        moved = before_rank - after_rank if isinstance(before_rank, int) and isinstance(after_rank, int) else None
        rows.append(
            {
                "who": entry.get("name") or entry.get("employee_id") or "anonymous",
                "team": entry.get("team") or "",
                "before_rank": before_rank,
                "after_rank": after_rank,
                "before_points": before,
                "after_points": after,
                "delta": after - before,
                "moved": moved,
            }
        )
    return rows
