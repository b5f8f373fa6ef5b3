"""One-click share links (issue 18, ADR 0016): advocacy_common.action_links, pure."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey

from advocacy_common import action_links as al
from advocacy_common.networks import Network
from advocacy_common.signing_keys import PUBLISHED_DEFAULTS

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def _sign(**over: object) -> str:
    args: dict[str, object] = {
        "tenant_id": "t1",
        "employee_id": "e1",
        "content_id": "c1",
        "network": Network.linkedin,
        "now": NOW,
    }
    args.update(over)
    return al.sign(al.DEV_PRIVATE_KEY, **args)  # type: ignore[arg-type]


def test_a_signed_link_reads_back_with_the_public_key_only() -> None:
    action = al.verify(al.DEV_PUBLIC_KEY, _sign(), now=NOW + timedelta(hours=71))
    assert (action.tenant_id, action.employee_id, action.content_id, action.network) == (
        "t1",
        "e1",
        "c1",
        Network.linkedin,
    )
    assert action.expires_at == NOW + al.DEFAULT_TTL
    assert len(action.jti) == 32
    assert action.team is None
    assert al.verify(al.DEV_PUBLIC_KEY, _sign(team="a"), now=NOW).team == "a"


def test_a_link_carries_the_language_of_its_message_when_we_write_in_it() -> None:
    assert al.verify(al.DEV_PUBLIC_KEY, _sign(language="de"), now=NOW).language == "de"
    assert al.verify(al.DEV_PUBLIC_KEY, _sign(language="fr"), now=NOW).language is None  # not ours: left out
    assert al.verify(al.DEV_PUBLIC_KEY, _sign(), now=NOW).language is None


def test_each_link_has_its_own_jti() -> None:
    a, b = (al.verify(al.DEV_PUBLIC_KEY, _sign(), now=NOW).jti for _ in range(2))
    assert a != b


def test_an_expired_link_says_so() -> None:
    token = _sign(ttl=timedelta(hours=1))
    with pytest.raises(al.BadActionLink) as e:
        al.verify(al.DEV_PUBLIC_KEY, token, now=NOW + timedelta(hours=1))
    assert e.value.reason is al.Refusal.expired


def _claims(token: str) -> dict[str, object]:
    body = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))


def _b64(d: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")


def test_a_tampered_claim_breaks_the_signature() -> None:
    token = _sign()
    head, _, sig = token.split(".")
    claims = _claims(token) | {"sub": "someone-else"}
    with pytest.raises(al.BadActionLink) as e:
        al.verify(al.DEV_PUBLIC_KEY, f"{head}.{_b64(claims)}.{sig}", now=NOW)
    assert e.value.reason is al.Refusal.malformed


def test_another_key_or_algorithm_is_refused() -> None:
    other = ECKey.generate_key("P-256", private=True)
    forged = al.sign(
        json.dumps(other.as_dict(private=True)),
        tenant_id="t1",
        employee_id="e1",
        content_id="c1",
        network=Network.x,
        now=NOW,
    )
    hs = jwt.encode(
        {"alg": "HS256", "typ": al.TOKEN_TYPE}, _claims(_sign()), OctKey.import_key("k" * 32), algorithms=["HS256"]
    )
    none = f"{_b64({'alg': 'none', 'typ': al.TOKEN_TYPE})}.{_sign().split('.')[1]}."
    for token in (forged, hs, none):
        with pytest.raises(al.BadActionLink) as e:
            al.verify(al.DEV_PUBLIC_KEY, token, now=NOW)
        assert e.value.reason is al.Refusal.malformed


@pytest.mark.parametrize("token", ["", "x", "a.b.c", "a" * (al.MAX_TOKEN_LENGTH + 1), "é.é.é", "..", "a.b.c.d"])
def test_garbage_is_malformed_never_an_exception_of_another_kind(token: str) -> None:
    with pytest.raises(al.BadActionLink):
        al.verify(al.DEV_PUBLIC_KEY, token, now=NOW)


def test_a_signed_token_of_another_kind_is_not_a_share_action() -> None:
    key = al.load_key(al.DEV_PRIVATE_KEY, private=True)
    base = _claims(_sign())
    for claims in (
        base | {"aud": "advocacy"},
        base | {"net": "instagram"},  # no share dialog to open
        base | {"exp": 10**30},
        base | {"sub": "e" * (al.MAX_ID_LENGTH + 1)},
        base | {"team": 7},
        {k: v for k, v in base.items() if k != "cid"},
    ):
        token = jwt.encode({"alg": "ES256", "typ": al.TOKEN_TYPE}, claims, key, algorithms=["ES256"])
        with pytest.raises(al.BadActionLink):
            al.verify(al.DEV_PUBLIC_KEY, token, now=NOW)
    other_typ = jwt.encode({"alg": "ES256", "typ": "JWT"}, base, key, algorithms=["ES256"])
    with pytest.raises(al.BadActionLink):
        al.verify(al.DEV_PUBLIC_KEY, other_typ, now=NOW)


def test_signing_bounds() -> None:
    with pytest.raises(ValueError):
        _sign(ttl=al.MAX_TTL + timedelta(seconds=1))
    with pytest.raises(ValueError):
        _sign(employee_id="")
    with pytest.raises(ValueError):
        al.sign(al.DEV_PUBLIC_KEY, tenant_id="t", employee_id="e", content_id="c", network=Network.x, now=NOW)


def test_buttons_follow_the_captions_and_default_to_linkedin() -> None:
    assert al.networks_for([]) == [Network.linkedin]
    assert al.networks_for(["x", "linkedin", "instagram"]) == [Network.linkedin, Network.x]
    assert al.networks_for(["instagram"]) == [Network.linkedin]


def test_the_dev_key_pair_is_a_published_default() -> None:
    assert {al.DEV_PRIVATE_KEY, al.DEV_PUBLIC_KEY} <= PUBLISHED_DEFAULTS


def test_the_configured_key_dev_default_and_refusals() -> None:
    env = "SHARING_ACTION_LINK_PUBLIC_KEY"
    assert al.configured_key(None, private=False, dev_mode=True, env=env) == al.DEV_PUBLIC_KEY
    assert al.configured_key(" ", private=True, dev_mode=True, env=env) == al.DEV_PRIVATE_KEY
    assert al.configured_key(None, private=False, dev_mode=False, env=env) is None  # buttons off
    with pytest.raises(ValueError, match=env):
        al.configured_key(al.DEV_PUBLIC_KEY, private=False, dev_mode=False, env=env)
    with pytest.raises(ValueError, match=env):
        al.configured_key('{"kty":"oct","k":"abc"}', private=False, dev_mode=False, env=env)
    with pytest.raises(ValueError, match=env):  # the public half where the private one is needed
        al.configured_key(al.DEV_PUBLIC_KEY, private=True, dev_mode=True, env=env)
    own = ECKey.generate_key("P-256", private=True)
    public = json.dumps(own.as_dict(private=False))
    assert al.configured_key(public, private=False, dev_mode=False, env=env) == public
    ed = json.dumps(ECKey.generate_key("P-384", private=True).as_dict(private=False))
    with pytest.raises(ValueError, match="P-256"):
        al.configured_key(ed, private=False, dev_mode=False, env=env)


def test_both_services_refuse_the_dev_pair_outside_dev_mode_and_turn_buttons_off_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os

    from advocacy_notifications.settings import NotificationsSettings
    from advocacy_sharing.settings import SharingSettings

    for name in list(os.environ):
        if name.startswith(("SHARING_", "NOTIFICATIONS_", "JWT_", "DEV_MODE", "DATABASE_URL")):
            monkeypatch.delenv(name)
    prod: dict[str, object] = {
        "database_url": "postgresql+asyncpg://u:p@db/x",
        "jwt_jwks_url": "https://idp/jwks",
        "jwt_issuer": "https://idp/",
    }
    strong = {"visitor_secret": "v" * 40 + "x1", "click_id_secret": "c" * 40 + "y2"}
    with pytest.raises(ValueError, match="SHARING_ACTION_LINK_PUBLIC_KEY"):
        SharingSettings(**prod, **strong, action_link_public_key=al.DEV_PUBLIC_KEY)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="NOTIFICATIONS_ACTION_LINK_PRIVATE_KEY"):
        NotificationsSettings(**prod, action_link_private_key=al.DEV_PRIVATE_KEY)  # type: ignore[arg-type]
    assert SharingSettings(**prod, **strong).action_link_public_key is None  # type: ignore[arg-type]
    assert NotificationsSettings(**prod).action_key is None  # type: ignore[arg-type]
    assert SharingSettings(dev_mode=True).action_link_public_key == al.DEV_PUBLIC_KEY
    assert NotificationsSettings(dev_mode=True).action_key == al.DEV_PRIVATE_KEY
