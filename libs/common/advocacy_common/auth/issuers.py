"""Several issuers trusted at once (``AUTH_ISSUERS``), each with its own keys, audience and claim mapping.

A token names its issuer in ``iss``. :class:`TrustedIssuers` reads that claim *unverified*, only to
pick the one :class:`JWTVerifier` that may then check the token: that verifier checks the signature
with its own issuer's keys and ``iss`` again, so a token claiming another issuer than the one that
signed it fails there. An issuer nobody configured is refused before any key is looked at.

:func:`build_verifier` is how every service gets its verifier (``advocacy_common.runtime``). Without
``AUTH_ISSUERS`` it is the single :class:`JWTVerifier` of the ``JWT_*`` settings, exactly as before;
with it, the ``JWT_*`` issuer (when its keys are configured) is one more trusted issuer, with our
own claim names.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from advocacy_common.errors import Unauthorized

from .principal import Principal
from .verifier import MAX_TOKEN_LENGTH, JWTVerifier

if TYPE_CHECKING:
    from advocacy_common.settings import ServiceSettings


class TokenVerifier(Protocol):
    """What a service keeps at ``app.state.verifier``."""

    async def averify(self, token: str) -> Principal: ...


class TrustedIssuers:
    """Routes each token to the verifier of its issuer."""

    def __init__(self, verifiers: Mapping[str, JWTVerifier]) -> None:
        if not verifiers:
            raise ValueError("TrustedIssuers needs at least one issuer")
        self._by_issuer = dict(verifiers)

    @property
    def issuers(self) -> frozenset[str]:
        return frozenset(self._by_issuer)

    @property
    def key_ids(self) -> frozenset[str]:
        """Every kid currently trusted, over all issuers."""
        return frozenset().union(*(v.key_ids for v in self._by_issuer.values()))

    def verifier_for(self, token: str) -> JWTVerifier:
        return self._by_issuer[_issuer_of(token, self._by_issuer)]

    async def averify(self, token: str) -> Principal:
        return await self.verifier_for(token).averify(token)

    def verify(self, token: str) -> Principal:
        """Synchronous (tools and tests): an unknown kid may fetch the issuer's JWKS on this thread."""
        return self.verifier_for(token).verify(token)


def _issuer_of(token: object, trusted: Mapping[str, object]) -> str:
    """The ``iss`` of a compact JWS, unverified; Unauthorized unless it is one of ``trusted``."""
    if not isinstance(token, str) or not token.isascii() or token.count(".") != 2:
        raise Unauthorized("malformed token: not a compact JWS")
    if len(token) > MAX_TOKEN_LENGTH:
        raise Unauthorized("malformed token: too long")
    payload = token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, RecursionError) as exc:  # a payload of 10,000 nested lists is a RecursionError
        raise Unauthorized("malformed token") from exc
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    if not isinstance(issuer, str) or not issuer:
        raise Unauthorized("token is missing required claim(s): iss")
    if issuer not in trusted:
        raise Unauthorized("token issuer is not trusted")
    return issuer


def build_verifier(settings: ServiceSettings) -> JWTVerifier | TrustedIssuers:
    """The verifier a service uses: the ``JWT_*`` issuer alone, or it and every ``AUTH_ISSUERS`` entry."""
    issuers = settings.trusted_issuers
    if not issuers:
        return JWTVerifier.from_settings(settings)
    verifiers: dict[str, JWTVerifier] = {}
    if settings.jwt_jwks_path or settings.jwt_jwks_url:
        verifiers[settings.jwt_issuer] = JWTVerifier.from_settings(settings)
    for config in issuers:
        verifiers[config.issuer] = JWTVerifier(
            issuer=config.issuer,
            audience=config.audience,
            leeway_seconds=settings.jwt_leeway_seconds,
            jwks_path=config.jwks_path,
            jwks_url=config.jwks_url,
            refetch_seconds=settings.jwt_jwks_refetch_seconds,
            mapping=config.mapping(),
        )
    return TrustedIssuers(verifiers)
