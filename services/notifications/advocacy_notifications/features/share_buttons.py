"""The share buttons of a digest item (issue 18, ADR 0016): per network the item allows, a link to
sharing's ``/v1/share-actions`` carrying a token signed with this service's private key
(:mod:`advocacy_common.action_links`). Sharing verifies it with the public key, creates the share
with every check a share has, and records the token's ``jti``: each button works once, for
``action_link_ttl_hours``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

from advocacy_common import action_links
from advocacy_common.networks import NAMES
from advocacy_notifications.db import ContentCopy, Member

#: Sharing's route behind every button.
ACTION_PATH = "/v1/share-actions"


@dataclass(frozen=True, slots=True)
class ShareButtons:
    """How buttons are made: the signing key, sharing's public base URL, their lifetime."""

    private_key: str
    share_base_url: str
    ttl: timedelta

    def for_item(
        self, member: Member, item: ContentCopy, now: datetime, language: str | None = None
    ) -> list[dict[str, str]]:
        """``[{"network": "linkedin", "label": "LinkedIn", "url": ...}]``, one per network; the page
        behind each is written in ``language`` (the message's)."""
        base = self.share_base_url.rstrip("/")
        out = []
        for network in action_links.networks_for(item.networks or ()):
            token = action_links.sign(
                self.private_key,
                tenant_id=member.tenant_id,
                employee_id=member.employee_id,
                content_id=item.content_id,
                network=network,
                now=now,
                ttl=self.ttl,
                # the team a login token would carry (membership's); sharing still prefers the directory's
                team=member.member_team,
                language=language,
            )
            out.append(
                {"network": network.value, "label": NAMES[network], "url": f"{base}{ACTION_PATH}?token={quote(token)}"}
            )
        return out


def from_settings(private_key: str | None, share_base_url: str, ttl_hours: int) -> ShareButtons | None:
    """None when no key is configured: digests then carry no buttons."""
    if private_key is None:
        return None
    return ShareButtons(private_key, share_base_url, timedelta(hours=ttl_hours))
