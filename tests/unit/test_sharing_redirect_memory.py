"""The redirect's per-visitor memory is bounded by its settings (issue 19: sharing at the end of
benchmark 3, 60,000 distinct visitors, held 159 MB against a 150 MB target)."""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from advocacy_sharing.adapters.redirect import LinkCache, LinkTarget, Redirector
from advocacy_sharing.adapters.spool import ClickJournal, decode
from advocacy_sharing.settings import SharingSettings

CODE = "AbCdEf1234"


def _redirector(tmp_path: Path, size: int) -> tuple[Redirector, ClickJournal]:
    settings = SharingSettings(dev_mode=True, redirect_address_cache_size=size, redirect_lag_budget_ms=0)
    cache = LinkCache(None)  # type: ignore[arg-type]  # never reads: the link is put below
    cache.put(CODE, LinkTarget("t", "c", "linkedin", b"https://example.com/?adv_click=", b"", None, False, 0.0))
    journal = ClickJournal(tmp_path)
    journal.open()
    return Redirector(settings, cache, journal), journal


async def _visit(r: Redirector, forwarded: str, peer: str = "127.0.0.1") -> None:
    async def send(_message: MutableMapping[str, Any]) -> None:
        return None

    headers = [(b"user-agent", b"Mozilla/5.0"), (b"x-forwarded-for", forwarded.encode())]
    await r({"path": f"/r/{CODE}", "method": "GET", "headers": headers, "client": (peer, 1)}, send)


async def test_address_caches_keep_the_configured_number_of_visitors(tmp_path: Path) -> None:
    r, journal = _redirector(tmp_path, 100)
    for v in range(1000):  # distinct visitors behind two (trusted, loopback) proxies: the cached path
        await _visit(r, f"81.{v >> 8}.{v & 255}.7, 127.0.0.2")
    assert journal.appended == 1000
    assert r._resolve.cache_info().currsize == 100
    assert r._network.cache_info().currsize == 100
    journal.close()


async def test_one_forwarded_ipv4_address_is_read_at_once_and_remembered_nowhere(tmp_path: Path) -> None:
    """ADR 0029: the usual shape (one IPv4 address from a trusted proxy) skips the caches; what the
    click carries is what the cached path gives, and an untrusted peer's header is still ignored."""
    r, journal = _redirector(tmp_path, 100)
    for v in range(300):
        await _visit(r, f" 81.{v >> 8}.{v & 255}.7 ")
    await _visit(r, "81.0.1.7", peer="203.0.113.9")  # not a proxy of ours: its header is not believed
    await _visit(r, "2001:db8::1")  # IPv6: the cached path
    assert r._resolve.cache_info().currsize == 2  # the untrusted peer and the IPv6 visitor
    journal.close()
    records = [decode(line) for line in _journal_lines(tmp_path)]
    clicks = [json.loads(rec.value) for rec in records if rec is not None]
    assert [c["ip_network"] for c in clicks[:2]] == ["81.0.0.0/24", "81.0.1.0/24"]
    assert clicks[300]["ip_network"] == "203.0.113.0/24"
    assert clicks[301]["ip_network"] == "2001:db8::/48"
    assert r.addresses.resolve("127.0.0.1", "81.0.1.7") == "81.0.1.7"


def _journal_lines(root: Path) -> list[bytes]:
    return [line for f in sorted(root.rglob("*.log")) for line in f.read_bytes().splitlines() if line]
