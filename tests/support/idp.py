"""Identity-provider tokens for tests (issue 17): the fixtures in ``tests/fixtures/idp_tokens`` signed with a
test key, and that key's JWKS as a file or served over real HTTP on loopback."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "idp_tokens"
PRESET_NAMES = ("entra", "okta", "keycloak", "google")
_TIMES = ("iat", "nbf", "exp", "auth_time")


class TestIssuer:
    """One identity provider: an RSA key (2048 bits, RS256) and what it signs."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, kid: str = "idp-test-key") -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": kid, "alg": "RS256", "use": "sig"}, private=True)
        self.kid = kid

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.as_dict(private=False)]}

    def write_jwks(self, path: Path) -> str:
        path.write_text(json.dumps(self.jwks), encoding="utf-8")
        return str(path)

    def sign(self, header: dict[str, Any], claims: dict[str, Any]) -> str:
        return jwt.encode({**header, "kid": self.kid}, claims, self.key, algorithms=["RS256"])


def fixture(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fixture's header and claims, its times made absolute from now."""
    data = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    now = int(time.time())
    claims = {k: now + v if k in _TIMES else v for k, v in data["claims"].items()}
    return data["header"], claims


def fixture_token(issuer: TestIssuer, name: str, *, drop: tuple[str, ...] = (), **overrides: Any) -> str:
    """The fixture ``name`` signed by ``issuer``; ``drop`` removes claims (a dotted name reaches into an
    object: ``realm_access.roles``), ``overrides`` replace top-level ones."""
    header, claims = fixture(name)
    claims.update(overrides)
    for path in drop:
        *parents, last = path.split(".")
        node = claims
        for p in parents:
            node = node[p]
        del node[last]
    return issuer.sign(header, claims)


@contextlib.contextmanager
def serve_jwks(issuer: TestIssuer) -> Iterator[str]:
    """The issuer's JWKS over HTTP on 127.0.0.1; yields its URL."""
    body = json.dumps(issuer.jwks).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "public, max-age=3600")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/discovery/v2.0/keys"
    finally:
        server.shutdown()
        server.server_close()
