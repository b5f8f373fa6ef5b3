"""The tests' shared TLS context (tests/support/sslcontext.py): shared only where httpx would have
built the default one."""

from __future__ import annotations

import ssl

import httpx

from tests.support.sslcontext import share_default_ssl_context


def _context(client: httpx.AsyncClient) -> ssl.SSLContext:
    return client._transport._pool._ssl_context  # type: ignore[attr-defined,no-any-return]


def test_default_clients_share_one_context_and_the_others_keep_their_own() -> None:
    share_default_ssl_context()
    share_default_ssl_context()  # idempotent: not wrapped twice
    a, b = httpx.AsyncClient(), httpx.AsyncClient(base_url="https://example.com", timeout=3)
    assert _context(a) is _context(b)
    assert _context(a).verify_mode == ssl.CERT_REQUIRED and _context(a).check_hostname
    unverified = _context(httpx.AsyncClient(verify=False))
    assert unverified is not _context(a) and unverified.verify_mode == ssl.CERT_NONE
    own = ssl.create_default_context()
    assert _context(httpx.AsyncClient(verify=own)) is own
