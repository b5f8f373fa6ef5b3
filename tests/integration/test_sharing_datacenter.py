"""``datacenter_range`` in the verdict worker (issue 21): a browser's click from a cloud's network is a
bot with that reason; the same click counts for a tenant that allow-listed the network."""

from __future__ import annotations

import uuid

from advocacy_common.tenant import ClickAllowList
from tests.support.sharing import FakeClock, Sharing, allow_clicks, clock, hit, new_link, scanner_rows

__all__ = ["clock"]  # the fixture, used by name

EXCHANGE_ONLINE = "40.107.3.5"  # Microsoft's mail network: where Defender's link scanning comes from
AWS = "2600:1f18:4000::9"
COMCAST = "73.22.1.9"


async def test_a_click_from_a_cloud_is_a_bot_with_its_reason(sharing: Sharing, clock: FakeClock) -> None:
    link = await new_link(sharing)
    for ip in (EXCHANGE_ONLINE, AWS, COMCAST):
        clock.advance(60)  # one at a time, long after the share: no burst
        assert (await hit(sharing, link["code"], ip=ip)).status_code == 302
    await sharing.wait_clicks(link["code"], 3)
    assert await scanner_rows(sharing, link["code"]) == [
        ("bot", "datacenter_range", None, "40.107.3.0/24"),
        ("bot", "datacenter_range", None, "2600:1f18:4000::/48"),
        ("counted", None, None, "73.22.1.0/24"),
    ]


async def test_a_tenants_allow_list_counts_a_cloud_network_it_needs(sharing: Sharing, clock: FakeClock) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    allow = ClickAllowList(networks=["40.107.0.0/16"])
    await allow_clicks(sharing, tenant, allow)
    link = await new_link(sharing, tenant=tenant)
    clock.advance(60)
    assert (await hit(sharing, link["code"], ip=EXCHANGE_ONLINE)).status_code == 302
    assert await sharing.wait_clicks(link["code"], 1) == {"counted": 1}
