"""One-click share links in messages (issue 18): a signed, single-use, short-lived token that asks
sharing to create one share for one person, of one content item, on one network.

Services meet only in events, yet the button in a digest (notifications) must be acted on by
sharing. So the link carries its own proof: notifications signs it with a private key, sharing
holds only the public key and verifies it. A leaked sharing configuration cannot mint links, and
nothing is stored until the link is used (sharing then records its ``jti``, unique, in the
transaction that creates the share: single use). ADR 0016.

The token is a compact JWS (ES256, P-256: a fixed algorithm, never read from the token) whose
claims are ``tid`` (tenant), ``sub`` (employee), ``cid`` (content), ``net`` (network), ``jti``,
``iat``, ``exp``, ``aud`` (:data:`AUDIENCE`, so no other token of the platform passes for one) and,
when known, ``team``: the team notifications judged the person by (membership's, from content's
events), which stands where a login token's ``team`` claim stands; the directory's team still
comes first (eligibility.team_of); and ``lng``, the language the message was written in (one of
:data:`advocacy_common.languages.LANGUAGES`), so the page behind the button speaks it too (a value
we do not write in is ignored, not refused).
Every claim is bounded, and so is the token (:data:`MAX_TOKEN_LENGTH`) before anything is parsed.

Dev mode signs with a key pair published here (like the dev token keys, it is refused outside dev
mode: :mod:`advocacy_common.signing_keys`).

joserfc (and cryptography, 9 MB resident) is imported by the first key loaded, not by this module:
a process that never signs or checks a link does not carry it (issue 19).
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING

from advocacy_common import languages
from advocacy_common.networks import RULES, Network

if TYPE_CHECKING:
    from joserfc.jwk import ECKey

ALGORITHM = "ES256"
AUDIENCE = "advocacy-share-action"
TOKEN_TYPE = "advocacy-action+jwt"
#: A token is about 450 characters (the claims below at their usual sizes); anything much longer
#: was not made by notifications and is refused before it is decoded.
MAX_TOKEN_LENGTH = 2048
#: Ids are at most this long (tenants, employees and content ids are far shorter).
MAX_ID_LENGTH = 200
#: How long a link lasts unless a setting says otherwise: a daily digest is read within a few days.
DEFAULT_TTL = timedelta(hours=72)
#: The longest a link may last (a setting above this is refused): a forwarded message should not
#: share on someone's behalf weeks later.
MAX_TTL = timedelta(days=30)

# The dev key pair (P-256). Published: refused outside dev mode (signing_keys.PUBLISHED_DEFAULTS).
DEV_PRIVATE_KEY = (
    '{"alg":"ES256","crv":"P-256","d":"_JU32FjqUooRCvCBvqQaWsHUKwC1FZc3xTADFSQnBFM",'
    '"kid":"advocacy-dev-action-links","kty":"EC","x":"Q8IAo8r7XxA160xNmYexqssP2ugP7JZODe-DLKJ1hgE",'
    '"y":"STxXfCAjsI6uux05G8MjYyM7FSuR1DiODpWUgZdGs3A"}'
)
DEV_PUBLIC_KEY = (
    '{"alg":"ES256","crv":"P-256","kid":"advocacy-dev-action-links","kty":"EC",'
    '"x":"Q8IAo8r7XxA160xNmYexqssP2ugP7JZODe-DLKJ1hgE","y":"STxXfCAjsI6uux05G8MjYyM7FSuR1DiODpWUgZdGs3A"}'
)


def configured_key(value: str | None, *, private: bool, dev_mode: bool, env: str) -> str | None:
    """The key a service uses, from its setting ``env``: the value when set (a P-256 JWK, the private
    half where ``private``), else the dev pair's half in dev mode, else None (share buttons off: no
    button is signed, every link is refused). The dev pair is refused outside dev mode, as is any
    other published key. ``ValueError`` names the variable."""
    dev_default = DEV_PRIVATE_KEY if private else DEV_PUBLIC_KEY
    if value is None or not value.strip():
        return dev_default if dev_mode else None
    if not dev_mode and value.strip() in (DEV_PRIVATE_KEY, DEV_PUBLIC_KEY):
        raise ValueError(f"{env} is the published dev key pair's; outside dev mode make a P-256 pair of your own")
    try:
        load_key(value, private=private)
    except ValueError as e:
        raise ValueError(f"{env}: {e}") from e
    return value


class Refusal(StrEnum):
    """Why a link does nothing (each has its own explanation page)."""

    malformed = "malformed"  # not a token we make: cut short, altered, signed by another key
    expired = "expired"


class BadActionLink(ValueError):
    def __init__(self, reason: Refusal, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ShareAction:
    tenant_id: str
    employee_id: str
    content_id: str
    network: Network
    jti: str
    expires_at: datetime
    team: str | None = None
    # the language of the message the button was in (the page behind it is written in it)
    language: str | None = None


#: The buttons of an item whose admin wrote no caption (the console's board offers the same).
DEFAULT_NETWORKS: tuple[Network, ...] = (Network.linkedin,)


def shareable(network: Network) -> bool:
    """A button is offered only for a network whose share dialog a link can open."""
    return RULES[network].has_intent


def networks_for(captions: Iterable[str]) -> list[Network]:
    """The networks an item is shared on from a message: those its admin wrote a caption for (and
    whose share dialog a link can open), in the enum's order; none written, :data:`DEFAULT_NETWORKS`."""
    named = {n for n in Network if n.value in set(captions)}
    chosen = [n for n in Network if n in named and shareable(n)]
    return chosen or list(DEFAULT_NETWORKS)


@lru_cache(maxsize=4)
def load_key(jwk_json: str, *, private: bool) -> ECKey:
    """A P-256 key from its JWK (the settings' form); ``private`` demands the private half.
    ``ValueError`` for anything else."""
    from joserfc.errors import JoseError
    from joserfc.jwk import ECKey

    try:
        key = ECKey.import_key(json.loads(jwk_json))
    except (ValueError, TypeError, JoseError) as e:
        raise ValueError(f"not an EC JWK: {e}") from e
    if key.as_dict(private=False).get("crv") != "P-256":
        raise ValueError("the action-link key must be an EC key on P-256 (ES256)")
    if private and not key.is_private:
        raise ValueError("the action-link signing key must be a private key")
    return key


def sign(
    private_jwk: str,
    *,
    tenant_id: str,
    employee_id: str,
    content_id: str,
    network: Network,
    now: datetime,
    ttl: timedelta = DEFAULT_TTL,
    team: str | None = None,
    language: str | None = None,
) -> str:
    for value in (tenant_id, employee_id, content_id, *([team] if team else [])):
        if not value or len(value) > MAX_ID_LENGTH:
            raise ValueError(f"an id of an action link must be 1..{MAX_ID_LENGTH} characters")
    if not timedelta(0) < ttl <= MAX_TTL:
        raise ValueError(f"an action link lasts more than 0 and at most {MAX_TTL}")
    key = load_key(private_jwk, private=True)
    issued = int(now.timestamp())
    claims = {
        "aud": AUDIENCE,
        "tid": tenant_id,
        "sub": employee_id,
        "cid": content_id,
        "net": network.value,
        "jti": uuid.UUID(bytes=secrets.token_bytes(16), version=4).hex,
        "iat": issued,
        "exp": issued + int(ttl.total_seconds()),
    }
    if team:
        claims["team"] = team
    if language in languages.LANGUAGES:
        claims["lng"] = language
    header = {"alg": ALGORITHM, "typ": TOKEN_TYPE}
    if key.kid:
        header["kid"] = key.kid
    from joserfc import jwt

    return jwt.encode(header, claims, key, algorithms=[ALGORITHM])


def verify(public_jwk: str, token: str, *, now: datetime) -> ShareAction:
    """The action a link asks for; :class:`BadActionLink` (with the reason) for anything else.

    The signature is checked first (ES256 only, whatever the header says), then the claims: an
    unexpected shape is ``malformed`` (even when signed: it was not made by this code), a past
    ``exp`` is ``expired``."""
    if not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
        raise BadActionLink(Refusal.malformed, "not a share link")
    key = load_key(public_jwk, private=False)
    from joserfc import jwt
    from joserfc.errors import JoseError

    try:
        decoded = jwt.decode(token, key, algorithms=[ALGORITHM])
    except (JoseError, ValueError, TypeError, UnicodeError) as e:
        raise BadActionLink(Refusal.malformed, "the link's signature does not match") from e
    if decoded.header.get("typ") != TOKEN_TYPE:
        raise BadActionLink(Refusal.malformed, "not a share link")
    c = decoded.claims
    try:
        ids = [c["tid"], c["sub"], c["cid"], c["jti"]]
        exp = c["exp"]
        network = Network(c["net"])
    except (KeyError, ValueError, TypeError) as e:
        raise BadActionLink(Refusal.malformed, "the link misses a claim") from e
    if (
        c.get("aud") != AUDIENCE
        or not all(isinstance(v, str) and 0 < len(v) <= MAX_ID_LENGTH for v in ids)
        or not (c.get("team") is None or (isinstance(c["team"], str) and 0 < len(c["team"]) <= MAX_ID_LENGTH))
        or not isinstance(exp, int)
        or isinstance(exp, bool)
        or not shareable(network)
    ):
        raise BadActionLink(Refusal.malformed, "the link's claims are not a share action")
    try:
        expires_at = datetime.fromtimestamp(exp, tz=now.tzinfo)
    except (OverflowError, OSError, ValueError) as e:
        raise BadActionLink(Refusal.malformed, "the link's expiry is out of range") from e
    if now >= expires_at:
        raise BadActionLink(Refusal.expired, "the link has expired")
    return ShareAction(
        tenant_id=c["tid"],
        employee_id=c["sub"],
        content_id=c["cid"],
        network=network,
        jti=c["jti"],
        expires_at=expires_at,
        team=c.get("team"),
        language=c["lng"] if c.get("lng") in languages.LANGUAGES else None,
    )
