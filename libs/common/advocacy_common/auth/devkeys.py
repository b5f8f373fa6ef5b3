"""Dev mode: the stack's own signing key, and tokens minted with it.

In dev there is no identity provider. ``ensure_dev_keys`` creates one RSA key pair on first use
and the services trust its public half through ``JWT_JWKS_PATH``; the CLI mints tokens with the
private half. Production never touches this module: there the issuer's JWKS URL is configured.

Several processes may start at once (``make run``), so creation is race-safe: the private key is
written to a temporary file and hard-linked into place, and only the first link wins. Everyone
else reads the winner's key, and the public JWKS is always derived from the private key on disk.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from advocacy_common.settings import DEV_AUDIENCE, DEV_ISSUER

from .principal import KNOWN_ROLES

if TYPE_CHECKING:  # joserfc is imported by the functions that use it (issue 19: a service imports this module)
    from joserfc.jwk import RSAKey

PRIVATE_KEY_FILE = "dev-private.jwk.json"
JWKS_FILE = "jwks.json"
DEV_ALGORITHM = "RS256"


@dataclass(frozen=True, slots=True)
class DevKeys:
    """Where the dev key pair lives, and its kid."""

    private_path: Path
    jwks_path: Path
    kid: str


def ensure_dev_keys(keys_dir: Path) -> DevKeys:
    """Create the dev key pair in ``keys_dir`` unless it exists; return it either way."""
    keys_dir = Path(keys_dir)
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    private_path = keys_dir / PRIVATE_KEY_FILE
    if not private_path.exists():
        _create_private_key(private_path)
    key = _load_private_key(private_path)
    jwks_path = keys_dir / JWKS_FILE
    jwks = {"keys": [key.as_dict(private=False)]}
    if _read_json_or_none(jwks_path) != jwks:
        _write_atomically(jwks_path, _dumps(jwks), mode=0o644)
    return DevKeys(private_path=private_path, jwks_path=jwks_path, kid=str(key.kid))


def mint_token(
    keys: DevKeys,
    *,
    tenant: str,
    sub: str,
    roles: list[str],
    team: str | None = None,
    name: str | None = None,
    ttl_seconds: int = 3600,
    issuer: str = DEV_ISSUER,
    audience: str = DEV_AUDIENCE,
    now: int | None = None,
    extra_claims: dict[str, Any] | None = None,
) -> str:
    """An RS256 JWT for ``sub`` in ``tenant``, signed with the dev key.

    ``team`` and ``name`` are left out when ``None``. ``extra_claims`` is applied last, so tests
    can override any standard claim.
    """
    unknown = set(roles) - KNOWN_ROLES
    if unknown:
        raise ValueError(f"unknown role(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(KNOWN_ROLES))}")
    issued_at = int(time.time()) if now is None else now
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": sub,
        "tid": tenant,
        "roles": list(roles),
        "iat": issued_at,
        "nbf": issued_at,
        "exp": issued_at + ttl_seconds,
    }
    if team is not None:
        claims["team"] = team
    if name is not None:
        claims["name"] = name
    claims.update(extra_claims or {})
    from joserfc import jwt

    key = _load_private_key(keys.private_path)
    header = {"alg": DEV_ALGORITHM, "kid": keys.kid}
    return jwt.encode(header, claims, key, algorithms=[DEV_ALGORITHM])


def _create_private_key(private_path: Path) -> None:
    from joserfc.jwk import RSAKey

    kid = f"advocacy-dev-{secrets.token_hex(6)}"
    key = RSAKey.generate_key(2048, parameters={"kid": kid, "alg": DEV_ALGORITHM, "use": "sig"}, private=True)
    tmp = private_path.with_name(f".{private_path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    _write_new(tmp, _dumps(key.as_dict(private=True)), mode=0o600)
    try:
        os.link(tmp, private_path)  # atomic "create if absent": a concurrent creator's key wins
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def _load_private_key(path: Path) -> RSAKey:
    # Importing an RSA private key validates it and costs ~40 ms; cache by file identity so
    # minting many tokens (tests, the demo) stays cheap and a replaced file is picked up.
    stat = path.stat()
    return _load_private_key_cached(str(path), stat.st_mtime_ns, stat.st_ino)


@functools.lru_cache(maxsize=8)
def _load_private_key_cached(path: str, _mtime_ns: int, _inode: int) -> RSAKey:
    from joserfc.jwk import RSAKey

    return RSAKey.import_key(json.loads(Path(path).read_text(encoding="utf-8")))


def _read_json_or_none(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _dumps(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def _write_new(path: Path, text: str, *, mode: int) -> None:
    """Create ``path`` with ``mode`` from the start: the secret is never world-readable."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def _write_atomically(path: Path, text: str, *, mode: int) -> None:
    """Readers (other services starting up) see the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    _write_new(tmp, text, mode=mode)
    os.replace(tmp, path)
