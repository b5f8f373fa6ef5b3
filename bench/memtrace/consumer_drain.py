"""What a drained backlog leaves in a consumer process (issue 19: RSS after draining < 150 MB).

``python -m bench.memtrace.consumer_drain [metrics|gamification]``: ``BENCH_DRAIN_EVENTS`` clicks
(default 30,000; benchmark 2's shape: 2,000 employees, one tenant) applied in batches of
``BENCH_DRAIN_BATCH`` (5,000, the services' ``consumer_batch_max``) by the service's click consumer
(``ConsumerRunner.process``: no broker) on a scratch embedded PostgreSQL, then
``release_free_memory`` as after a drain. Prints the RSS after a warm-up, at the batches' peak, after
the drain and after the release, with pymalloc's arenas (1 MiB each: freed only once nothing in
them lives) and the bytes in use in them. ``BENCH_DRAIN_TRACE=N`` traces allocations (N frames) and
prints what the drain left alive, by source line. Run it with ``PYTHONMALLOC=malloc`` to compare
with glibc's allocator. A diagnosis, not a benchmark of record: it runs in-process, the records are
built between batches.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka.structs import ConsumerRecord

from advocacy_common.consumer import ConsumerRunner, ConsumerSpec, freeze_startup_heap, release_free_memory
from advocacy_common.db import make_engine, make_sessionmaker
from advocacy_common.events import new_event
from advocacy_common.events.sharing import ShareClicked, Verdict
from advocacy_common.migrations import upgrade
from advocacy_dev.devstack.net import free_port
from advocacy_dev.devstack.postgres import FAST_UNSAFE_SETTINGS, EmbeddedPostgres

N = int(os.environ.get("BENCH_DRAIN_EVENTS", "30000"))
BATCH = int(os.environ.get("BENCH_DRAIN_BATCH", "5000"))
TRACE = int(os.environ.get("BENCH_DRAIN_TRACE", "0"))
EMPLOYEES = 2000
_ARENAS = re.compile(r"# arenas allocated current\s*=\s*([\d,]+)")
_IN_USE = re.compile(r"# bytes in allocated blocks\s*=\s*([\d,]+)")


def rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def arenas() -> tuple[int, float]:
    """(pymalloc arenas, MB in use in them); (0, 0) when pymalloc is not the allocator."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile("w+") as f:
        os.dup2(f.fileno(), 2)  # written by C to the file descriptor, not to sys.stderr
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        f.seek(0)
        text = f.read()
    a, used = _ARENAS.search(text), _IN_USE.search(text)
    if not a or not used:
        return 0, 0.0
    return int(a.group(1).replace(",", "")), int(used.group(1).replace(",", "")) / 2**20


def clicks(tenant: str, start: datetime, lo: int, hi: int) -> list[ConsumerRecord[bytes, bytes]]:
    out = []
    for i in range(lo, hi):
        e = i % EMPLOYEES
        click_id = uuid.uuid4().hex
        data = ShareClicked(
            click_id=click_id, share_id=f"s{e}", code=f"code{e:06d}", content_id=f"c{i % 50}",
            employee_id=f"emp{e}", network="linkedin", clicked_at=start + timedelta(seconds=i * 4),
            verdict=Verdict.counted, team=f"team{e % 20}",
        )  # fmt: skip
        env = new_event("/advocacy/sharing", tenant, data, at=data.clicked_at, id=f"clicked-{click_id}")
        value, key = env.value(), env.key.encode()
        out.append(ConsumerRecord(env.topic, i % 6, i, 0, 0, key, value, None, len(key), len(value), env.headers()))
    return out


def spec_of(service: str) -> ConsumerSpec:
    if service == "gamification":
        from advocacy_gamification.consumers import CONSUMERS as gamification

        return gamification[0]
    from advocacy_metrics.consumers import CONSUMERS as metrics

    return metrics[0]


async def drain(service: str, url: str) -> None:
    tenant, start = f"d{uuid.uuid4().hex[:6]}", datetime.now(UTC) - timedelta(days=10)
    engine = make_engine(url, pool_size=4)
    runner = ConsumerRunner(
        spec_of(service), service=service, bootstrap="unused", sessionmaker=make_sessionmaker(engine),
        producer=lambda: None, batch_max=BATCH,
    )  # fmt: skip
    freeze_startup_heap()
    await runner.process(clicks(tenant, start, 0, 200))  # warm-up: statements prepared, caches made
    release_free_memory()
    warm, arenas_warm = rss_mb(), arenas()
    if TRACE:
        tracemalloc.start(TRACE)
    before = tracemalloc.take_snapshot() if TRACE else None
    peak, cpu = 0.0, time.process_time()
    for lo in range(200, N + 200, BATCH):
        await runner.process(clicks(tenant, start, lo, lo + BATCH))
        peak = max(peak, rss_mb())
    cpu_us = (time.process_time() - cpu) / N * 1e6
    drained, arenas_drained = rss_mb(), arenas()
    release_free_memory()
    released, arenas_released = rss_mb(), arenas()
    print(
        f"{service}, {os.environ.get('PYTHONMALLOC', 'pymalloc')}, {N:,} clicks in batches of {BATCH:,}: RSS warm "
        f"{warm:.1f} MB, peak {peak:.1f}, drained {drained:.1f}, released {released:.1f} ({released - warm:+.1f}); "
        f"pymalloc arenas {arenas_warm[0]} -> {arenas_drained[0]} -> {arenas_released[0]}, in use "
        f"{arenas_warm[1]:.1f} -> {arenas_released[1]:.1f} MB; Python CPU {cpu_us:.0f} us a click (with the "
        "records' making)",
        flush=True,
    )
    if before is not None:
        grew = tracemalloc.take_snapshot().compare_to(before, "traceback" if TRACE > 1 else "lineno")
        print(f"alive after the release, allocated during the drain: {sum(d.size_diff for d in grew) / 2**20:+.2f} MB")
        for d in grew[:15]:
            where = " <- ".join(f"{f.filename.split('site-packages/')[-1]}:{f.lineno}" for f in d.traceback)
            print(f"  {d.size_diff / 2**20:+.2f} MB {d.count_diff:+,} blocks  {where}")
    await engine.dispose()


def main() -> None:
    service = sys.argv[1] if len(sys.argv) > 1 else "gamification"
    if service not in ("metrics", "gamification"):
        raise SystemExit("metrics or gamification")
    with tempfile.TemporaryDirectory(prefix="advocacy-drain-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg", free_port(), settings=FAST_UNSAFE_SETTINGS)
        pg.start()
        try:
            url = pg.create_database("drain")
            upgrade(f"advocacy_{service}", url)
            asyncio.run(drain(service, url))
        finally:
            pg.stop()


if __name__ == "__main__":
    main()
