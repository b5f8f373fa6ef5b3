"""Pure rules of the content service: statuses, audience and relevance, roll-out gates, captions,
policy versions, suggestion review, coaching access. No I/O, no FastAPI, no Kafka here."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

# Who sees an item (audience, expiry, roll-out gate) is decided in one place, shared with sharing's
# share check; re-exported here for the board's callers.
from advocacy_common.eligibility import Gate as Gate
from advocacy_common.eligibility import Viewer as Viewer
from advocacy_common.eligibility import WaveView as WaveView
from advocacy_common.eligibility import audience_matches as audience_matches
from advocacy_common.eligibility import board_gate as board_gate
from advocacy_common.eligibility import visible_on_board as visible_on_board
from advocacy_common.networks import RULES, Network
from advocacy_common.policy import Judgement, Policy, Violation, check_message, message_length


class Status:
    draft = "draft"
    scheduled = "scheduled"
    published = "published"
    expired = "expired"
    archived = "archived"
    pending_review = "pending_review"
    rejected = "rejected"

    ALL = (draft, scheduled, published, expired, archived, pending_review, rejected)
    # what sharing knows about (it has seen content.published): changes must reach its copy
    ANNOUNCED = (published, expired)
    EDITABLE = (draft, scheduled, published, expired, pending_review)


PROGRAMME_ROLES = ("sharer", "creator", "champion")
LEADERBOARD_CHOICES = ("ranked", "anonymous", "hidden")
# An item counts as new on the board for this long after publication.
NEW_FOR = timedelta(hours=72)


class RuleError(Exception):
    """A business rule refused the request: ``field`` names the input at fault (422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class StateError(Exception):
    """The resource is not in a state that allows the action (409)."""


# -- status and schedule ------------------------------------------------------------------------------
def initial_status(now: datetime, publish_at: datetime | None) -> str:
    """Published at once unless ``publish_at`` is in the future."""
    if publish_at is not None and publish_at > now:
        return Status.scheduled
    return Status.published


def check_schedule(publish_at: datetime | None, expires_at: datetime | None, now: datetime) -> None:
    """Expiry after publication (or after now, when publication is immediate or past)."""
    if expires_at is None:
        return
    if publish_at is not None and expires_at <= publish_at:
        raise RuleError("expires_at", "must be after publish_at")
    if expires_at <= now:
        raise RuleError("expires_at", "must be in the future")


def slugify(title: str, max_length: int = 60) -> str:
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:max_length].rstrip("-") or "content"


def normalize_topics(topics: Iterable[str]) -> list[str]:
    """Topics compare case-insensitively: stored trimmed, lower-case, deduplicated, in order."""
    out: dict[str, None] = {}
    for t in topics:
        key = " ".join(t.split()).casefold()
        if key:
            out[key] = None
    return list(out)


# -- audience and relevance ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Relevance:
    new: bool
    followed_topic: bool
    shared: bool

    @property
    def score(self) -> int:
        """Not yet shared weighs most, then a followed topic, then newness: an item with all three
        comes first, an item the viewer already shared sinks below every unshared one."""
        return (0 if self.shared else 4) + (2 if self.followed_topic else 0) + (1 if self.new else 0)


def relevance(
    *, published_at: datetime | None, topics: Iterable[str], viewer: Viewer, shared: bool, now: datetime
) -> Relevance:
    return Relevance(
        new=published_at is not None and published_at > now - NEW_FOR,
        followed_topic=bool(set(topics) & viewer.topics),
        shared=shared,
    )


def board_order_key(score: int, published_at: datetime, item_id: str) -> tuple[int, float, Descending]:
    """Sort ascending by this key: highest score, then newest, then id (descending) first."""
    return (-score, -published_at.timestamp(), Descending(item_id))


@functools.total_ordering
class Descending:
    """A string that sorts in reverse (code point) order."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Descending) and self.value == other.value

    def __lt__(self, other: Descending) -> bool:
        return self.value > other.value

    def __hash__(self) -> int:
        return hash(self.value)


# -- captions -----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CaptionReport:
    """Per network: hard errors (over the network's own limit: refused) and policy issues (kept,
    shown to admins)."""

    errors: dict[str, str] = field(default_factory=dict)
    issues: dict[str, list[Violation]] = field(default_factory=dict)


def check_captions(
    policy: Policy,
    captions: Mapping[str, str],
    link_sample: str | None,
    judged: Mapping[str, Judgement] | None = None,
) -> CaptionReport:
    """Judge every caption as it would be posted: with the tracked link appended (``link_sample``
    stands in for it: X counts any link as 23, other networks count its characters). ``judged``: each
    caption's length and policy violations when they were found elsewhere (the service judges off
    the event loop, :mod:`advocacy_common.policycheck`); otherwise they are found here."""
    report = CaptionReport()
    for name, text in captions.items():
        network = Network(name)
        hard = RULES[network].max_length
        if judged is not None:
            length, found = judged[name].length, judged[name].violations
        else:
            length = message_length(network, text, link_sample)
            found = check_message(policy, network, text, link=link_sample)
        if length > hard:
            report.errors[name] = f"{length} characters with the tracked link; {network} allows {hard}"
        if found:
            report.issues[name] = found
    return report


def caption_messages(captions: Mapping[str, str], link_sample: str | None) -> list[tuple[Network, str, str | None]]:
    """The captions as the messages the policy judges, in the order of ``captions``."""
    return [(Network(name), text, link_sample) for name, text in captions.items()]


# -- policy versions ----------------------------------------------------------------------------------
POLICY_FIELDS = ("guidelines", "blocked_terms", "required_disclosures", "allowed_domains", "max_lengths")


def policy_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What changed between two policy documents, field by field (lists: added/removed; maps: set/
    removed keys; text: changed)."""
    changes: list[dict[str, Any]] = []
    for name in POLICY_FIELDS:
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        if isinstance(after, list):
            b, a = list(before or []), after
            in_b, in_a = set(b), set(a)  # 2,000 terms: membership in a list was 4 million comparisons
            changes.append(
                {
                    "field": name,
                    "added": [x for x in a if x not in in_b],
                    "removed": [x for x in b if x not in in_a],
                }
            )
        elif isinstance(after, dict):
            b2: dict[str, Any] = dict(before or {})
            changes.append(
                {
                    "field": name,
                    "set": {k: v for k, v in after.items() if b2.get(k) != v},
                    "removed": [k for k in b2 if k not in after],
                }
            )
        else:
            changes.append(
                {"field": name, "changed": True, "length_before": len(before or ""), "length": len(after or "")}
            )
    return changes


# -- suggestions --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ReviewOutcome:
    approvals: list[dict[str, Any]]
    approved: bool


def approve(
    *,
    status: str,
    proposer_id: str | None,
    approvals: Sequence[Mapping[str, Any]],
    admin_id: str,
    at: datetime,
    second_approver_required: bool,
) -> ReviewOutcome:
    """Record an admin's approval; the suggestion is approved once enough distinct admins agree."""
    if status != Status.pending_review:
        raise StateError(f"only a suggestion pending review can be approved (it is {status})")
    if proposer_id is not None and proposer_id == admin_id:
        raise StateError("you cannot approve your own suggestion")
    if any(a.get("by") == admin_id for a in approvals):
        raise StateError("you already approved this suggestion; a second, different admin must approve it")
    recorded = [dict(a) for a in approvals] + [{"by": admin_id, "at": at.isoformat()}]
    needed = 2 if second_approver_required else 1
    return ReviewOutcome(recorded, len(recorded) >= needed)


# -- coaching -----------------------------------------------------------------------------------------
def can_read_coaching(*, requester_id: str, viewer_id: str, roles: frozenset[str]) -> bool:
    """Only the requester, coaches and admins of the tenant read a thread."""
    return viewer_id == requester_id or "coach" in roles or "admin" in roles


def coaching_reply_role(*, requester_id: str, viewer_id: str, roles: frozenset[str]) -> str | None:
    """As whom the viewer may reply (the requester or a coach), or None."""
    if viewer_id == requester_id:
        return "requester"
    if "coach" in roles:
        return "coach"
    return None
