"""What new visitors leave in sharing's redirect, by source line (issue 19 item 3, ADR 0020).

``python -m bench.memtrace.redirect_visitors [N]``: N distinct visitors (default 60,000, benchmark
3's count and shape: 20 links, one browser user agent, an address per visitor) through the
``Redirector`` ASGI callable in-process, after 1,000 warm-up requests, between two tracemalloc
snapshots. Run it with an older tree's ``services/sharing`` first on PYTHONPATH to compare.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import tempfile
import tracemalloc
from collections.abc import MutableMapping
from typing import Any

from advocacy_sharing.adapters.redirect import LinkCache, LinkTarget, Redirector
from advocacy_sharing.adapters.spool import ClickJournal
from advocacy_sharing.settings import SharingSettings
from bench.leaderboard import CHROME
from bench.redirect import visitor_address


async def grown(n: int) -> list[tracemalloc.StatisticDiff]:
    settings = SharingSettings(dev_mode=True, redirect_lag_budget_ms=0)
    cache = LinkCache(None)  # type: ignore[arg-type]  # never reads: the links are put below
    codes = [f"AbCdEf{i:04d}" for i in range(20)]
    for c in codes:
        cache.put(c, LinkTarget("t", "c", "linkedin", b"https://example.com/?adv_click=", b"", None, False, 0.0))
    with tempfile.TemporaryDirectory() as tmp:
        journal = ClickJournal(tmp)
        journal.open()
        r = Redirector(settings, cache, journal)

        async def send(_m: MutableMapping[str, Any]) -> None:
            return None

        async def one(i: int) -> None:
            headers = [
                (b"user-agent", CHROME.encode()),
                (b"x-forwarded-for", visitor_address(i).encode()),
                (b"accept-language", b"en-US"),
            ]
            scope = {"path": f"/r/{codes[i % 20]}", "method": "GET", "headers": headers, "client": ("127.0.0.1", 1)}
            await r(scope, send)

        for i in range(1000):
            await one(i)
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        for i in range(1000, 1000 + n):
            await one(i)
        gc.collect()
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        journal.close()
    return after.compare_to(before, "lineno")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 60_000
    diff = asyncio.run(grown(n))
    print(f"grew {sum(d.size_diff for d in diff) / 2**20:.1f} MB for {n:,} visitors")
    for d in diff[:10]:
        where = d.traceback[0]
        print(f"  {where.filename}:{where.lineno} {d.size_diff / 2**20:+.2f} MB ({d.count_diff:+,} blocks)")


if __name__ == "__main__":
    main()
