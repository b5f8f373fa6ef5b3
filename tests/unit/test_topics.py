"""Topics as code (issue 14): tenant ids in topic and group names, and each topic's declared policy."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from advocacy_common import topics

LEGAL_TOPIC = re.compile(r"[a-zA-Z0-9._-]{1,249}")
# Any str a JSON token or an event header can carry, lone surrogates included.
tenant_ids = st.text(st.characters(codec=None, categories=None), min_size=1, max_size=90)
plain_ids = st.text(string.ascii_lowercase + string.digits + "-", min_size=1, max_size=topics.MAX_TENANT_SEGMENT)
# Ids that differ in one character from a plain one: where a careless encoding collides.
near_ids = st.tuples(plain_ids, st.sampled_from(["", ".", "_", "-", "A", "_2e", "/", "é", "\ud800", " "])).map(
    lambda p: p[0] + p[1]
)


def _metric_name(topic: str) -> str:
    """What Kafka's metrics make of a topic name: ``.`` and ``_`` are the same there."""
    return topic.replace(".", "_")


@given(plain_ids)
def test_ids_of_lower_case_letters_digits_and_dashes_keep_their_names(tenant: str) -> None:
    assert topics.tenant_segment(tenant) == tenant
    assert topics.partner_feed(tenant) == f"advocacy.partner.{tenant}"
    assert topics.partner_group(tenant, "crm") == f"partner.{tenant}.crm"


@given(st.one_of(tenant_ids, near_ids))
@example("acme")
@example("Acme")
@example("a.b")
@example("a_b")
@example("a_2eb")
@example("\ud83d\ude00")
@example("😀")
def test_the_encoding_round_trips_so_it_is_injective(tenant: str) -> None:
    """A segment decodes back to its id: two ids never share a segment, a topic or a group prefix."""
    try:
        segment = topics.tenant_segment(tenant)
    except ValueError:
        assert len(tenant.encode("utf-8", "surrogatepass")) * 3 > topics.MAX_TENANT_SEGMENT
        return
    assert topics.tenant_of_segment(segment) == tenant


@given(st.lists(st.one_of(tenant_ids, near_ids), min_size=2, max_size=6, unique=True))
@example(["a.b", "a_b", "a_2eb", "a-b", "A.b"])
@example(["acme", "acme-corp", "acme.corp"])
def test_distinct_ids_give_distinct_legal_names_that_no_prefix_confuses(tenants: list[str]) -> None:
    tenants = [t for t in tenants if len(t.encode("utf-8", "surrogatepass")) * 3 <= topics.MAX_TENANT_SEGMENT]
    feeds = {t: topics.partner_feed(t) for t in tenants}
    prefixes = {t: topics.partner_group_prefix(t) for t in tenants}
    for t in tenants:
        assert LEGAL_TOPIC.fullmatch(feeds[t]), feeds[t]
        assert feeds[t] not in (".", "..")
        assert topics.DELIMITER not in topics.tenant_segment(t)
        assert prefixes[t].endswith(topics.DELIMITER)
    # distinct, also where Kafka's metric names fold "." into "_" (with the fixed topics too)
    fixed = [*topics.ALL_TOPICS, topics.dead_letter("content-partner-feed")]
    names = [*feeds.values(), *fixed]
    assert len({_metric_name(n) for n in names}) == len(names)
    # one tenant's group prefix never matches another tenant's group
    for a in tenants:
        for b in tenants:
            if a != b:
                assert not topics.partner_group(b, "crm").startswith(prefixes[a]), (a, b)


def test_the_examples_in_the_docs() -> None:
    assert topics.tenant_segment("Acme") == "_41cme"
    assert topics.tenant_segment("acme.eu") == "acme_2eeu"
    assert topics.tenant_segment("a_b") == "a_5fb"
    assert topics.tenant_segment("müller") == "m_c3_bcller"
    assert topics.partner_group_prefix("acme") == "partner.acme."
    assert not topics.partner_group("acme-corp", "crm").startswith(topics.partner_group_prefix("acme"))


@pytest.mark.parametrize("tenant", ["", "a" * (topics.MAX_TENANT_SEGMENT + 1), "é" * 40, "A" * 78])
def test_ids_that_fit_no_topic_name_are_refused(tenant: str) -> None:
    with pytest.raises(ValueError):
        topics.partner_feed(tenant)


def test_the_longest_id_that_fits_makes_a_name_of_249_characters() -> None:
    assert len(topics.partner_feed("a" * topics.MAX_TENANT_SEGMENT)) == topics.MAX_TOPIC_NAME
    assert len(topics.partner_feed("A" * (topics.MAX_TENANT_SEGMENT // 3))) <= topics.MAX_TOPIC_NAME


@pytest.mark.parametrize("segment", ["_61", "_4", "_zz", "A", "a.b", "_c3", "_"])
def test_what_no_id_encodes_to_is_not_decoded(segment: str) -> None:
    with pytest.raises(ValueError):
        topics.tenant_of_segment(segment)


def test_every_topic_the_services_create_has_a_declared_policy() -> None:
    for t in [*topics.ALL_TOPICS, topics.dead_letter("metrics"), topics.partner_feed("acme")]:
        declared = topics.policy(t)
        assert declared is not None, t
        assert declared.cleanup is topics.Cleanup.delete and declared.retention_ms > 0
        assert topics.configs(t) == {"cleanup.policy": "delete", "retention.ms": str(declared.retention_ms)}
    assert topics.policy(topics.dead_letter("metrics")) == topics.DEAD_LETTERS
    assert topics.policy(topics.partner_feed("acme")) == topics.PARTNER_FEEDS
    assert topics.configs("scratch-topic-of-a-test") == {}
