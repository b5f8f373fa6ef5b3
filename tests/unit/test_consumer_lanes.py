"""ConsumerSpec.lanes: how a batch is split into the transactions applied at once (ADR 0028)."""

from __future__ import annotations

from typing import Any, cast

from aiokafka.structs import ConsumerRecord

from advocacy_common.consumer import LANE_MIN_EVENTS, _in_batch_order, _lanes, _Parsed


def _parsed(offset: int, key: bytes | None) -> _Parsed:
    record: ConsumerRecord[bytes, bytes] = ConsumerRecord("t", offset % 3, offset, 0, 0, key, b"", None, 0, 0, [])
    return _Parsed(record, cast(Any, None))


def test_a_keys_events_are_one_lanes_in_the_batchs_order() -> None:
    batch = [_parsed(i, None if i % 50 == 0 else f"t1:person{i % 37}".encode()) for i in range(LANE_MIN_EVENTS)]
    parts = _lanes(batch, 2)
    assert len(parts) == 2
    assert sorted(p.record.offset for part in parts for p in part) == list(range(LANE_MIN_EVENTS))
    lane_of: dict[bytes | None, int] = {}
    for n, part in enumerate(parts):
        offsets = [p.record.offset for p in part]
        assert offsets == sorted(offsets)  # the batch's order within a lane
        for p in part:
            assert lane_of.setdefault(p.record.key, n) == n  # a key in one lane only
    assert lane_of[None] == 0  # records without a key: the first lane
    assert min(len(part) for part in parts) > LANE_MIN_EVENTS // 4  # keys spread over both


def test_a_small_batch_or_one_lane_is_not_split() -> None:
    small = [_parsed(i, f"k{i}".encode()) for i in range(LANE_MIN_EVENTS - 1)]
    assert _lanes(small, 2) == [small]
    full = [_parsed(i, f"k{i}".encode()) for i in range(LANE_MIN_EVENTS)]
    assert _lanes(full, 1) == [full]


def test_the_fresh_events_of_the_lanes_come_back_in_the_batchs_order() -> None:
    batch = [_parsed(i, f"t1:person{i % 37}".encode()) for i in range(LANE_MIN_EVENTS)]
    parts = _lanes(batch, 2)
    assert _in_batch_order(batch, parts, parts) is batch  # every event fresh: the batch as it is
    # a lane whose claim dropped copies (seen before): the rest, in the batch's order
    dropped = {id(parts[1][0]), id(parts[1][-1]), id(parts[0][3])}
    fresh = [[p for p in part if id(p) not in dropped] for part in parts]
    assert _in_batch_order(batch, parts, fresh) == [p for p in batch if id(p) not in dropped]
    first = {id(p) for p in parts[0]}
    assert _in_batch_order(batch, parts, [parts[0], []]) == [p for p in batch if id(p) in first]
