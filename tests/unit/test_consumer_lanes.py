"""Consumer lanes (issue 19): a fetched batch split by partition, so lanes never share a partition."""

from __future__ import annotations

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from advocacy_common.consumer import _Fetched, _Parsed, _split


def _record(topic: str, partition: int, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(topic, partition, offset, 0, 0, b"k", b"v", None, 1, 1, ())


def test_a_partition_goes_to_one_lane_in_its_order_whatever_the_topic() -> None:
    batch = {
        TopicPartition(topic, p): [_record(topic, p, o) for o in range(10 * p, 10 * p + 3)]
        for topic in ("clicks", "shares")
        for p in range(6)
    }
    records = [r for recs in batch.values() for r in recs]
    # decoded: every third record invalid (record, why); the envelopes are not looked at
    decoded = [(r, "bad") if i % 3 == 0 else _Parsed(r, None) for i, r in enumerate(records)]  # type: ignore[arg-type]
    parts = _split(_Fetched(batch, records, decoded, generation=7), 2)
    assert [sorted({tp.partition for tp in part.batch}) for part in parts] == [[0, 2, 4], [1, 3, 5]]
    for lane, part in enumerate(parts):
        assert part.generation == 7
        assert part.records == [r for r in records if r.partition % 2 == lane]  # fetch order kept
        assert part.batch == {tp: recs for tp, recs in batch.items() if tp.partition % 2 == lane}
        assert [d if isinstance(d, tuple) else d.record for d in part.decoded] == [
            (r, "bad") if i % 3 == 0 else r for i, r in enumerate(records) if r.partition % 2 == lane
        ]
    assert _split(_Fetched(batch, records, decoded, 0), 1)[0].records == records
