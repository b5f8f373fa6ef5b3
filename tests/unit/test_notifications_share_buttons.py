"""A digest item's share buttons (issue 18, ADR 0016): one per network the item allows, each a link
to sharing's /v1/share-actions with a token only the public key verifies, naming the person, the
item, the network and the person's membership team."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from advocacy_common import action_links
from advocacy_common.networks import Network
from advocacy_notifications.db import ContentCopy, Member
from advocacy_notifications.features import share_buttons

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def _item(networks: list[str]) -> ContentCopy:
    return ContentCopy(
        tenant_id="t1",
        content_id="c1",
        title="T",
        url="https://example.com",
        networks=networks,
        published_at=NOW,
        updated_at=NOW,
    )


def test_one_button_per_allowed_network_each_a_signed_share_action() -> None:
    buttons = share_buttons.from_settings(action_links.DEV_PRIVATE_KEY, "https://share.example.com/", 48)
    assert buttons is not None
    member = Member(tenant_id="t1", employee_id="e1", member_team="a")
    out = buttons.for_item(member, _item(["x", "linkedin", "instagram"]), NOW)
    assert [(b["network"], b["label"]) for b in out] == [("linkedin", "LinkedIn"), ("x", "X")]
    for b in out:
        url = urlsplit(b["url"])
        assert (url.scheme, url.netloc, url.path) == ("https", "share.example.com", "/v1/share-actions")
        action = action_links.verify(action_links.DEV_PUBLIC_KEY, parse_qs(url.query)["token"][0], now=NOW)
        assert (action.tenant_id, action.employee_id, action.content_id, action.network.value) == (
            "t1",
            "e1",
            "c1",
            b["network"],
        )
        assert action.team == "a"  # membership's: sharing puts the directory's first itself
        assert action.expires_at == NOW + timedelta(hours=48)


def test_no_caption_a_linkedin_button_and_no_key_no_buttons() -> None:
    buttons = share_buttons.from_settings(action_links.DEV_PRIVATE_KEY, "http://s", 72)
    assert buttons is not None
    member = Member(tenant_id="t1", employee_id="e1")
    assert [b["network"] for b in buttons.for_item(member, _item([]), NOW)] == [Network.linkedin.value]
    assert share_buttons.from_settings(None, "http://s", 72) is None
