"""Share tickets: the browser creates a share itself, without the person's token (issue 20).

A front-end (the console) asks, with the person's token, for a ticket for one item on one network
(``POST /v1/shares/tickets``); the page then posts it, with the message, straight to ``POST
/v1/shares/with-ticket`` (CORS): the share is created by :func:`shares.create_share` with every
check a share has, as the person the ticket names. A ticket is narrow (that item, that network),
short (:data:`TICKET_TTL`, and never past the token it was issued for) and acts once: its nonce is
recorded in ``action_link_uses`` (the single-use record of the one-click share links, ADR 0016:
the same thing, a credential that made one share) in the share's own savepoint, prefixed
``ticket:`` so it never meets a link's ``jti``.

The key every replica signs with is a random value stored once in ``service_secrets``.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common.auth import Principal
from advocacy_common.auth.principal import EMPLOYEE
from advocacy_common.db import table_of
from advocacy_common.errors import Conflict, Unauthorized
from advocacy_common.tickets import TicketSigner
from advocacy_common.tombstones import SERVICE_SECRETS
from advocacy_sharing.db import ActionLinkUse, metadata
from advocacy_sharing.features import shares
from advocacy_sharing.schemas import ShareCreate

TICKET_TTL = timedelta(seconds=60)
SECRET_NAME = "share_ticket_key"
PURPOSE = "sharing.share"
_USES = table_of(ActionLinkUse)
_SECRETS = metadata.tables[SERVICE_SECRETS.name]


async def signer(session: AsyncSession) -> TicketSigner:
    """The signer of every replica: its key made once, by whichever replica comes first."""
    await session.execute(
        pg_insert(_SECRETS).values(name=SECRET_NAME, value=secrets.token_urlsafe(48)).on_conflict_do_nothing()
    )
    value = await session.scalar(sa.select(_SECRETS.c.value).where(_SECRETS.c.name == SECRET_NAME))
    return TicketSigner(hashlib.sha256(str(value).encode()).digest(), PURPOSE)


def issue(sign: TicketSigner, who: Principal, content_id: str, network: str, now: datetime) -> tuple[str, datetime]:
    """A ticket for ``who`` to share ``content_id`` on ``network`` once, within the minute."""
    expires = now + TICKET_TTL
    if who.expires_at is not None:
        if who.expires_at <= now:
            raise Unauthorized("the token has expired")
        expires = min(expires, who.expires_at)
    claims = {
        "t": who.tenant_id,
        "s": who.sub,
        "m": who.team,
        # the name the share's event carries to gamification's board and metrics (without it the
        # wall showed a nameless row for everyone who shared from the console)
        "a": who.name,
        "c": content_id,
        "w": network,
        "n": secrets.token_urlsafe(12),
    }
    return sign.issue(claims, expires), expires.replace(microsecond=0)


async def redeem(
    session: AsyncSession,
    sign: TicketSigner,
    ticket: str,
    message: str | None,
    *,
    link_template: str,
    creator_visitor: str | None,
    authenticity: shares.AuthenticityRule | None,
    now: datetime | None = None,
) -> shares.ShareResult:
    """The share the ticket allows (created, or the person's existing one), once: 401 for a ticket
    that is not ours or has expired, 409 for a used one, and every refusal a share has."""
    now = now or datetime.now(UTC)
    claims = sign.verify(ticket, now)
    try:
        tenant, sub, content_id, network = (str(claims[k]) for k in ("t", "s", "c", "w"))
        team, name, nonce, expires = claims.get("m"), claims.get("a"), str(claims["n"]), int(claims["e"])
    except (KeyError, ValueError, TypeError) as e:
        raise Unauthorized("malformed ticket") from e
    who = Principal(
        sub=sub,
        tenant_id=tenant,
        roles=frozenset({EMPLOYEE}),
        team=team if isinstance(team, str) else None,
        name=name if isinstance(name, str) else None,
    )
    body = ShareCreate.model_validate({"content_id": content_id, "network": network, "message": message})
    jti = f"ticket:{nonce}"
    async with session.begin_nested():
        result = await shares.create_share(
            session,
            who,
            body,
            link_template=link_template,
            creator_visitor=creator_visitor,
            authenticity=authenticity,
            now=now,
        )
        recorded = await session.execute(
            pg_insert(ActionLinkUse)
            .values(
                tenant_id=tenant,
                jti=jti,
                share_id=result.share.id,
                used_at=now,
                expires_at=datetime.fromtimestamp(expires, UTC),
            )
            .on_conflict_do_nothing(index_elements=["tenant_id", "jti"])
            .returning(_USES.c.jti)
        )
        if recorded.first() is None:
            raise Conflict("this share ticket was used already: ask for a new one")
    return result
