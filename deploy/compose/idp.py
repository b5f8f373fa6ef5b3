"""Compose's stand-in for an identity provider: one RSA key pair, its JWKS, and tokens signed with it.

Compose runs the services as in production (``DEV_MODE`` off), so they need a JWKS and an issuer
that is not the dev one. This script runs inside the service image (mounted at /opt/idp.py):

    docker compose run --rm idp token --tenant acme --sub alice --role admin
    docker compose run --rm idp token --tenant acme --sub bob --role employee --team sales

``init`` (the ``idp`` service's one-shot start) creates the key pair in the ``idp-keys`` volume once;
the services read ``jwks.json`` from the same volume (``JWT_JWKS_PATH``). The issuer and audience
come from ``JWT_ISSUER`` / ``JWT_AUDIENCE``, the same variables the services read, so they agree.

With a real identity provider, drop this service: see docs/operations.md ("Identity provider").
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

KEYS_DIR = Path(os.environ.get("IDP_KEYS_DIR", "/var/lib/advocacy/keys"))


def main(argv: list[str] | None = None) -> int:
    from advocacy_common.auth.devkeys import ensure_dev_keys, mint_token

    parser = argparse.ArgumentParser(prog="idp")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("init", help="create the key pair and jwks.json unless they exist")
    tok = sub.add_parser("token", help="print a JWT signed with the compose key")
    tok.add_argument("--tenant", required=True)
    tok.add_argument("--sub", required=True)
    tok.add_argument("--role", action="append", required=True, choices=["admin", "employee", "coach", "partner"])
    tok.add_argument("--team")
    tok.add_argument("--name")
    tok.add_argument("--ttl", type=int, default=12 * 3600)
    args = parser.parse_args(argv)

    keys = ensure_dev_keys(KEYS_DIR)
    if args.command == "init":
        print(f"idp: JWKS at {keys.jwks_path} (kid {keys.kid})")
        return 0
    issuer = os.environ["JWT_ISSUER"]
    audience = os.environ.get("JWT_AUDIENCE", "advocacy")
    token = mint_token(
        keys,
        tenant=args.tenant,
        sub=args.sub,
        roles=list(dict.fromkeys(args.role)),
        team=args.team,
        name=args.name,
        ttl_seconds=args.ttl,
        issuer=issuer,
        audience=audience,
    )
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
