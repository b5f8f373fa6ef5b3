"""Bearer-token verification: a JWT signed by a key of a trusted JWKS, for our issuer and audience.

Design choices, and why:

* **Asymmetric algorithms only** (:data:`ALLOWED_ALGORITHMS`). The allow-list is passed to
  joserfc on every decode and only public RSA/EC/OKP keys are ever loaded, so ``alg: none`` and
  the classic "HS256 signed with the public key as the HMAC secret" forgery both fail before any
  key is consulted.
* **Keys are imported once and looked up by ``kid``** in a plain dict: ``verify`` runs on every
  request and does no I/O for a known kid. Key objects from the JWKS are never built per call.
* **Header-embedded keys are ignored.** The key comes from our JWKS by ``kid`` only; ``jwk``,
  ``jku`` and ``x5u`` in a token header are never followed.
* **Rotation without restarts**: with a JWKS URL, an unknown kid triggers one refetch, at most
  every ``JWT_JWKS_REFETCH_SECONDS`` (default :data:`REFRESH_INTERVAL_SECONDS`), so a storm of
  forged kids cannot hammer the issuer.
  In a service the fetch runs in a worker thread (:meth:`JWTVerifier.averify`): a request with an
  unknown kid waits for it, every other request goes on (a random kid stalled the whole event loop
  for up to the fetch timeout). The keys are also refreshed in the background once the JWKS
  response's ``Cache-Control: max-age`` (default one hour, 1 minute .. 1 day) has passed.
* **Lenient start with a URL**: if the issuer is unreachable at start-up the verifier starts
  with no remote keys, logs an error and retries on the next unknown kid (see :attr:`key_ids`
  for a readiness check). A JWKS *file* that cannot be read is a configuration error and raises.
* **joserfc and httpx are imported by the first verifier made or JWKS fetched**, not by this module
  (issue 19): a worker process, which serves no request, never loads them (9 MB with cryptography,
  and httpx's command line pulls in rich and pygments).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from advocacy_common.errors import Unauthorized

from .claims import ClaimMapping, MappingError, map_claims
from .principal import Principal

if TYPE_CHECKING:
    from joserfc.errors import JoseError
    from joserfc.jwk import GuestProtocol, Key
    from joserfc.jws import JWSRegistry
    from joserfc.jwt import ClaimsOption

    from advocacy_common.settings import ServiceSettings

log = logging.getLogger("advocacy.auth")

#: The only signature algorithms a token may use. No HMAC (a shared secret would let every
#: service mint tokens) and no ``none``.
ALLOWED_ALGORITHMS: tuple[str, ...] = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA")

#: Minimum gap between two fetches of the JWKS URL.
REFRESH_INTERVAL_SECONDS = 30.0
FETCH_TIMEOUT_SECONDS = 5.0
#: A JWKS holds a few keys (a few KB); a larger answer is not one.
MAX_JWKS_BYTES = 1024 * 1024
#: Bearer tokens travel in a header; anything longer is not ours and is refused before decoding.
MAX_TOKEN_LENGTH = 16 * 1024
#: The 401 message of a verified token whose claims do not map (the log line says which claim).
UNMAPPED = "token not accepted: its claims do not name a tenant, a subject and a role of this platform"
#: RSA keys below this size are skipped (NIST SP 800-131A), rather than trusted with a warning.
MIN_RSA_BITS = 2048

_ASYMMETRIC_KEY_TYPES = frozenset({"RSA", "EC", "OKP"})
# JWK members holding private (or symmetric) key material: stripped before import, so a JWKS that
# mistakenly publishes a private key still only yields a public verification key.
_SECRET_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def _asymmetric_registry() -> JWSRegistry:
    """A JWS registry restricted to :data:`ALLOWED_ALGORITHMS`.

    joserfc emits a ``SecurityWarning`` each time ``EdDSA`` is used, because RFC 9864 deprecates
    that polymorphic name in favour of ``Ed25519``/``Ed448``. Accepting it is a deliberate choice
    (identity providers still sign with it, and joserfc still checks the key's curve), so the
    warning is not raised once per request. Every other algorithm goes through joserfc's own
    checks unchanged.
    """
    from joserfc.jwa import JWSAlgModel
    from joserfc.jws import JWSRegistry

    class _AsymmetricRegistry(JWSRegistry):
        def get_alg(self, name: str) -> JWSAlgModel:
            if name == "EdDSA" and name in ALLOWED_ALGORITHMS:
                return self.algorithms[name]
            return super().get_alg(name)

    return _AsymmetricRegistry(algorithms=ALLOWED_ALGORITHMS, strict_check_header=False)


DEFAULT_MAX_AGE_SECONDS = 3600.0
_MAX_AGE = re.compile(r"max-age=(\d+)")


class Fetched(NamedTuple):
    """A JWKS document and how long it may be kept (its ``Cache-Control: max-age``, bounded)."""

    document: Any
    max_age: float


def fetch_jwks(url: str) -> Fetched | Any:
    """GET a JWKS document (called from a worker thread, or at start-up). Module-level so tests can
    replace it (a bare document then has the default max-age).

    Through the platform's one outbound client (advocacy_common.ssrf): the address checked is the one
    dialled, the whole fetch ends within ``FETCH_TIMEOUT_SECONDS`` however slowly the server trickles,
    and at most ``MAX_JWKS_BYTES`` are read. Private addresses are allowed: the URL comes from the
    operator's settings, and identity providers often live inside the network."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_fetch_jwks(url))
    # On an event loop's thread (a verifier made during start-up): a thread of its own.
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="jwks") as pool:
        return pool.submit(asyncio.run, _fetch_jwks(url)).result()


async def _fetch_jwks(url: str) -> Fetched:
    from advocacy_common.ssrf import OutboundGuard, UnsafeURL, bounded_request, outbound_client

    guard = OutboundGuard.for_settings(allow_private=True)
    try:
        async with outbound_client(guard, timeout=FETCH_TIMEOUT_SECONDS, max_connections=1) as client:
            response = await bounded_request(
                client,
                "GET",
                url,
                deadline=FETCH_TIMEOUT_SECONDS,
                max_bytes=MAX_JWKS_BYTES,
                headers={"Accept": "application/json"},
            )
    except TimeoutError as e:
        import httpx

        raise httpx.TimeoutException(f"no complete JWKS within {FETCH_TIMEOUT_SECONDS:.0f} s") from e
    except UnsafeURL as e:
        raise ValueError(str(e)) from e
    if response.status_code >= 400:
        raise ValueError(f"the JWKS URL answered {response.status_code}")
    if response.truncated:
        raise ValueError(f"the JWKS document is over {MAX_JWKS_BYTES} bytes")
    found = _MAX_AGE.search(response.headers.get("cache-control", ""))
    max_age = float(found.group(1)) if found else DEFAULT_MAX_AGE_SECONDS
    return Fetched(json.loads(response.body), min(max(max_age, 60.0), 86400.0))


class _KeyNotLoaded(Exception):
    """The kid is unknown and a refetch is allowed: :meth:`JWTVerifier.averify` fetches off the loop."""


def parse_jwks(document: object, *, source: str) -> dict[str, Key]:
    """The usable public signature keys of a JWKS document, by kid.

    Entries that are symmetric, meant for encryption, without a kid, of an algorithm we do not
    accept, too weak or malformed are skipped with a log line: one bad entry published by an
    issuer must not take the other keys down with it.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError(f"{source}: not a JWKS document (expected an object with a 'keys' list)")
    keys: dict[str, Key] = {}
    for entry in document["keys"]:
        key = _import_public_key(entry, source)
        if key is None:
            continue
        kid = str(key.kid)
        if kid in keys:
            log.warning("JWKS duplicate kid, keeping the first key", extra={"source": source, "kid": kid})
            continue
        keys[kid] = key
    return keys


def _import_public_key(entry: object, source: str) -> Key | None:
    if not isinstance(entry, dict):
        log.warning("JWKS entry skipped: not an object", extra={"source": source})
        return None
    kid, kty = entry.get("kid"), entry.get("kty")
    reason = None
    if kty not in _ASYMMETRIC_KEY_TYPES:
        reason = f"key type {kty!r} is not asymmetric"
    elif not isinstance(kid, str) or not kid:
        reason = "it has no kid"
    elif entry.get("use") not in (None, "sig"):
        reason = f"use is {entry.get('use')!r}"
    elif entry.get("alg") is not None and entry.get("alg") not in ALLOWED_ALGORITHMS:
        reason = f"alg {entry.get('alg')!r} is not accepted"
    elif kty == "RSA" and _rsa_bits(entry) < MIN_RSA_BITS:
        reason = f"RSA keys must have at least {MIN_RSA_BITS} bits"
    if reason:
        log.warning("JWKS key skipped", extra={"source": source, "kid": str(kid)[:64], "reason": reason})
        return None
    public = {name: value for name, value in entry.items() if name not in _SECRET_MEMBERS}
    from joserfc.errors import JoseError
    from joserfc.jwk import import_key

    try:
        return import_key(public)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        log.warning(
            "JWKS key skipped", extra={"source": source, "kid": str(kid)[:64], "reason": f"{type(exc).__name__}: {exc}"}
        )
        return None


def _rsa_bits(entry: Mapping[str, Any]) -> int:
    n = entry.get("n")
    if not isinstance(n, str):
        return 0
    try:
        modulus = base64.urlsafe_b64decode(n + "=" * (-len(n) % 4))
    except ValueError:
        return 0
    return int.from_bytes(modulus, "big").bit_length()


def _describe(exc: JoseError) -> str:
    """A message for the 401 body: precise enough to debug a client, revealing nothing secret."""
    from joserfc.errors import (
        BadSignatureError,
        ClaimError,
        ExpiredTokenError,
        InvalidKeyCurveError,
        InvalidKeyTypeError,
        KeyParameterError,
        MissingClaimError,
        UnsupportedAlgorithmError,
    )

    if isinstance(exc, UnsupportedAlgorithmError):
        return f"token algorithm is not allowed (accepted: {', '.join(ALLOWED_ALGORITHMS)})"
    if isinstance(exc, BadSignatureError):
        return "token signature is invalid"
    if isinstance(exc, ExpiredTokenError):
        return "token has expired"
    if isinstance(exc, MissingClaimError):
        return f"token is missing required claim(s): {exc.claim}"
    if isinstance(exc, ClaimError):
        return f"token claim rejected: {exc.description}"
    if isinstance(exc, (InvalidKeyTypeError, InvalidKeyCurveError, KeyParameterError)):
        return "token algorithm does not match its signing key"
    return f"malformed token: {exc.description or exc.error}"


class JWTVerifier:
    """Verifies bearer tokens and turns them into :class:`Principal` objects.

    ``clock`` (seconds since the epoch) drives both the claim checks and the refetch throttle;
    it exists for tests. Thread-safe: the key map is replaced, never mutated, and refetches are
    serialised by a lock.
    """

    def __init__(
        self,
        issuer: str,
        audience: str,
        leeway_seconds: int = 60,
        jwks_path: str | None = None,
        jwks_url: str | None = None,
        *,
        refetch_seconds: float = REFRESH_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.time,
        mapping: ClaimMapping | None = None,
    ) -> None:
        """``mapping``: how this issuer's claims name a principal (:mod:`.claims`, an ``AUTH_ISSUERS``
        entry); None for our own claim names (``sub``, ``tid``, ``roles``, ``team``, ``name``)."""
        if not (jwks_path or jwks_url):
            raise ValueError(
                "JWTVerifier needs jwks_path or jwks_url (in dev: the jwks.json written by ensure_dev_keys)"
            )
        self.issuer = issuer
        self.audience = audience
        self.leeway_seconds = leeway_seconds
        self.refetch_seconds = refetch_seconds
        self._jwks_url = jwks_url
        self._clock = clock
        self._registry = _asymmetric_registry()
        self.mapping = mapping
        # With a mapping, which claims a principal needs is the mapping's business (Entra names the
        # person by "oid", Okta has no "tid"): map_claims says which one is missing.
        ours: dict[str, ClaimsOption] = {} if mapping else {"sub": {"essential": True}, "tid": {"essential": True}}
        from joserfc import jwt

        self._claims = jwt.JWTClaimsRegistry(
            now=self._now,
            leeway=leeway_seconds,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": audience},
            exp={"essential": True},
            **ours,
        )
        self._lock = threading.Lock()
        self._next_fetch_at = 0.0
        self._stale_at = float("inf")  # with a URL: when the fetched keys pass their max-age
        self._background: asyncio.Future[None] | None = None
        self._file_keys: dict[str, Key] = {}
        if jwks_path:
            self._file_keys = parse_jwks(_read_json(Path(jwks_path)), source=jwks_path)
            if not self._file_keys:
                raise ValueError(f"{jwks_path}: no usable signature keys")
        self._keys: dict[str, Key] = dict(self._file_keys)
        if jwks_url:
            with self._lock:
                self._refresh(jwks_url)

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> JWTVerifier:
        return cls(
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            leeway_seconds=settings.jwt_leeway_seconds,
            jwks_path=settings.jwt_jwks_path,
            jwks_url=settings.jwt_jwks_url,
            refetch_seconds=settings.jwt_jwks_refetch_seconds,
        )

    @property
    def key_ids(self) -> frozenset[str]:
        """The kids currently trusted (empty if a JWKS URL has never been fetched successfully)."""
        return frozenset(self._keys)

    async def averify(self, token: str) -> Principal:
        """:meth:`verify` for a service's event loop: a JWKS fetch (unknown kid, or keys past their
        max-age) runs in a worker thread, never on the loop."""
        if self._jwks_url and self._clock() >= self._stale_at and self._background is None:
            self._background = asyncio.get_running_loop().run_in_executor(None, self._refresh_if_stale)
            self._background.add_done_callback(self._background_done)
        try:
            return self.verify(token, fetch=False)
        except _KeyNotLoaded as missing:
            url = self._jwks_url
            assert url is not None
            await asyncio.to_thread(self._refetch_for, str(missing), url)
            return self.verify(token, fetch=False, refetched=True)

    def _background_done(self, _future: Any) -> None:
        self._background = None

    def _refresh_if_stale(self) -> None:
        with self._lock:
            if self._jwks_url and self._clock() >= self._stale_at:
                self._refresh(self._jwks_url)

    def verify(self, token: str, *, fetch: bool = True, refetched: bool = False) -> Principal:
        """Verify ``token`` and return its principal, or raise :class:`Unauthorized`. ``fetch``: an
        unknown kid may refetch the JWKS here, synchronously (tools and tests; services call
        :meth:`averify`)."""
        if not isinstance(token, str) or not token.isascii() or token.count(".") != 2:
            raise Unauthorized("malformed token: not a compact JWS")
        if len(token) > MAX_TOKEN_LENGTH:
            raise Unauthorized("malformed token: too long")
        resolve = self._key_for if fetch else functools.partial(self._key_or_signal, refetched=refetched)
        from joserfc import jwt
        from joserfc.errors import JoseError

        try:
            decoded = jwt.decode(token, resolve, algorithms=ALLOWED_ALGORITHMS, registry=self._registry)
            self._claims.validate(decoded.claims)
        except JoseError as exc:
            raise Unauthorized(_describe(exc)) from exc
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            # A header that decodes to the wrong JSON shape is not always wrapped by joserfc.
            raise Unauthorized("malformed token") from exc
        if self.mapping is not None:
            mapped = map_claims(decoded.claims, self.mapping)
            if isinstance(mapped, MappingError):
                # The log names the claim for the operator; the caller learns only that it did not map.
                log.warning(
                    "token refused: its claims do not map to a principal",
                    extra={"issuer": self.issuer, "claim": mapped.claim, "reason": mapped.reason},
                )
                raise Unauthorized(UNMAPPED)
            return mapped
        try:
            return Principal.from_claims(decoded.claims)
        except ValueError as exc:
            raise Unauthorized(str(exc)) from exc

    def _now(self) -> int:
        return int(self._clock())

    def _key_for(self, obj: GuestProtocol) -> Key:
        """Key resolver handed to joserfc; runs after the algorithm passed the allow-list."""
        kid = obj.headers().get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("token header has no 'kid'")
        key = self._keys.get(kid)
        if key is None and self._jwks_url:
            key = self._refetch_for(kid, self._jwks_url)
        if key is None:
            raise Unauthorized(f"token signed by an unknown key (kid {kid[:64]!r})")
        return key

    def _key_or_signal(self, obj: GuestProtocol, *, refetched: bool) -> Key:
        """Like :meth:`_key_for`, but an unknown kid whose refetch is due is signalled, not fetched."""
        kid = obj.headers().get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("token header has no 'kid'")
        key = self._keys.get(kid)
        if key is None and self._jwks_url and not refetched and self._clock() >= self._next_fetch_at:
            raise _KeyNotLoaded(kid)
        if key is None:
            raise Unauthorized(f"token signed by an unknown key (kid {kid[:64]!r})")
        return key

    def _refetch_for(self, kid: str, url: str) -> Key | None:
        with self._lock:
            # Another thread may have refreshed while this one waited for the lock.
            if kid not in self._keys and self._clock() >= self._next_fetch_at:
                self._refresh(url)
            return self._keys.get(kid)

    def _refresh(self, url: str) -> None:
        """Fetch the JWKS URL and swap in its keys. Caller holds the lock."""
        self._next_fetch_at = self._clock() + self.refetch_seconds
        import httpx

        try:
            fetched = fetch_jwks(url)
            document, max_age = fetched if isinstance(fetched, Fetched) else (fetched, DEFAULT_MAX_AGE_SECONDS)
            remote = parse_jwks(document, source=url)
        except (httpx.HTTPError, ValueError) as exc:
            self._stale_at = self._clock() + self.refetch_seconds  # try again, but not on every request
            log.error(
                "could not fetch the JWKS, keeping the known keys",
                extra={"url": url, "known_keys": len(self._keys), "error": f"{type(exc).__name__}: {exc}"},
            )
            return
        if not remote:
            log.warning("the JWKS has no usable signature keys", extra={"url": url})
        # Keys from a file take precedence on a kid clash: they were configured explicitly.
        self._keys = {**remote, **self._file_keys}
        self._stale_at = self._clock() + max_age


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the JWKS file {path}: {exc}") from exc
