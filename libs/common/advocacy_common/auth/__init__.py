"""Authentication: bearer JWTs verified against a JWKS, the caller as a :class:`Principal`.

* :mod:`.verifier` checks a token (asymmetric signature, issuer, audience, lifetime).
* :mod:`.deps` exposes the caller to FastAPI routes and gates routes by role.
* :mod:`.devkeys` makes the dev stack its own issuer.
"""

from .deps import (
    AdminPrincipal,
    CurrentPrincipal,
    EmployeePrincipal,
    PartnerPrincipal,
    get_principal,
    require_roles,
)
from .devkeys import DevKeys, ensure_dev_keys, mint_token
from .principal import ADMIN, COACH, EMPLOYEE, KNOWN_ROLES, PARTNER, Principal
from .verifier import ALLOWED_ALGORITHMS, JWTVerifier

__all__ = [
    "ADMIN",
    "ALLOWED_ALGORITHMS",
    "COACH",
    "EMPLOYEE",
    "KNOWN_ROLES",
    "PARTNER",
    "AdminPrincipal",
    "CurrentPrincipal",
    "DevKeys",
    "EmployeePrincipal",
    "JWTVerifier",
    "PartnerPrincipal",
    "Principal",
    "ensure_dev_keys",
    "get_principal",
    "mint_token",
    "require_roles",
]
