"""Sharing-policy checks off the event loop: :func:`advocacy_common.policy.check_message` run in the
process pool (:mod:`advocacy_common.offload`), so a long message against a long term list never
stalls the requests the same loop answers. Every route that judges a message calls these."""

from __future__ import annotations

from collections.abc import Sequence

from advocacy_common import offload
from advocacy_common.networks import Network
from advocacy_common.policy import Judgement, Message, Policy, Violation, first_misshapen_term, judge_messages


async def check(policy: Policy, network: Network, text: str, *, link: str | None = None) -> list[Violation]:
    """Every rule ``text`` breaks when posted on ``network`` (with ``link`` appended, if given)."""
    return (await judge(policy, network, text, link=link)).violations


async def judge(policy: Policy, network: Network, text: str, *, link: str | None = None) -> Judgement:
    """:func:`check`, with the message's length as the network counts it."""
    (found,) = await judge_many(policy, [(Network(network), text, link)])
    return found


async def judge_many(policy: Policy, messages: Sequence[Message]) -> list[Judgement]:
    """:func:`judge` for several messages in one trip to the pool (captions, a page of items). Even
    a policy without terms goes there: the length rule's search is O(n log n) in a 100,000-character
    text."""
    if not messages:
        return []
    return await offload.POOL.run(judge_messages, policy, list(messages))


async def misshapen_term(terms: Sequence[str]) -> tuple[int, str] | None:
    """The first blocked term past the shape caps, and why (None: all fit). Normalising 2,000 terms
    of 200 characters takes ~0.2 s: not on the loop either."""
    if not terms:
        return None
    return await offload.POOL.run(first_misshapen_term, list(terms))
