"""Notifications' pure rules: what a person receives, when, and the links a message carries.

No I/O and no clock: ``now`` is always passed in (the scheduler's clock is injected, so tests drive
it). Who may see an item is not decided here: that is :mod:`advocacy_common.eligibility`, the
predicate content's board and sharing's check use, so a digest lists exactly what the board shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class Frequency(StrEnum):
    daily = "daily"
    weekly = "weekly"
    off = "off"
    # every category but the digest: each message when its moment comes (:func:`frequencies`)
    on = "on"


class Category(StrEnum):
    """What a message is about. Only the digest so far; per-event notices (badges, approvals...)
    join as categories of their own, each with its own preference."""

    digest = "digest"
    nudge = "nudge"  # you have not shared in a while
    expiring = "expiring"  # an item on your board you have not shared expires soon
    # per-event notices (features/notices.py)
    suggestions = "suggestions"  # your suggestion was approved or rejected
    coaching = "coaching"  # a coach replied to your request
    badges = "badges"  # you earned a badge
    challenges = "challenges"  # a challenge started, ended, you (or your team) won
    rewards = "rewards"  # a reward you redeemed was handed over
    report = "report"  # the weekly programme report, to admins


class Channel(StrEnum):
    email = "email"


class MessageState(StrEnum):
    """A message moves pending -> sent, or pending -> failed (a permanent refusal: the address is
    then suppressed), or pending -> cancelled (the person opted out of the programme, was
    deactivated, turned the category off, or their address bounced); never back. A message in
    ``sent`` is never handed to a channel again."""

    pending = "pending"
    sent = "sent"
    failed = "failed"
    cancelled = "cancelled"


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

# A new tenant's defaults: a weekly digest at 9 in the morning, local time, on the first day of the
# tenant's week. Weekly rather than daily: a person who chose nothing hears from us least.
DEFAULT_FREQUENCY = Frequency.weekly
DEFAULT_DIGEST_HOUR = 9

# A digest never reaches further back than this, even after a long scheduler outage or a person's
# first digest after a long silence: old news is not news.
MAX_LOOKBACK = timedelta(days=14)
# At most this many items in one digest (the newest first); a busy board is summarised, not dumped.
MAX_DIGEST_ITEMS = 20

# Sending retries: a transient failure (the relay unreachable, a 4xx reply) waits base * 2^attempts,
# at most RETRY_CAP. Nothing is ever dropped for being late: an outage delays mail, it loses none.
RETRY_CAP = timedelta(hours=1)


# A person who has not shared for this many days gets a nudge, once per such period of silence
# (tenant setting; 0 turns nudges off). A month: the "have not shared in a month".
DEFAULT_NUDGE_AFTER_DAYS = 30
MAX_NUDGE_AFTER_DAYS = 365
# People hear about an item on their board they have not shared this long before it expires
# (tenant setting). A day: time to share it, not so early that it is not yet urgent.
DEFAULT_EXPIRING_NOTICE_HOURS = 24
MAX_EXPIRING_NOTICE_HOURS = 24 * 14


class Language(StrEnum):
    """The languages messages are written in (``adapters/templates/<language>/``; English is the
    fallback of every other). The member's choice, else the tenant's default, else English."""

    en = "en"
    de = "de"


@dataclass(frozen=True, slots=True)
class Defaults:
    """A tenant's defaults for people who chose nothing."""

    digest_frequency: Frequency = DEFAULT_FREQUENCY
    digest_hour: int = DEFAULT_DIGEST_HOUR
    nudge_after_days: int = DEFAULT_NUDGE_AFTER_DAYS
    expiring_notice_hours: int = DEFAULT_EXPIRING_NOTICE_HOURS
    # the quiet hours of people who set none of their own; None: messages go at any hour
    quiet_hours: QuietHours | None = None
    # the language of the messages of people who chose none and whose directory entry has none
    language: Language = Language.en


def effective_frequency(chosen: Frequency | None, defaults: Defaults) -> Frequency:
    """The person's own choice when they made one, the tenant's default otherwise."""
    return chosen if chosen is not None else defaults.digest_frequency


def frequencies(category: Category) -> tuple[Frequency, ...]:
    """What may be chosen for ``category``: the digest comes daily or weekly; every other category
    is one message when its moment comes (an approval, a badge, a nudge), ``on`` or ``off``."""
    if category is Category.digest:
        return (Frequency.daily, Frequency.weekly, Frequency.off)
    return (Frequency.on, Frequency.off)


def frequency_of(
    category: Category, chosen: Frequency | None, tenant_default: Frequency | None, defaults: Defaults
) -> Frequency:
    """What applies to a person for ``category``: their own choice, else the tenant's default for
    the category, else ``on`` (a new category reaches people unless their tenant turned it off).
    The digest's default is the tenant's digest frequency."""
    if chosen is not None:
        return chosen
    if category is Category.digest:
        return defaults.digest_frequency
    return tenant_default if tenant_default is not None else Frequency.on


# A notice is news only this long after its event: a consumer that starts on a topic's history (a
# new deployment, a replay after the broker lost its log) must not tell people about last week.
NOTICE_WITHIN = timedelta(days=2)


def is_news(happened_at: datetime, now: datetime) -> bool:
    """Whether an event that happened at ``happened_at`` is still worth a notice at ``now``."""
    return now - happened_at <= NOTICE_WITHIN


def notice_key(event_id: str, employee_id: str) -> str:
    """One notice per event and person: a redelivered or re-published event (same id) finds it taken."""
    return f"notice:{event_id}:{employee_id}"


def challenge_key(moment: str, challenge_id: str, employee_id: str) -> str:
    """One notice per challenge, moment (``start``, ``end``) and person. A winner's notice takes the
    ``end`` key first, so the same person's "it ended" finds it taken: one message, the better one."""
    return f"challenge:{moment}:{challenge_id}:{employee_id}"


def announce_start(starts_at: datetime, ends_at: datetime, now: datetime) -> bool:
    """A challenge's start is announced once it has begun and while it runs (one created after its
    end, or noticed only after it, is not news)."""
    return starts_at <= now < ends_at


def badge_title(badge: str) -> str:
    """A badge's key as people read it (``ten_shares`` -> "Ten shares"), bounded."""
    words = " ".join(badge.replace("_", " ").replace("-", " ").split())[:100]
    return words[:1].upper() + words[1:]


def latest_slot(now: datetime, frequency: Frequency, *, zone: str, hour: int, week_starts_on: str) -> datetime | None:
    """The most recent moment at or before ``now`` a digest of ``frequency`` was due: the hour
    ``hour`` local time in ``zone``, every day (daily) or on the first day of the tenant's week
    (weekly). None for ``off``. Returned in ``now``'s time zone; a local hour that does not exist
    (a DST gap) is taken as the same wall time after the shift, as ``zoneinfo`` does."""
    if frequency is Frequency.off:
        return None
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)
    slot = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if slot > local:
        slot -= timedelta(days=1)
    if frequency is Frequency.weekly:
        back = (slot.weekday() - WEEKDAYS.index(week_starts_on)) % 7
        slot -= timedelta(days=back)
    # replace() kept the wall time; normalise through UTC so the offset is the one of that day
    return slot.replace(tzinfo=None).replace(tzinfo=tz).astimezone(now.tzinfo)


def period(frequency: Frequency) -> timedelta:
    return timedelta(days=7) if frequency is Frequency.weekly else timedelta(days=1)


def digest_window(slot: datetime, frequency: Frequency, last_slot: datetime | None) -> tuple[datetime, datetime]:
    """The publication times a digest due at ``slot`` covers, ``[since, slot)``: from the previous
    digest's slot (nothing falls between two digests), or one period back for a person's first one,
    and never more than :data:`MAX_LOOKBACK`."""
    since = last_slot if last_slot is not None and last_slot < slot else slot - period(frequency)
    return max(since, slot - MAX_LOOKBACK), slot


def is_due(slot: datetime | None, last_slot: datetime | None) -> bool:
    """A digest is due once per slot: when the person's last digest was for an earlier slot."""
    return slot is not None and (last_slot is None or last_slot < slot)


def digest_key(employee_id: str, slot: datetime) -> str:
    """The one key of a person's digest for a slot: a second pass for the same slot finds it taken."""
    return f"digest:{employee_id}:{slot.isoformat()}"


def retry_delay(attempts: int, base: timedelta) -> timedelta:
    """How long a message waits after its ``attempts``-th failure (1, 2, ...)."""
    exponent: int = min(max(attempts - 1, 0), 20)
    delay: timedelta = base * (1 << exponent)
    return min(delay, RETRY_CAP)


def email_address(user_name: str | None) -> str | None:
    """The address to write to, from the directory's ``userName`` (an email address at every
    identity provider we provision from); None when it is not one."""
    if not user_name or len(user_name) > 254 or user_name.count("@") != 1:
        return None
    local, domain = user_name.split("@")
    if not local or "." not in domain or any(c.isspace() or c in '<>,;"\\' for c in user_name):
        return None
    return user_name


# -- Team channels: Slack and Microsoft Teams (a tenant's incoming-webhook URLs) ----------------


class ChatChannel(StrEnum):
    """A tenant's team channel: one Slack incoming webhook, one Teams Workflows webhook. Not a
    person's channel (no per-person preference): the tenant's admins choose where it posts."""

    slack = "slack"
    teams = "teams"


# A webhook URL is a credential (whoever holds it posts to the channel): stored, never shown whole.
# Slack's are ~80 characters, Teams Workflows' ~300; 2048 is every browser's limit.
CHAT_URL_MAX = 2048
# How much of a stored URL an admin sees: its origin and its last few characters, and those only
# when the rest is long enough that they give nothing away (a short path is shown as "…" alone).
CHAT_URL_SHOWN_TAIL = 4
CHAT_URL_TAIL_AFTER = 16
# A chat message retries a network error, a 5xx or a 429 after 30 s x 2^(attempts-1) (at most
# RETRY_CAP, longer when the receiver's Retry-After asks, up to RETRY_CAP too), and gives up after
# this many attempts (about 5 hours): a badge announced the next day is noise, not news.
CHAT_MAX_ATTEMPTS = 10
# A name or badge longer than this is cut (Slack refuses a section over 3,000 characters; a
# display name has no business being longer).
CHAT_TEXT_MAX = 200


def mask_url(url: str) -> str:
    """What an admin sees of a stored webhook URL: scheme and host, then ``…`` and its last
    characters, enough to tell two URLs apart, never enough to post with."""
    scheme, _, rest = url.partition("://")
    authority, _, path = rest.partition("/")
    host = authority.rsplit("@", 1)[-1]
    tail = path[-CHAT_URL_SHOWN_TAIL:] if len(path) >= CHAT_URL_TAIL_AFTER else ""
    return f"{scheme}://{host}/…{tail}"


def chat_retryable(status_code: int | None) -> bool:
    """Whether a receiver's answer is worth another attempt: no answer (a network error, a
    timeout), 429 or a 5xx. Any other 4xx is permanent (the URL was revoked, the payload refused)."""
    return status_code is None or status_code == 429 or status_code >= 500


class Announce(StrEnum):
    """How a person's achievement is announced in the tenant's team channels."""

    named = "named"
    anonymous = "anonymous"
    not_at_all = "not_at_all"


def announce(*, known: bool, enrolled: bool, active: bool, leaderboard: str) -> Announce:
    """Gamification's leaderboard visibility decides the team channels too: ``ranked`` people are
    named, ``anonymous`` ones are "a colleague", ``hidden`` ones, people who left the programme or
    were deactivated are not announced. A person notifications knows nothing of yet (their
    membership event not copied) is announced without a name: never name whom we cannot check."""
    if not known:
        return Announce.anonymous
    if not (enrolled and active) or leaderboard == "hidden":
        return Announce.not_at_all
    return Announce.named if leaderboard == "ranked" else Announce.anonymous


def badge_key(employee_id: str, badge: str, channel: ChatChannel) -> str:
    """One announcement per badge, person and channel: a replayed event composes nothing."""
    return f"badge:{employee_id}:{badge}:{channel.value}"


# A badge is announced only while it is news: a consumer that starts on a topic's history (a new
# deployment, a replay after the broker lost its log) must not post every badge ever earned.
ANNOUNCE_WITHIN = timedelta(days=1)


def worth_announcing(earned_at: datetime, now: datetime) -> bool:
    return now - earned_at <= ANNOUNCE_WITHIN


class TemplateName(StrEnum):
    """The messages a tenant may reword (an override per message and language). Each has an
    example context in ``adapters/templates.SAMPLES``: an override may use exactly its variables."""

    digest = "digest"
    # per-event notices (features/notices.py)
    suggestion_approved = "suggestion_approved"
    suggestion_rejected = "suggestion_rejected"
    coaching_replied = "coaching_replied"
    badge_earned = "badge_earned"
    challenge_started = "challenge_started"
    challenge_ended = "challenge_ended"
    challenge_won = "challenge_won"
    reward_fulfilled = "reward_fulfilled"
    # scheduled notices (features/nudges.py, features/expiring.py)
    nudge = "nudge"
    expiring = "expiring"
    # the weekly programme report to admins (features/reports.py)
    report = "report"


# A tenant's template part (subject, text or HTML): generous for a message, small for a worker that
# renders it for every message of the tenant. The sandbox's other bounds: adapters/overrides.py.
MAX_TEMPLATE_SOURCE = 20_000


# -- Scheduled notices: the nudge, content about to expire; quiet hours ---------------------------


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Local hours (the tenant's time zone) no message is delivered in: from ``start`` up to
    ``end`` (exclusive); ``start > end`` wraps midnight (22 -> 7 is the night)."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not (0 <= self.start <= 23 and 0 <= self.end <= 23):
            raise ValueError("quiet hours are whole hours from 0 to 23")
        if self.start == self.end:
            raise ValueError("quiet hours must start and end at different hours")


def delivery_time(composed_at: datetime, *, zone: str, quiet: QuietHours | None) -> datetime:
    """When a message composed at ``composed_at`` may be delivered: at once outside the person's
    quiet hours, else the first moment they end, local time in ``zone`` (DST kept by ``zoneinfo``:
    an end hour that does not exist that day, a DST gap, is the moment the clocks jump; one that
    exists twice is its first occurrence). Returned in ``composed_at``'s time zone."""
    if quiet is None:
        return composed_at
    tz = ZoneInfo(zone)
    local = composed_at.astimezone(tz)
    h = local.hour
    wraps = quiet.start > quiet.end
    inside = (h >= quiet.start or h < quiet.end) if wraps else quiet.start <= h < quiet.end
    if not inside:
        return composed_at
    day = local.date() + timedelta(days=1) if wraps and h >= quiet.start else local.date()
    # a wall time built on the day (not by adding hours to `local`): the offset is that moment's
    end = datetime(day.year, day.month, day.day, quiet.end, tzinfo=tz)
    # normalised through UTC: a wall time in a DST gap becomes the instant the gap ends
    return max(end.astimezone(UTC), composed_at.astimezone(UTC)).astimezone(composed_at.tzinfo)


def nudge_period(now: datetime, silent_since: datetime, days: int) -> datetime | None:
    """The start of the period of silence ``now`` falls in, once a person has gone ``days`` days
    without sharing since ``silent_since`` (their last share, or when we first knew them): the
    first nudge comes ``days`` after, the next ``days`` later while they stay silent, one per
    period. None before that, or when nudges are off (``days`` 0)."""
    if days <= 0:
        return None
    length = timedelta(days=days)
    if now - silent_since < length:
        return None
    return silent_since + length * ((now - silent_since) // length)


def nudge_key(employee_id: str, period_start: datetime) -> str:
    """One nudge per person and period of silence: a second pass finds the key taken."""
    return f"nudge:{employee_id}:{period_start.astimezone(UTC).isoformat()}"


def expiring_soon(now: datetime, expires_at: datetime | None, notice: timedelta) -> bool:
    """Whether an item's expiry is close enough to warn about: within ``notice`` from now, not past."""
    return expires_at is not None and now < expires_at <= now + notice


def expiring_key(employee_id: str, content_id: str) -> str:
    """Once per person and item, whatever the item's expiry becomes later (the expiry pass's query
    builds the same string in SQL to skip people already told: features/expiring.py)."""
    return f"expiring:{employee_id}:{content_id}"


# -- The weekly programme report to admins (features/reports.py) ---------------------------------

# An admin is written to while their admin token was seen this recently: a role taken away at the
# identity provider stops the report within this long (the token itself expires much sooner).
ADMIN_SEEN_WITHIN = timedelta(days=90)
# The people a tenant may list as recipients of the report besides its admins: a report names
# colleagues and goes to a few people, not a mailing list.
MAX_REPORT_RECIPIENTS = 100
# The report's totals, in the order they are shown (metrics' field names: clicks are counted clicks).
REPORT_FIGURES = ("shares", "clicks", "reach", "conversions")


def report_key(employee_id: str, week_start: date) -> str:
    """One report per admin and week: a second pass or a redelivered event finds the key taken."""
    return f"report:{employee_id}:{week_start.isoformat()}"


@dataclass(frozen=True, slots=True)
class Change:
    """Week over week: the difference, and its percentage of the week before (None from zero).
    Worded by the templates (``+5 (+71%)``), so each language says it its own way."""

    delta: int
    percent: int | None


def change(value: int, previous: int) -> Change:
    delta = value - previous
    return Change(delta, round(100 * delta / previous) if previous else None)


def percent(rate: float | None) -> float | None:
    """A share of the eligible workforce in percent, one decimal (41.7); None with nobody eligible."""
    return None if rate is None else round(100 * rate, 1)
