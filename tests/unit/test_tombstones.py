"""Keyed tombstones (advocacy_common.tombstones): the value of a tombstone never changes, whatever
is cached. Erasures stored under one form must be found again: a changed value re-counts erased people."""

from __future__ import annotations

import hashlib
import hmac

from advocacy_common import tombstones as t


def _by_definition(key: bytes, tenant_id: str, employee_id: str) -> str:
    tenant_key = hmac.new(key, b"tenant\x00" + tenant_id.encode(), hashlib.sha256).digest()
    return t.KEYED + hmac.new(tenant_key, employee_id.encode(), hashlib.sha256).hexdigest()


def test_a_stored_tombstone_keeps_its_value() -> None:
    # computed by the uncached implementation (before the tenant's HMAC was cached)
    assert (
        t.tombstone(t.derive_key("s3cret"), "acme", "emp-1")
        == "k1:b449149fa737885289128ab19b45f15c566f907fc5db3b216d2151862267ceca"
    )


def test_the_cached_tenant_hmac_is_per_service_key_and_tenant_and_never_consumed() -> None:
    a, b = t.derive_key("one"), t.derive_key("two")
    people = [f"emp-{i}" for i in range(5)]
    for _ in range(2):  # the second round hashes from cached entries
        for key in (a, b):
            for tenant in ("acme", "globex"):
                for person in people:
                    assert t.tombstone(key, tenant, person) == _by_definition(key, tenant, person)
    assert t.tombstone(a, "acme", "emp-1") != t.tombstone(b, "acme", "emp-1")
    assert t.tombstone(a, "acme", "emp-1") != t.tombstone(a, "globex", "emp-1")


def test_the_cache_is_bounded() -> None:
    key = t.derive_key("bound")
    for i in range(t._TENANT_MACS + 10):
        assert t.tombstone(key, f"tenant-{i}", "emp") == _by_definition(key, f"tenant-{i}", "emp")
    assert t._tenant_mac.cache_info().currsize <= t._TENANT_MACS
