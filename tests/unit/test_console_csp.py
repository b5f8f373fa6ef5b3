"""The console's Content-Security-Policy: the browser may connect to the two APIs it calls itself
(the wall's stream at gamification, the share at sharing) and submit forms only to the console,
https (the networks' dialogs) and, for the OIDC login, a plain-HTTP identity provider on loopback."""

from __future__ import annotations

import json

from advocacy_console.app import content_security_policy
from advocacy_console.settings import ConsoleSettings

ISSUER = {"preset": "keycloak", "issuer": "http://127.0.0.1:9999", "audience": "api",
          "jwks_url": "http://127.0.0.1:9999/jwks", "fixed_tenant": "acme"}  # fmt: skip


def directive(policy: str, name: str) -> list[str]:
    (found,) = [d.split()[1:] for d in policy.split("; ") if d.split()[0] == name]
    return found


def test_the_browser_connects_to_the_stream_and_the_share_origins_only() -> None:
    s = ConsoleSettings(public_gamification_url="https://g.example", public_sharing_url="https://s.example/api")
    assert directive(content_security_policy(s), "connect-src") == ["'self'", "https://g.example", "https://s.example"]
    same = ConsoleSettings(public_gamification_url="", public_sharing_url="")  # behind one gateway
    assert directive(content_security_policy(same), "connect-src") == ["'self'"]


def test_forms_go_to_a_loopback_identity_provider_only_when_oidc_is_on() -> None:
    off = ConsoleSettings()
    assert directive(content_security_policy(off), "form-action") == ["'self'", "https:"]
    on = ConsoleSettings(
        auth_issuer=json.dumps(ISSUER), oidc_client_id="console", oidc_redirect_url="http://127.0.0.1:8010/cb",
        dev_mode=True,
    )  # fmt: skip
    assert directive(content_security_policy(on), "form-action") == ["'self'", "https:", "http://127.0.0.1:9999"]
