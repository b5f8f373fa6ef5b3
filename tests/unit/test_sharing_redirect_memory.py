"""The redirect's per-visitor memory is bounded by its settings (issue 19: sharing at the end of
benchmark 3, 60,000 distinct visitors, held 159 MB against a 150 MB target)."""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from advocacy_sharing.adapters.redirect import LinkCache, LinkTarget, Redirector
from advocacy_sharing.adapters.spool import ClickJournal
from advocacy_sharing.settings import SharingSettings


async def test_address_caches_keep_the_configured_number_of_visitors(tmp_path: Path) -> None:
    settings = SharingSettings(dev_mode=True, redirect_address_cache_size=100, redirect_lag_budget_ms=0)
    cache = LinkCache(None)  # type: ignore[arg-type]  # never reads: the link is put below
    code = "AbCdEf1234"
    cache.put(code, LinkTarget("t", "c", "linkedin", b"https://example.com/?adv_click=", b"", None, False, 0.0))
    journal = ClickJournal(tmp_path)
    journal.open()
    r = Redirector(settings, cache, journal)

    async def send(_message: MutableMapping[str, Any]) -> None:
        return None

    for v in range(1000):  # distinct visitors, each behind the (trusted, loopback) proxy
        forwarded = f"81.{v >> 8}.{v & 255}.7".encode()
        headers = [(b"user-agent", b"Mozilla/5.0"), (b"x-forwarded-for", forwarded)]
        await r({"path": f"/r/{code}", "method": "GET", "headers": headers, "client": ("127.0.0.1", 1)}, send)
    assert journal.appended == 1000
    assert r._resolve.cache_info().currsize == 100
    assert r._network.cache_info().currsize == 100
    journal.close()
