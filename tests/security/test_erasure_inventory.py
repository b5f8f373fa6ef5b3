"""The erasure inventory (issue 13): every table column and every event field that may hold personal
data, each with the rule that covers it on ``member.erased``. A new column or field whose name or
type says "personal" (an employee id, a name, a team, a message, a visitor, a payload blob) fails
here until it is added with its rule, which is the moment to make erasure reach it.

Rules (docs/operations.md, "Erasure", is the prose version):
- ``deleted``: rows about the person are deleted;
- ``unlinked``: the column is set to NULL (or to "erased") where it names the person;
- ``pseudonymised``: the id is replaced by a random pseudonym (sums and ranks stay);
- ``scrubbed``: blobs (outbox values, webhook bodies) naming the person are deleted (advocacy_common.erasure);
- ``tombstone``: a keyed HMAC, not reversible without the service key;
- ``expires``: not rewritten, gone after the stated retention;
- ``not personal``: holds no personal data (a catalogue name, settings, an aggregate by team).
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

import advocacy_content.db
import advocacy_gamification.db
import advocacy_metrics.db
import advocacy_notifications.db
import advocacy_sharing.db
from advocacy_common import topics
from advocacy_common.events.base import REGISTRY
from advocacy_common.partner_feed import HIDDEN, PARTNER_FIELDS, PERSON_ID_FIELDS

PERSONAL = re.compile(
    r"employee|requester|author|proposer|actor|^target$|visitor|user_agent|referrer|_by$|name|team|message"
    r"|handle|email|^ip|_ip|ip_network|phone|^sub$"
)
RULES = ("deleted", "unlinked", "pseudonymised", "scrubbed", "tombstone", "expires", "not personal")

METADATA = {
    "content": advocacy_content.db.metadata,
    "sharing": advocacy_sharing.db.metadata,
    "metrics": advocacy_metrics.db.metadata,
    "gamification": advocacy_gamification.db.metadata,
    "notifications": advocacy_notifications.db.metadata,
}

_BY_AUDIT = "unlinked: audit.forget_person sets actor/target to 'erased'"
_OUTBOX = "scrubbed: advocacy_common.erasure.scrub_outbox deletes rows whose key or payload names them"
_OUTBOX_ARRAYS = (
    "expires: ids inside arrays (a wave's employees) go with the outbox retention, 7 days after publication"
)
_HEADERS = "not personal: CloudEvents attributes (ce_subject is the row's key, scrubbed with it)"
_TOMBSTONE = "tombstone: k1: + HMAC-SHA256 under a per-tenant key (advocacy_common.tombstones)"
_SECRET = "not personal: the secret's name"
_SETTINGS = "not personal: tenant settings"
_AUDIT_SNAPSHOT = "not personal: before/after of settings, policy, rules (who is in actor/target)"
_METRICS_FACTS = "deleted: metrics erase_member deletes their facts and moves every aggregate back"
_TEAM_AGGREGATE = "not personal: an aggregate by team, the person's contribution taken out on erasure"
_GAMI = "pseudonymised: gamification erase replaces the id by a random pseudonym"

# (service, table, column) -> rule
TABLES: dict[tuple[str, str, str], str] = {
    **{
        (svc, "audit_log", col): rule
        for svc in ("content", "sharing", "gamification")
        for col, rule in (
            ("actor", _BY_AUDIT),
            ("target", _BY_AUDIT),
            ("before", _AUDIT_SNAPSHOT),
            ("after", _AUDIT_SNAPSHOT),
        )
    },
    **{(svc, "outbox", "value"): _OUTBOX for svc in METADATA},
    **{(svc, "outbox", "headers"): _HEADERS for svc in METADATA},
    **{(svc, "tenant_settings", "settings"): _SETTINGS for svc in METADATA},
    **{
        (svc, "erasures", "employee_hash"): _TOMBSTONE
        for svc in ("content", "sharing", "gamification", "notifications")
    },
    **{(svc, "service_secrets", "name"): _SECRET for svc in ("content", "sharing", "gamification", "notifications")},
    # content
    ("content", "coaching_replies", "author_id"): "unlinked: set to NULL",
    ("content", "coaching_replies", "author_role"): "not personal: admin or employee",
    ("content", "coaching_requests", "requester_id"): "deleted: their coaching threads",
    ("content", "content_items", "created_by"): "unlinked: set to 'erased'",
    ("content", "content_items", "proposer_id"): "unlinked: set to NULL",
    ("content", "content_items", "reviewed_by"): "unlinked: set to NULL",
    ("content", "content_items", "approvals"): "unlinked: their approvals keep by = null",
    ("content", "content_items", "tags"): "not personal: the item's tags",
    ("content", "content_items", "captions"): "not personal: suggested captions per network",
    ("content", "content_items", "audience"): "not personal: teams and programme roles targeted",
    ("content", "members", "employee_id"): "deleted: their membership",
    ("content", "members", "name"): "deleted: with the membership",
    ("content", "members", "team"): "deleted: with the membership",
    ("content", "members", "programme_roles"): "deleted: with the membership",
    ("content", "members", "topics"): "deleted: with the membership",
    ("content", "policy_versions", "updated_by"): "unlinked: set to 'erased'",
    ("content", "policy_versions", "blocked_terms"): "not personal: policy",
    ("content", "policy_versions", "required_disclosures"): "not personal: policy",
    ("content", "policy_versions", "allowed_domains"): "not personal: policy",
    ("content", "policy_versions", "max_lengths"): "not personal: policy",
    ("content", "policy_versions", "changes"): "not personal: policy diff",
    ("content", "shared_content", "employee_id"): "deleted: what they shared",
    ("content", "waves", "name"): "not personal: the wave's name",
    ("content", "waves", "teams"): "not personal: team names",
    ("content", "waves", "employees"): "unlinked: their id removed from the array",
    ("content", "waves", "created_by"): "unlinked: set to 'erased'",
    ("content", "webhook_secrets", "rotated_by"): "expires: replaced at the next rotation (an admin's id)",
    ("content", "webhook_endpoints", "event_types"): "not personal: event type names (a partner's filter)",
    # content: the SCIM directory (issue 17): erase_member deletes the person's row (a SCIM DELETE is an erasure)
    **{
        ("content", "scim_users", c): "deleted: erase_member deletes their directory row (adapters/directory.py)"
        for c in (
            "employee_id",
            "user_name",
            "user_name_key",
            "external_id",
            "emails",
            "display_name",
            "team",
            "department",
            "location",
            "manager",
            "employee_number",
            "resource",
        )
    },
    ("content", "scim_group_members", "user_id"): "deleted: with their directory row (ON DELETE CASCADE)",
    ("content", "scim_group_members", "display"): "deleted: with their directory row (ON DELETE CASCADE)",
    ("content", "scim_groups", "display_name"): "not personal: a group's (a team's) name",
    ("content", "scim_groups", "display_name_key"): "not personal: a group's (a team's) name",
    ("content", "scim_groups", "resource"): "not personal: the group without its members (scim_group_members)",
    ("content", "scim_secrets", "rotated_by"): "expires: replaced at the next rotation (an admin's id)",
    ("content", "webhook_deliveries", "body"): "scrubbed: advocacy_common.erasure.scrub_webhook_deliveries",
    # sharing
    ("sharing", "accounts", "employee_id"): "deleted: their network accounts",
    ("sharing", "accounts", "handle"): "deleted: with the account",
    ("sharing", "clicks", "employee_id"): "unlinked: set to NULL (later clicks credit no one)",
    ("sharing", "clicks", "visitor"): "not personal: a visitor's hash under a daily-rotated key, not the employee",
    ("sharing", "clicks", "user_agent"): "not personal: the visitor's browser, not the employee",
    ("sharing", "clicks", "referrer_domain"): "not personal: a domain",
    ("sharing", "clicks", "ip_network"): "not personal: the visitor's /24 or /48, not the employee",
    ("sharing", "conversions", "employee_id"): "unlinked: set to NULL",
    ("sharing", "member_copies", "employee_id"): "deleted: eligibility.forget_member",
    ("sharing", "member_copies", "programme_roles"): "deleted: with the copy",
    ("sharing", "directory_copies", "employee_id"): "deleted: eligibility.forget_member (a later record is dropped)",
    ("sharing", "directory_copies", "team"): "deleted: with the copy",
    ("sharing", "directory_copies", "department"): "deleted: with the copy",
    ("sharing", "directory_copies", "location"): "deleted: with the copy",
    ("sharing", "partners", "name"): "not personal: a partner company's name",
    ("sharing", "shares", "employee_id"): "unlinked: set to NULL (their links keep redirecting, credit no one)",
    ("sharing", "shares", "employee_name"): "unlinked: set to NULL",
    ("sharing", "shares", "team"): "unlinked: set to NULL",
    ("sharing", "shares", "message"): "unlinked: set to NULL",
    ("sharing", "shares", "creator_visitor"): "unlinked: set to NULL",
    ("sharing", "content_copies", "audience"): "not personal: teams and programme roles targeted",
    (
        "sharing",
        "policies",
        "body",
    ): "not personal: the policy copy (updated_by is an admin id, replaced by the next version)",
    ("sharing", "wave_copies", "name"): "not personal: the wave's name",
    ("sharing", "wave_copies", "teams"): "not personal: team names",
    (
        "sharing",
        "wave_copies",
        "employees",
    ): "expires: replaced by content's next wave.updated, which no longer lists them",
    # metrics
    **{
        ("metrics", t, c): _METRICS_FACTS
        for t, cols in {
            "account_facts": ("employee_id",),
            "click_facts": ("employee_id", "team"),
            "conversion_facts": ("employee_id", "team"),
            "daily_conversions": ("employee_id", "team"),
            "daily_stats": ("employee_id", "team"),
            "employee_monthly_stats": ("employee_id",),
            "member_facts": ("employee_id", "team", "programme_roles"),
            "directory_facts": ("employee_id",),
            "share_facts": ("employee_id", "team"),
            "sharer_days": ("employee_id",),
            "sharer_lapses": ("employee_id",),
            "sharers": ("employee_id",),
        }.items()
        for c in cols
    },
    ("metrics", "click_facts", "referrer_domain"): "not personal: a domain",
    # key holds an employee id when group_by is 'employee': the person's rows go to 0 and are deleted
    ("metrics", "ranking_clicks_monthly", "key"): _METRICS_FACTS,
    ("metrics", "ranking_clicks_monthly", "group_by"): "not personal: 'employee' or 'content'",
    ("metrics", "ranking_clicks_yearly", "key"): _METRICS_FACTS,
    ("metrics", "ranking_clicks_yearly", "group_by"): "not personal: 'employee' or 'content'",
    ("metrics", "redemption_facts", "employee_id"): "unlinked: kept as programme cost without the person",
    (
        "metrics",
        "erased_members",
        "employee_id",
    ): "tombstone: unkeyed (the id itself) - to move to advocacy_common.tombstones",
    ("metrics", "team_daily_stats", "team"): _TEAM_AGGREGATE,
    ("metrics", "team_monthly_conversions", "team"): _TEAM_AGGREGATE,
    ("metrics", "team_monthly_stats", "team"): _TEAM_AGGREGATE,
    # gamification
    **{
        ("gamification", t, "employee_id"): _GAMI
        for t in (
            "badges_earned",
            "balances",
            "challenge_totals",
            "challenge_winners",
            "daily_counts",
            "ledger",
            "member_stats",
            "points_totals",
            "redemptions",
        )
    },
    ("gamification", "challenge_totals", "team"): "pseudonymised: the row is the pseudonym's; team kept for the board",
    ("gamification", "challenge_winners", "team"): "pseudonymised: the row is the pseudonym's; team kept for the board",
    ("gamification", "points_totals", "team"): "pseudonymised: the row is the pseudonym's; team kept for the board",
    ("gamification", "members", "employee_id"): "pseudonymised: the row is replaced by the pseudonym's",
    ("gamification", "members", "name"): "deleted: the pseudonym's row has no name",
    ("gamification", "members", "team"): "pseudonymised: the pseudonym's row keeps the team",
    ("gamification", "members", "membership_at"): "not personal: a time",
    ("gamification", "members", "active"): "pseudonymised: the pseudonym's row keeps the flag (off the boards)",
    ("gamification", "members", "directory_at"): "not personal: a time",
    ("gamification", "team_sizes", "team"): "not personal: a directory team's name and head count",
    ("gamification", "challenges", "name"): "not personal: a challenge's name",
    ("gamification", "challenges", "created_by"): "pseudonymised: an admin's id",
    ("gamification", "challenges", "content_ids"): "not personal: content ids",
    ("gamification", "rewards", "name"): "not personal: a reward's name",
    ("gamification", "rewards", "created_by"): "pseudonymised: an admin's id",
    ("gamification", "rewards", "value"): "not personal: the reward's value",
    ("gamification", "redemptions", "value"): "not personal: the reward's value at redemption",
    ("gamification", "rule_sets", "created_by"): "pseudonymised: an admin's id",
    ("gamification", "rule_sets", "body"): "not personal: scoring rules",
    # notifications: forget_member deletes every row about the person (features/copies.py)
    **{
        ("notifications", "members", c): "deleted: the person's copy"
        for c in ("employee_id", "name", "email", "team", "member_team", "programme_roles")
    },
    ("notifications", "preferences", "employee_id"): "deleted: their preferences",
    ("notifications", "digest_states", "employee_id"): "deleted: their digest state",
    ("notifications", "messages", "employee_id"): "deleted: every message to them, pending ones unsent",
    ("notifications", "messages", "headers"): "deleted: with the message (its unsubscribe link names them)",
    ("notifications", "content_copies", "audience"): "not personal: teams, departments, locations, roles",
    ("notifications", "content_copies", "networks"): "not personal: the networks an item has captions for",
    ("notifications", "suppressions", "email"): "deleted: their bounced address",
    ("notifications", "suppressions", "employee_id"): "deleted: with their bounced address",
    ("notifications", "report_admins", "employee_id"): "deleted: their record as a recipient of the weekly report",
    ("notifications", "report_copies", "report"): (
        "expires: metrics' weekly figures (top advocates by id), cleared once the admins' messages are composed"
    ),
    ("notifications", "challenge_copies", "name"): "not personal: a challenge's name",
    **{
        ("notifications", "challenge_copies", c): "expires: a page cursor, cleared once the announcement is done"
        for c in ("start_after", "end_after")
    },
    ("notifications", "member_languages", "employee_id"): "deleted: the language they chose",
    ("notifications", "template_overrides", "name"): "not personal: the name of a message (digest...)",
    ("notifications", "chat_messages", "employee_id"): "deleted: every team-channel message about them (chat.forget)",
    ("notifications", "chat_messages", "body"): "deleted: with the message (it may name them)",
    ("notifications", "members", "directory_team"): "deleted: the person's copy",
    ("notifications", "quiet_hours", "employee_id"): "deleted: their quiet hours",
    ("notifications", "shared_items", "employee_id"): "deleted: what they shared",
    ("notifications", "wave_copies", "name"): "not personal: the wave's name",
    ("notifications", "wave_copies", "teams"): "not personal: team names",
    (
        "notifications",
        "wave_copies",
        "employees",
    ): "expires: replaced by content's next wave.updated, which no longer lists them",
}

# The streams: every event field that may name a person -> rule. Topics keep events for their
# retention (deploy/k8s/overlays/strimzi-cnpg/topics.yaml: 7 days, dead letters 30): what is on a topic
# when the person is erased expires with it; what the outbox would re-publish is scrubbed at erasure.
_TOPIC = "expires: topic retention (7 days; dead letters 30); re-publication skips them (outbox scrubbed)"
EVENTS: dict[tuple[str, str], str] = {
    ("io.advocacy.account.updated.v1", "employee_id"): _TOPIC,
    ("io.advocacy.badge.earned.v1", "employee_id"): _TOPIC,
    (
        "io.advocacy.click.received.v1",
        "visitor",
    ): "not personal: the visitor's keyed hash (daily key), not the employee",
    ("io.advocacy.click.received.v1", "visitor_prev"): "not personal: the same under yesterday's key",
    ("io.advocacy.click.received.v1", "user_agent"): "expires: click journal retention (7 days) and topic retention",
    ("io.advocacy.click.received.v1", "referrer"): "expires: click journal retention (7 days) and topic retention",
    ("io.advocacy.click.received.v1", "ip_network"): "expires: click journal retention (7 days) and topic retention",
    ("io.advocacy.content.suggestion_approved.v1", "proposer_id"): _TOPIC,
    ("io.advocacy.content.suggestion_approved.v1", "approved_by"): _TOPIC,
    ("io.advocacy.content.suggestion_rejected.v1", "proposer_id"): _TOPIC,
    ("io.advocacy.content.suggestion_rejected.v1", "rejected_by"): _TOPIC,
    ("io.advocacy.coaching.replied.v1", "requester_id"): _TOPIC,
    ("io.advocacy.coaching.replied.v1", "coach_id"): _TOPIC,
    ("io.advocacy.reward.fulfilled.v1", "employee_id"): _TOPIC,
    ("io.advocacy.reward.fulfilled.v1", "reward_name"): "not personal: a reward's name",
    ("io.advocacy.challenge.created.v1", "name"): "not personal: the challenge's name",
    ("io.advocacy.challenge.finalised.v1", "name"): "not personal: the challenge's name",
    ("io.advocacy.challenge.won.v1", "name"): "not personal: the challenge's name",
    ("io.advocacy.challenge.won.v1", "employee_id"): _TOPIC,
    ("io.advocacy.challenge.won.v1", "team"): "not personal: a winning team's name",
    ("io.advocacy.conversion.recorded.v1", "employee_id"): _TOPIC,
    ("io.advocacy.conversion.recorded.v1", "team"): _TOPIC,
    ("io.advocacy.member.erased.v1", "employee_id"): "not personal beyond the id: the notice every copy needs",
    **{
        ("io.advocacy.member.provisioned.v1", f): _TOPIC
        for f in ("employee_id", "user_name", "display_name", "team", "employee_number")
    },
    ("io.advocacy.team.updated.v1", "team"): "not personal: a team's name and its size",
    ("io.advocacy.member.updated.v1", "employee_id"): _TOPIC,
    ("io.advocacy.member.updated.v1", "name"): _TOPIC,
    ("io.advocacy.member.updated.v1", "team"): _TOPIC,
    ("io.advocacy.points.awarded.v1", "employee_id"): _TOPIC,
    ("io.advocacy.points.awarded.v2", "employee_id"): _TOPIC,
    ("io.advocacy.policy.updated.v1", "updated_by"): _TOPIC,
    ("io.advocacy.reward.redeemed.v1", "employee_id"): _TOPIC,
    ("io.advocacy.reward.redemption_cancelled.v1", "employee_id"): _TOPIC,
    ("io.advocacy.share.click_invalidated.v1", "employee_id"): _TOPIC,
    ("io.advocacy.share.click_invalidated.v1", "team"): _TOPIC,
    ("io.advocacy.share.clicked.v1", "employee_id"): _TOPIC,
    ("io.advocacy.share.clicked.v1", "team"): _TOPIC,
    ("io.advocacy.share.clicked.v1", "referrer_domain"): "not personal: a domain",
    ("io.advocacy.share.created.v1", "employee_id"): _TOPIC,
    ("io.advocacy.share.created.v1", "employee_name"): _TOPIC,
    ("io.advocacy.share.created.v1", "team"): _TOPIC,
    ("io.advocacy.wave.updated.v1", "name"): "not personal: the wave's name",
    ("io.advocacy.wave.updated.v1", "teams"): "not personal: team names",
    ("io.advocacy.wave.updated.v1", "employees"): _TOPIC,
}


def _blob(column: sa.Column[object]) -> bool:
    return isinstance(column.type, sa.JSON | JSONB | sa.LargeBinary | sa.ARRAY)


def personal_columns() -> set[tuple[str, str, str]]:
    return {
        (svc, table.name, column.name)
        for svc, metadata in METADATA.items()
        for table in metadata.tables.values()
        for column in table.columns
        if PERSONAL.search(column.name) or _blob(column)
    }


def personal_fields() -> set[tuple[str, str]]:
    return {(t, f) for t, cls in REGISTRY.items() for f in cls.model_fields if PERSONAL.search(f)}


def test_every_personal_column_has_an_erasure_rule() -> None:
    missing = sorted(personal_columns() - set(TABLES))
    assert missing == [], f"columns that may hold personal data with no erasure rule: {missing}"


def test_every_personal_event_field_has_an_erasure_rule() -> None:
    missing = sorted(personal_fields() - set(EVENTS))
    assert missing == [], f"event fields that may hold personal data with no erasure rule: {missing}"


def test_the_inventory_names_nothing_that_is_gone_and_every_rule_is_one_of_the_kinds() -> None:
    columns = {(svc, t.name, c.name) for svc, m in METADATA.items() for t in m.tables.values() for c in t.columns}
    assert sorted(set(TABLES) - columns) == []
    fields = {(t, f) for t, cls in REGISTRY.items() for f in cls.model_fields}
    assert sorted(set(EVENTS) - fields) == []
    assert [r for r in [*TABLES.values(), *EVENTS.values()] if not r.startswith(RULES)] == []


def test_the_topics_are_the_ones_the_inventory_speaks_for() -> None:
    # a new topic is a new stream: decide its retention and erasure here first
    assert sorted(topics.ALL_TOPICS) == sorted(
        ["advocacy.content", "advocacy.shares", "advocacy.clicks", "advocacy.clicks.raw", "advocacy.conversions",
         "advocacy.gamification",
         # the weekly report: top advocates by id inside a list, gone with the 7 days' retention
         "advocacy.metrics"]
    )  # fmt: skip


def test_the_partner_feed_filters_every_person_it_forwards() -> None:
    """Every person id a partner-visible event carries past the partner allow-list is one the
    forwarder checks against the tombstones (partner_feed.PERSON_ID_FIELDS)."""
    forwarded = {
        f
        for cls in REGISTRY.values()
        if cls.PARTNER_VISIBLE
        for f in cls.model_fields
        if PERSONAL.search(f) and f not in HIDDEN and (f in PARTNER_FIELDS or f.endswith(("_id", "_at")))
    }
    assert forwarded <= set(PERSON_ID_FIELDS), sorted(forwarded - set(PERSON_ID_FIELDS))
