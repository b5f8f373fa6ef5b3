"""Content URLs and the redirect: dangerous schemes and credentials are refused on every write
(``POST /v1/content``, suggestions, ``PATCH``); ``/r/{code}`` with any query string or path trick
sends the visitor to the stored destination only. Outbound webhooks refuse loopback, private and
link-local targets after resolution (``0x7f000001`` end to end on loopback; the metadata address
169.254.169.254 and the other non-public ranges at the library level, so the test itself never
sends a packet off this machine)."""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from advocacy_common.ssrf import UnsafeURL, resolve_public
from tests.security.conftest import World
from tests.security.openapi_kit import document, operations, properties
from tests.support.helpers import BROWSER_UAS, eventually
from tests.support.stackkit import PrivateStack

pytestmark = pytest.mark.e2e

BAD_URLS = [
    "javascript:alert(1)",
    "JavaScript:alert(document.cookie)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "javascript://example.com/%0aalert(1)",
    "vbscript:msgbox(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "DATA:text/html,<script>alert(1)</script>",
    "file:///etc/passwd",
    "file://localhost/etc/passwd",
    "ftp://example.com/x",
    "https://user:secret@example.com/",
    "https://user@example.com/",
    "https://:pw@example.com/",
    "http://example.com@evil.example/",
    "//evil.example/x",
    "\\\\evil.example\\x",
    "not a url",
    # issue 13's open redirect: a WHATWG parser reads host good.example, the old redirect sent evil.example
    "https://good.example\\@evil.example/x",
    "HTTPS://GOOD.EXAMPLE:443\\@EVIL.EXAMPLE/x",
    "https://good.example\\\\@evil.example/x",
    "https://good.example\t\\@evil.example/x",
    "https://good.example\\@[::1]/x",
    "https://exa\nmple.com/",
]


def _details(r: httpx.Response) -> list[str]:
    return [str(d.get("field")) for d in r.json()["error"]["details"]]


async def test_dangerous_content_urls_are_refused_on_every_write(sec_stack: PrivateStack, world: World) -> None:
    admin = sec_stack.token(world.tenant, world.admin, "admin", team=world.team)
    alice = sec_stack.token(world.tenant, world.employee, "employee", team=world.team)
    async with sec_stack.client("content", admin) as a, sec_stack.client("content", alice) as e:
        for url in BAD_URLS:
            r = await a.post("/v1/content", json={"title": "t", "url": url})
            assert r.status_code == 422 and "url" in _details(r), ("create", url, r.status_code, r.text)
            r = await e.post("/v1/content/suggestions", json={"title": "t", "url": url})
            assert r.status_code == 422 and "url" in _details(r), ("suggest", url, r.status_code, r.text)
            r = await a.patch(f"/v1/content/{world.ids['content_id']}", json={"url": url})
            assert r.status_code == 422 and "url" in _details(r), ("patch", url, r.status_code, r.text)
        r = await a.get(f"/v1/content/{world.ids['content_id']}")
        assert r.json()["url"] == world.destination


def _same_destination(location: str, stored: str) -> None:
    got, want = urlsplit(location), urlsplit(stored)
    assert (got.scheme, got.netloc, got.path) == (want.scheme, want.netloc, want.path), location
    query = parse_qsl(got.query, keep_blank_values=True)
    keys = [k for k, _ in query]
    assert keys.count("adv_click") == 1, location
    allowed = {k for k, _ in parse_qsl(want.query)} | {"adv_click", "utm_source", "utm_medium", "utm_campaign"}
    assert set(keys) <= allowed, location
    assert "evil" not in location.lower() and "javascript" not in location.lower(), location


REDIRECT_QUERIES = [
    "url=https://evil.example/",
    "next=//evil.example",
    "redirect=javascript:alert(1)",
    "redirect_uri=https%3A%2F%2Fevil.example",
    "adv_click=forged-click-id",
    "adv_click=a&adv_click=b",
    "utm_source=evil&utm_campaign=evil",
    "%0d%0aLocation:%20https://evil.example",
    "a=%0d%0aSet-Cookie:%20x=1",
    "@evil.example",
    "/evil.example",
    "x=" + "y" * 400,
]


async def test_redirect_with_any_query_goes_only_to_the_stored_destination(
    sec_stack: PrivateStack, world: World
) -> None:
    async with httpx.AsyncClient(base_url=sec_stack.url("sharing"), timeout=10) as c:
        for i, query in enumerate(REDIRECT_QUERIES):
            for method in ("GET", "HEAD"):
                r = await c.request(
                    method,
                    f"/r/{world.share_code}?{query}",
                    headers={"User-Agent": BROWSER_UAS[0], "X-Forwarded-For": f"198.18.200.{i}"},
                )
                assert r.status_code == 302, (query, method, r.status_code, r.text)
                _same_destination(r.headers["location"], world.destination)
                assert "set-cookie" not in r.headers, query
        for trick in (
            f"/r/{world.share_code}/https://evil.example",
            f"/r/{world.share_code}%2F%2Fevil.example",
            f"/r/{world.share_code}/..%2F..%2Fevil",
            f"/r//{world.share_code}",
            f"/r/{world.share_code}%00",
            f"/r/{world.share_code}#https://evil.example",
        ):
            r = await c.get(trick, headers={"User-Agent": BROWSER_UAS[0]})
            if r.status_code == 302:
                _same_destination(r.headers["location"], world.destination)
            else:
                assert r.status_code in (404, 414), (trick, r.status_code)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://0xa9fea9fe/",  # 169.254.169.254 in hex
        "http://0x7f000001/",
        "http://2130706433/",
        "http://127.1/",
        "http://0177.0.0.1/",
        "http://[::1]/",
        "http://0.0.0.0/",
        "http://10.0.0.1/",
        "http://172.16.5.4/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://224.0.0.1/",
        "http://localhost/",
        "https://user:pw@example.com/",
        "file:///etc/passwd",
        "gopher://127.0.0.1/",
    ],
)
async def test_outbound_url_guard_refuses_non_public_targets(url: str) -> None:
    with pytest.raises(UnsafeURL):
        await resolve_public(url)


class _Listener:
    def __init__(self) -> None:
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.hits += 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def listener() -> Iterator[_Listener]:
    lst = _Listener()
    lst.thread.start()
    try:
        yield lst
    finally:
        lst.server.shutdown()
        lst.server.server_close()


async def test_webhooks_to_loopback_in_disguise_are_refused_end_to_end(
    sec_stack: PrivateStack, listener: _Listener
) -> None:
    """The security stack runs with the production default (``CONTENT_WEBHOOK_ALLOW_PRIVATE`` off):
    a tenant whose webhook URL is ``http://0x7f000001:<port>/`` (127.0.0.1 written in hex) gets a
    refused delivery in its log and the listener on loopback receives nothing."""
    assert socket.gethostbyname("0x7f000001") == "127.0.0.1"
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    admin = sec_stack.token(tenant, "boss", "admin")
    async with sec_stack.client("content", admin) as c:
        current = (await c.get("/v1/tenant/settings")).json()
        op = next(o for o in operations("content") if o.method == "put" and o.path == "/v1/tenant/settings")
        writable = properties(op.body_schema or {}, document("content"))
        settings = {k: v for k, v in current.items() if k in writable}
        settings["partner_webhook_url"] = f"http://0x7f000001:{listener.port}/hook"
        r = await c.put("/v1/tenant/settings", json=settings)
        assert r.status_code == 200, r.text
        await c.post("/v1/partner/webhook-secret/rotate")
        await asyncio.sleep(1.5)  # the settings event reaches the forwarder's copy
        r = await c.post("/v1/content", json={"title": "partner news", "url": "https://example.com/p"})
        assert r.status_code == 201, r.text

        async def refused() -> list[dict[str, Any]]:
            items = (await c.get("/v1/partner/webhook-deliveries")).json()["items"]
            return [i for i in items if "refused" in (i.get("last_error") or "")]

        got = await eventually(refused, timeout=30, interval=0.5, what="a refused webhook delivery")
    assert "non-public" in got[0]["last_error"], got
    assert listener.hits == 0
