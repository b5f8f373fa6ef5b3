"""FastAPI dependencies: the caller's :class:`Principal`, and role gates.

Usage::

    @router.post("/v1/content")
    async def create(body: ContentIn, admin: AdminPrincipal) -> ContentOut: ...

The app puts a verifier (:func:`.issuers.build_verifier`: a :class:`JWTVerifier`, or
:class:`.issuers.TrustedIssuers` for several issuers) at ``app.state.verifier`` at start-up. Verification is
synchronous and CPU-bound (one signature check, no I/O for a known kid), cheap enough to run
on the event loop rather than paying a thread hop per request.

FastAPI caches a dependency per request, so a route using both ``CurrentPrincipal`` and a role
gate verifies the token once. Role gates answer 403 (the caller is known but may not act);
tenant isolation is not decided here: another tenant's resource is a 404 in the handlers.
"""

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request

from advocacy_common.errors import Forbidden, Unauthorized

from .issuers import TokenVerifier
from .principal import ADMIN, COACH, EMPLOYEE, KNOWN_ROLES, PARTNER, Principal

# RFC 6750: a missing or unusable header gets a bare challenge, a rejected token says why.
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
_INVALID_TOKEN_CHALLENGE = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


async def get_principal(request: Request) -> Principal:
    """The verified caller, from ``Authorization: Bearer <jwt>``; 401 otherwise."""
    verifier: TokenVerifier | None = getattr(request.app.state, "verifier", None)
    if verifier is None:
        raise RuntimeError("app.state.verifier is not set: create one at start-up (auth.issuers.build_verifier)")
    header = request.headers.get("authorization")
    if not header:
        raise Unauthorized("missing Authorization header", headers=_CHALLENGE)
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Unauthorized("Authorization header must be 'Bearer <token>'", headers=_CHALLENGE)
    try:
        principal = await verifier.averify(token)
    except Unauthorized as exc:
        raise Unauthorized(exc.message, headers=_INVALID_TOKEN_CHALLENGE) from exc
    # For access logs and middleware that run outside the dependency graph.
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


#: Every role gate :func:`require_roles` made: the OpenAPI document gives their routes a 403.
ROLE_GATES: set[Callable[..., Any]] = set()


def require_roles(*roles: str) -> Callable[[Principal], Coroutine[Any, Any, Principal]]:
    """A dependency that returns the caller if they hold at least one of ``roles``, else 403."""
    if not roles:
        raise ValueError("require_roles() needs at least one role")
    unknown = set(roles) - KNOWN_ROLES
    if unknown:  # a typo here would silently lock everyone out of a route
        raise ValueError(f"unknown role(s): {', '.join(sorted(unknown))}")
    message = f"requires role: {' or '.join(roles)}"

    async def _require(principal: CurrentPrincipal) -> Principal:
        if not principal.has_any_role(*roles):
            raise Forbidden(message)
        return principal

    ROLE_GATES.add(_require)
    return _require


AdminPrincipal = Annotated[Principal, Depends(require_roles(ADMIN))]
#: Anyone on the tenant's staff: partners are excluded.
EmployeePrincipal = Annotated[Principal, Depends(require_roles(EMPLOYEE, ADMIN, COACH))]
PartnerPrincipal = Annotated[Principal, Depends(require_roles(PARTNER, ADMIN))]
