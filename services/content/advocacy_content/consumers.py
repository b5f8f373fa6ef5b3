"""What content consumes: which topics, in which group, handled by which feature (ADR 0006)."""

from __future__ import annotations

from advocacy_common import topics
from advocacy_common.consumer import ConsumerSpec
from advocacy_content.features.board import record_shares

CONSUMERS = [ConsumerSpec(group_id="content-shares", topics=(topics.SHARES,), handler=record_shares)]
