"""The producers' partitioner: the default partition of every key, each key hashed once."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from advocacy_common import kafka
from advocacy_common.kafka import KeyPartitioner, make_producer


@given(st.binary(max_size=64), st.integers(min_value=1, max_value=64))
def test_same_partition_as_the_default_for_every_key(key: bytes, n: int) -> None:
    partitions = list(range(n))
    ours = KeyPartitioner()
    assert ours(key, partitions, partitions) == DefaultPartitioner()(key, partitions, partitions)
    assert ours(key, partitions, partitions) == DefaultPartitioner()(key, partitions, partitions)  # remembered


def test_no_key_goes_to_an_available_partition() -> None:
    assert {KeyPartitioner()(None, [0, 1, 2, 3], [2]) for _ in range(20)} == {2}


async def test_producers_hash_each_key_once_within_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    hashed: list[bytes] = []

    def counting_murmur2(key: bytes) -> int:
        hashed.append(key)
        return len(key)

    monkeypatch.setattr(kafka, "murmur2", counting_murmur2)
    producer = make_producer("localhost:9")
    keys = [f"acme:emp{i}".encode() for i in range(100)]
    for _ in range(5):
        for k in keys:
            assert producer._partitioner(k, [0, 1, 2], [0, 1, 2]) == len(k) % 3
    assert sorted(hashed) == sorted(keys)
    await producer.stop()
    bounded = KeyPartitioner(max_keys=10)
    for k in keys:
        bounded(k, [0, 1], [0, 1])
    assert bounded._hash.cache_info().currsize == 10  # type: ignore[attr-defined]
