"""Benchmark: leaderboard reads with 100,000 ranked employees in one tenant.

Dataset: one tenant, 100,000 members (50 teams; 2% anonymous, 1% hidden, 1% opted out) with
all-time totals (heavy-tailed, many ties), 40% of them with points this month and 20% this week,
written with COPY straight into ``members`` and ``points_totals`` (what the ledger would have left
there), then VACUUM ANALYZE.

Measured, p50/p99 over repeated calls:
- the use case alone (``leaderboard.board`` / ``leaderboard.me``: SQL + Python), and
- the whole request in-process (ASGI app, token verification, JSON), GET /v1/leaderboard?limit=50
  and GET /v1/leaderboard/me for random employees (tokens minted up front).
Target: top 50 and "me" each under 10 ms p99.

``python -m bench.leaderboard``. BENCH_DATABASE_URL (a server URL) uses your PostgreSQL instead of a
throwaway embedded one. BENCH_LEADERBOARD_N sets the calls per measurement (default 2000).
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from advocacy_common.auth import ensure_dev_keys, mint_token
from advocacy_common.db import make_engine, make_sessionmaker
from advocacy_common.devstack.net import free_port
from advocacy_common.devstack.postgres import (
    FAST_UNSAFE_SETTINGS,
    EmbeddedPostgres,
    create_database_on,
    database_url_on,
)
from advocacy_common.migrations import upgrade
from advocacy_common.pagination import PageParams
from advocacy_gamification import leaderboard
from advocacy_gamification.app import create_app
from advocacy_gamification.context import TenantContext, calendar
from advocacy_gamification.db import TOTALS
from advocacy_gamification.settings import GamificationSettings
from bench.common import append_results, summary_ms

EMPLOYEES = int(os.environ.get("BENCH_LEADERBOARD_EMPLOYEES", "100000"))
N = int(os.environ.get("BENCH_LEADERBOARD_N", "2000"))
TEAMS = 50
TENANT = "bench-board"
PG_SETTINGS = {**FAST_UNSAFE_SETTINGS, "shared_buffers": "256MB"}


def visibility(i: int) -> tuple[str, bool]:
    r = i % 100
    if r < 2:
        return "anonymous", True
    if r == 2:
        return "hidden", True
    if r == 3:
        return "ranked", False  # opted out
    return "ranked", True


async def generate(url: str) -> dict[str, Any]:
    rng = random.Random(5)
    now = datetime.now(UTC)
    ctx = TenantContext(TENANT)
    starts = {w: ctx.current_window(w, now).start for w in ("all", "week", "month")}
    members, totals = [], []
    for i in range(EMPLOYEES):
        emp = f"e{i:06d}"
        team = f"team{i % TEAMS}"
        vis, enrolled = visibility(i)
        ranked = enrolled and vis != "hidden"
        members.append((TENANT, emp, f"Employee {i}", team, vis, enrolled, now))
        alltime = int(10 * rng.paretovariate(1.1))  # heavy tail: most have a few dozen, some thousands
        totals.append((TENANT, "all", starts["all"], emp, team, alltime, ranked))
        if rng.random() < 0.4:
            month = max(1, int(alltime * rng.random() * 0.3))
            totals.append((TENANT, "month", starts["month"], emp, team, month, ranked))
            if rng.random() < 0.5:
                totals.append((TENANT, "week", starts["week"], emp, team, max(1, month // 3), ranked))
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        t0 = time.perf_counter()
        await conn.copy_records_to_table(
            "members",
            records=members,
            columns=["tenant_id", "employee_id", "name", "team", "visibility", "enrolled", "updated_at"],
        )
        await conn.copy_records_to_table(
            "points_totals",
            records=totals,
            columns=["tenant_id", "window", "window_start", "employee_id", "team", "points", "ranked"],
        )
        # what the ledger-driven increments would have left in score_counts
        await conn.execute(
            'INSERT INTO score_counts (tenant_id, "window", window_start, points, count) '
            'SELECT tenant_id, "window", window_start, points, count(*) FROM points_totals '
            "WHERE ranked GROUP BY 1, 2, 3, 4"
        )
        copy_s = time.perf_counter() - t0
        await conn.execute("VACUUM ANALYZE")
        distinct = await conn.fetchval("SELECT count(DISTINCT points) FROM points_totals WHERE \"window\" = 'all'")
    finally:
        await conn.close()
    return {"rows": len(totals), "copy_s": copy_s, "distinct_all_time_points": distinct}


async def interleaved(calls: list[Callable[[int], Awaitable[Any]]], n: int = N, warm: int = 50) -> list[list[float]]:
    """Time several variants call by call, alternating, so they share the machine's noise."""
    for i in range(warm):
        for call in calls:
            await call(i)
    out: list[list[float]] = [[] for _ in calls]
    for i in range(n):
        for k, call in enumerate(calls):
            t0 = time.perf_counter()
            await call(i)
            out[k].append(time.perf_counter() - t0)
    return out


async def timed(call: Callable[[int], Awaitable[Any]], n: int = N, warm: int = 50) -> list[float]:
    for i in range(warm):
        await call(i)
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        await call(i)
        out.append(time.perf_counter() - t0)
    return out


def ranked_ids(rng: random.Random, k: int) -> list[str]:
    return [f"e{i:06d}" for i in rng.sample(range(EMPLOYEES), k)]


async def measure(url: str, jwks_dir: Path) -> list[tuple[str, dict[str, float]]]:
    rng = random.Random(7)
    results: list[tuple[str, dict[str, float]]] = []
    engine = make_engine(url, pool_size=4)
    sm = make_sessionmaker(engine)
    page = PageParams(limit=50, cursor=None)
    people = ranked_ids(rng, N + 50)
    try:
        for window in ("all", "week"):

            async def top(_: int, window: str = window) -> Any:
                async with sm() as s, s.begin():
                    return await leaderboard.board(s, TENANT, window, None, None, page)

            async def me(i: int, window: str = window) -> Any:
                async with sm() as s, s.begin():
                    return await leaderboard.me(s, TENANT, people[i], window)

            async def me_counting(i: int, window: str = window) -> Any:
                """The same answer the first way: counting the ranked people above in the rank index."""
                async with sm() as s, s.begin():
                    ctx = await calendar(s, TENANT)
                    scope, span = leaderboard.window_scope(ctx, window, datetime.now(UTC))
                    key = (
                        TOTALS.c.tenant_id == TENANT,
                        TOTALS.c.window == window,
                        TOTALS.c.window_start == span.start,
                        TOTALS.c.employee_id == people[i],
                    )
                    return await leaderboard.place(s, replace(scope, counts=None), key, people[i], TENANT)

            for i in range(20):  # both ways give the same answers
                assert (await me(i))["rank"] == (await me_counting(i))["rank"]
            results.append((f"use case: top 50, window={window}", summary_ms(await timed(top))))
            counting, counts = await interleaved([me_counting, me])
            results.append((f"use case: me, window={window}: before (count the people above)", summary_ms(counting)))
            results.append((f"use case: me, window={window}: after (sum the score counts above)", summary_ms(counts)))

        async def team_board(_: int) -> Any:
            async with sm() as s, s.begin():
                return await leaderboard.board(s, TENANT, "all", "team7", None, page)

        results.append(("use case: top 50 of one team, window=all", summary_ms(await timed(team_board, n=N // 4))))

        async def teams(_: int) -> Any:
            async with sm() as s, s.begin():
                return await leaderboard.teams(s, TENANT, "all", page)

        results.append(("use case: team board (50 teams), window=all", summary_ms(await timed(teams, n=50, warm=3))))
    finally:
        await engine.dispose()

    keys = ensure_dev_keys(jwks_dir)
    settings = GamificationSettings(
        database_url=url,
        role="api",
        dev_mode=True,
        jwt_jwks_path=str(keys.jwks_path),
        log_level="WARNING",
        db_pool_size=4,
    )
    app = create_app(settings)
    tokens = [mint_token(keys, tenant=TENANT, sub=p, roles=["employee"]) for p in people[:500]]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

            async def http_top(i: int) -> Any:
                r = await client.get(
                    "/v1/leaderboard", params={"limit": 50}, headers={"Authorization": f"Bearer {tokens[i % 500]}"}
                )
                assert r.status_code == 200 and len(r.json()["items"]) == 50
                return r

            async def http_me(i: int) -> Any:
                r = await client.get("/v1/leaderboard/me", headers={"Authorization": f"Bearer {tokens[i % 500]}"})
                assert r.status_code == 200
                return r

            results.append(("HTTP in-process: GET /v1/leaderboard?limit=50", summary_ms(await timed(http_top))))
            results.append(("HTTP in-process: GET /v1/leaderboard/me", summary_ms(await timed(http_me))))
    return results


async def explain(url: str) -> str:
    """The plan of "me" for a mid-table employee."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        mid = await conn.fetchval(
            "SELECT points FROM points_totals WHERE tenant_id = $1 AND \"window\" = 'all' "
            "ORDER BY points DESC OFFSET $2 LIMIT 1",
            TENANT,
            EMPLOYEES // 2,
        )
        rows = await conn.fetch(
            "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) "
            "SELECT coalesce(sum(count), 0), min(points) FILTER (WHERE count > 0) FROM score_counts "
            "WHERE tenant_id = $1 AND \"window\" = 'all' AND window_start = '1970-01-01' AND points > $2",
            TENANT,
            mid,
        )
    finally:
        await conn.close()
    return "\n".join(r[0] for r in rows)


async def run(server_url: str, root: Path) -> tuple[dict[str, Any], list[tuple[str, dict[str, float]]], str]:
    name = f"bench_board_{uuid.uuid4().hex[:8]}"
    create_database_on(server_url, name)
    url = database_url_on(server_url, name)
    await asyncio.to_thread(upgrade, "advocacy_gamification", url)
    data = await generate(url)
    print(f"dataset: {data}", flush=True)
    results = await measure(url, root / "keys")
    plan = await explain(url)
    return data, results, plan


def report(data: dict[str, Any], results: list[tuple[str, dict[str, float]]], plan: str) -> str:
    lines = [
        f"Dataset: {EMPLOYEES:,} members in one tenant ({data['rows']:,} totals rows, "
        f"{data['distinct_all_time_points']:,} distinct all-time scores), COPY {data['copy_s']:.1f} s. "
        f"{N} calls per row below, sequential, after a warm-up; before/after pairs alternate call by call. "
        f"Load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (a shared machine).",
        "",
        "| read | p50 ms | p99 ms | mean ms |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, s in results:
        lines.append(f"| {label} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | {s['mean_ms']:.2f} |")
    lines += ["", 'Plan of the rank part of "me" for a mid-table employee:', "", "```", plan, "```"]
    return "\n".join(lines)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="advocacy-bench-board-") as tmp:
        root = Path(tmp)
        server_url = os.environ.get("BENCH_DATABASE_URL")
        pg = None
        if not server_url:
            pg = EmbeddedPostgres(root / "pg", free_port(), settings=PG_SETTINGS)
            pg.start()
            server_url = pg.server_url
        try:
            data, results, plan = asyncio.run(run(server_url, root))
        finally:
            if pg is not None:
                pg.stop()
    body = report(data, results, plan)
    print(body)
    append_results("Leaderboard reads, 100,000 ranked employees", body)


if __name__ == "__main__":
    main()
