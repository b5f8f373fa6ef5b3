"""Benchmark: the web console's pages on benchmark 4's 100,000-employee dataset, and the wall's latency.

Dataset: content, sharing, metrics and gamification as processes (embedded PostgreSQL, Tansu), one
tenant. Gamification gets benchmark 4a's 100,000 ranked members (``bench.leaderboard.generate``),
metrics benchmark 4b's year of facts and its aggregates (``bench.metrics_reads.generate``: 100,000
employees, 1M shares, 10M clicks; BENCH_METRICS_SCALE scales it) moved to end today, so the pages'
default ranges read a live programme, content 60 published items, all in one tenant and with one
id per person.

Measured:
- every console page's first render, server time: the console app in-process (ASGI, session
  lookup, Jinja2) including its calls to the services' public APIs over loopback HTTP; p50/p99
  over repeated calls, an employee's and an admin's pages. Target < 300 ms each.
- the wall's latency: a click on a tracked link (its 302) to the SSE message on the stream the wall
  page reads (gamification's /v1/leaderboard/stream with a ticket from the console's /wall/ticket,
  the window the wall shows), one click at a time, for the employee at the top of the wall.
  Target 2 s.

The machine is shared: before the pages are measured the bench waits (at most
BENCH_CONSOLE_QUIET_WAIT_S, default 600 s; 0 does not wait) for the 1-minute load average to fall
below BENCH_CONSOLE_QUIET_LOAD (default 1.5), and the report gives the load averages just before and
just after the page measurements, and whether the machine was quiet.

``python -m bench console`` (or ``make bench``). BENCH_CONSOLE_N sets the calls per page (default 100,
so a page's p99 is not simply its slowest call), BENCH_CONSOLE_CLICKS the wall's clicks (default 20).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import orjson

from advocacy_common.auth import mint_token
from bench import leaderboard as board_bench
from bench import metrics_reads as reads_bench
from bench.common import append_results, summary_ms
from bench.stackutil import BenchStack

TENANT = reads_bench.TENANT  # both datasets in one tenant: the console shows one tenant
N = int(os.environ.get("BENCH_CONSOLE_N", "100"))
CLICKS = int(os.environ.get("BENCH_CONSOLE_CLICKS", "20"))
QUIET_LOAD = float(os.environ.get("BENCH_CONSOLE_QUIET_LOAD", "1.5"))
QUIET_WAIT_S = float(os.environ.get("BENCH_CONSOLE_QUIET_WAIT_S", "600"))
CONTENT_ITEMS = 60
TARGET_MS = 300
WALL_TARGET_S = 2.0


def db_url(stack: BenchStack, svc: str) -> str:
    return stack.pg.database_url(stack.services.database_names[svc])


async def seed(stack: BenchStack) -> dict[str, Any]:
    """Both datasets into the services' databases, then content's items through its API."""
    board_bench.TENANT = TENANT
    # the year of facts ends today, so the console's default ranges (the last days) read a full programme
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    reads_bench.START = today - timedelta(days=365 + 14)  # clicks come up to 14 days after a share
    t0 = time.perf_counter()
    gam = await board_bench.generate(db_url(stack, "gamification"))
    # one id per person in both datasets (metrics' e17 is the leaderboard's e000017)
    conn = await asyncpg.connect(db_url(stack, "gamification").replace("postgresql+asyncpg", "postgresql"))
    try:
        for table in ("members", "points_totals"):
            await conn.execute(
                f"UPDATE {table} SET employee_id = 'e' || (substr(employee_id, 2)::int)::text WHERE tenant_id = $1",
                TENANT,
            )
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    gam_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    met = await reads_bench.generate(db_url(stack, "metrics"))
    met_s = time.perf_counter() - t0
    admin = mint_token(stack.keys, tenant=TENANT, sub="boss", roles=["admin"], ttl_seconds=7200)
    async with httpx.AsyncClient(
        base_url=stack.services.url("content"), headers={"Authorization": f"Bearer {admin}"}, timeout=30
    ) as content:
        for i in range(CONTENT_ITEMS):
            r = await content.post(
                "/v1/content", json={"title": f"Item {i}: the product launch", "url": f"https://example.com/p/{i}"}
            )
            assert r.status_code == 201, r.text
    return {"gamification_rows": gam["rows"], "gamification_s": gam_s, "metrics_s": met_s, **met}


def console_app(stack: BenchStack) -> Any:
    from advocacy_console.app import create_app
    from advocacy_console.settings import ConsoleSettings

    url = stack.services.url
    return create_app(
        ConsoleSettings(
            dev_mode=True,
            dev_keys_dir=stack.keys.jwks_path.parent,
            cookie_secure=False,
            content_url=url("content"),
            sharing_url=url("sharing"),
            metrics_url=url("metrics"),
            gamification_url=url("gamification"),
        )
    )


async def session_for(app: Any, stack: BenchStack, sub: str, role: str, team: str) -> tuple[str, str]:
    """A console session (its cookie value and CSRF token), as the dev login makes one."""
    from advocacy_console.sessions import Person

    token = mint_token(stack.keys, tenant=TENANT, sub=sub, roles=[role], team=team, name=sub, ttl_seconds=7200)
    person = Person(tenant=TENANT, sub=sub, roles=(role,), team=team, name=sub)
    session = await app.state.sessions.create(token, person, time.time() + 7200)
    return session.id, session.csrf


async def timed(call: Callable[[], Awaitable[Any]], n: int, warm: int = 2) -> list[float]:
    for _ in range(warm):
        await call()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        await call()
        out.append(time.perf_counter() - t0)
    return out


EMPLOYEE_PAGES = ["/board", "/me", "/rewards", "/challenges", "/coaching", "/wall"]
ADMIN_PAGES = [
    "/admin/content",
    "/admin/content/new",
    "/admin/suggestions",
    "/admin/analytics",
    "/admin/rules",
]


async def quiet() -> dict[str, Any]:
    """Wait (at most QUIET_WAIT_S) for the 1-minute load average to fall below QUIET_LOAD: other
    processes on the machine (this bench's own seeding too) inflate a page's tail."""
    t0 = time.monotonic()
    while os.getloadavg()[0] >= QUIET_LOAD and time.monotonic() - t0 < QUIET_WAIT_S:
        await asyncio.sleep(min(5.0, max(0.0, QUIET_WAIT_S - (time.monotonic() - t0))))
    return {"waited_s": time.monotonic() - t0, "quiet": os.getloadavg()[0] < QUIET_LOAD}


def load_text(load: tuple[float, float, float]) -> str:
    return f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}"


async def pages(stack: BenchStack, app: Any) -> tuple[list[tuple[str, dict[str, float]]], dict[str, dict[str, float]]]:
    results = []
    employee, _ = await session_for(app, stack, "e17", "employee", "team17")
    admin, _ = await session_for(app, stack, "boss", "admin", "team0")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://console", timeout=120
    ) as client:
        for cookie, paths in ((employee, EMPLOYEE_PAGES), (admin, ADMIN_PAGES)):
            for path in paths:

                async def get(path: str = path, cookie: str = cookie) -> None:
                    r = await client.get(path, cookies={"console_session": cookie})
                    assert r.status_code == 200, f"{path}: {r.status_code} {r.text[:300]}"

                s = summary_ms(await timed(get, N))
                results.append((path, s))
                print(f"{path}: p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms", flush=True)
    return results, await analytics_parts(app, admin, N)


async def analytics_parts(app: Any, cookie: str, n: int) -> dict[str, dict[str, float]]:
    """Where /admin/analytics's time goes, over ``n`` more calls: each upstream call as the console
    sees it (its Upstream.call, wrapped here: the service's time plus loopback HTTP and JSON) side by
    side as the page makes them, the same call alone (one at a time: what the service takes without
    the page's other calls queued beside it), the calls' wall time, and the console's own (session,
    chart data, Jinja2)."""
    up = app.state.upstream
    original = up.call
    spans: list[tuple[str, float, float]] = []
    made: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}

    def name_of(service: str, path: str, kw: dict[str, Any]) -> str:
        group = (kw.get("params") or {}).get("group_by")
        return f"{service} {path}" + (f"?group_by={group}" if group else "")

    async def call(service: str, method: str, path: str, token: str, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return await original(service, method, path, token, **kw)
        finally:
            name = name_of(service, path, kw)
            spans.append((name, t0, time.perf_counter()))
            made[name] = ((service, method, path, token), kw)

    parts: dict[str, list[float]] = {}
    up.call = call
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console") as client:
            for _ in range(n):
                spans.clear()
                t0 = time.perf_counter()
                r = await client.get("/admin/analytics", cookies={"console_session": cookie})
                total = time.perf_counter() - t0
                assert r.status_code == 200, r.text[:300]
                calls_s = max(e for _, _, e in spans) - min(b for _, b, _ in spans)
                for name, b, e in spans:
                    parts.setdefault(f"{name} (side by side)", []).append(e - b)
                parts.setdefault("the calls' wall time", []).append(calls_s)
                parts.setdefault("console itself (total - calls)", []).append(total - calls_s)
                parts.setdefault("page total", []).append(total)
    finally:
        del up.call  # the instance attribute goes; the class's method is back
    for name, (args, kw) in made.items():

        async def alone(args: tuple[Any, ...] = args, kw: dict[str, Any] = kw) -> None:
            await original(*args, **kw)

        parts[f"{name} (alone)"] = await timed(alone, n)
    return {name: summary_ms(samples) for name, samples in parts.items()}


async def _verdicts(stack: BenchStack, code: str) -> list[tuple[str, str | None]]:
    """Sharing's verdict (and a bot verdict's reason) of each click on ``code``, in the order received."""
    conn = await asyncpg.connect(db_url(stack, "sharing").replace("postgresql+asyncpg", "postgresql"))
    try:
        rows = await conn.fetch("SELECT verdict, reason FROM clicks WHERE code = $1 ORDER BY received_at, id", code)
    finally:
        await conn.close()
    return [(str(r["verdict"]), r["reason"]) for r in rows]


async def wall(stack: BenchStack, app: Any) -> dict[str, Any]:
    """Clicks one at a time on the top employee's tracked link; each 302 to the SSE message showing it.

    A click is matched to the first message after its 302 whose points for the employee exceed
    those the wall showed before it (a counted click is worth 1 point). Two things keep that
    honest: the share's own points are on the wall before the first click (else its message is
    matched to a click: the points each matched message added are reported, 1 being a click's),
    and the first click comes SCANNER_WINDOW after the share: sharing judges three clicks from one
    network within a second in a new share's first seconds a mail scanner's (``scanner_timing``,
    not counted, so the wall rightly does not move), and the clicks used to start 1-2 s after the
    share, a few hundred ms apart. Each click's verdict is read back from sharing's journal, so an
    unmatched click says why."""
    from advocacy_sharing.domain import SCANNER_WINDOW

    window = "week"  # what /wall shows by default
    admin = mint_token(stack.keys, tenant=TENANT, sub="boss", roles=["admin"], ttl_seconds=7200)
    async with httpx.AsyncClient(
        base_url=stack.services.url("gamification"), headers={"Authorization": f"Bearer {admin}"}, timeout=30
    ) as gam:
        top = (await gam.get("/v1/leaderboard", params={"window": window, "limit": 10})).json()["items"][0]
    emp = str(top["employee_id"])
    before_share = int(top["points"])
    token = mint_token(stack.keys, tenant=TENANT, sub=emp, roles=["employee"], ttl_seconds=7200)
    async with httpx.AsyncClient(
        base_url=stack.services.url("content"), headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as content:
        content_id = (await content.get("/v1/content", params={"limit": 1})).json()["items"][0]["id"]
    async with httpx.AsyncClient(
        base_url=stack.services.url("sharing"), headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as sharing:
        deadline = time.monotonic() + 60
        while True:
            r = await sharing.post("/v1/shares", json={"content_id": content_id, "network": "linkedin"})
            if r.status_code == 201 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert r.status_code == 201, r.text
        shared = time.monotonic()
        code = str(r.json()["code"])
    cookie, csrf = await session_for(app, stack, emp, "employee", str(top.get("team") or "team0"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console") as console:
        r = await console.post("/wall/ticket", headers={"X-CSRF-Token": csrf}, cookies={"console_session": cookie})
        assert r.status_code == 200, r.text
        ticket = r.json()["ticket"]
    messages: asyncio.Queue[tuple[float, int]] = asyncio.Queue()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    matched: list[bool] = []
    steps: dict[int, int] = {}  # points a matched message added (a counted click is worth 1)
    async with (
        httpx.AsyncClient(base_url=stack.services.url("gamification"), timeout=httpx.Timeout(10, read=60)) as sse,
        sse.stream("GET", "/v1/leaderboard/stream", params={"window": window, "ticket": ticket}) as resp,
    ):
        assert resp.status_code == 200

        async def read() -> None:
            async for line in resp.aiter_lines():
                if line.startswith("data: "):
                    items = orjson.loads(line[6:])["items"]
                    points = next((int(i["points"]) for i in items if i["employee_id"] == emp), -1)
                    messages.put_nowait((time.monotonic(), points))

        reader = asyncio.create_task(read())
        # the share's own points on the wall first (at most 30 s), then one quiet second
        last = -1
        settle = time.monotonic() + 30
        while time.monotonic() < settle:
            try:
                _, last = await asyncio.wait_for(messages.get(), max(0.1, settle - time.monotonic()))
            except TimeoutError:
                break
            if last > before_share and messages.empty():
                await asyncio.sleep(1.0)
                if messages.empty():
                    break
        settled_on_share = last > before_share
        # no click in the new share's first seconds (a person does not click that fast; a scanner does)
        await asyncio.sleep(max(0.0, shared + SCANNER_WINDOW.total_seconds() + 1.0 - time.monotonic()))
        async with httpx.AsyncClient(base_url=stack.services.url("sharing"), timeout=10) as visitor:
            for k in range(CLICKS):
                r = await visitor.get(
                    f"/r/{code}",
                    headers={
                        "User-Agent": board_bench.CHROME,
                        "Accept-Language": board_bench.ACCEPT_LANGUAGE,
                        "Accept": "text/html",
                        "X-Forwarded-For": f"203.0.{113 + k // 250}.{k % 250 + 1}",
                    },
                )
                clicked = time.monotonic()
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                if r.status_code != 302:
                    matched.append(False)
                    continue
                found = False
                while True:
                    try:
                        at, points = await asyncio.wait_for(messages.get(), 30)
                    except TimeoutError:
                        break
                    if points > last:
                        steps[points - last] = steps.get(points - last, 0) + 1
                        last = points
                        latencies.append(at - clicked)
                        found = True
                        break
                matched.append(found)
                await asyncio.sleep(0.2)
        reader.cancel()
    verdicts = await _verdicts(stack, code)
    by_verdict: dict[str, int] = {}
    for v, reason in verdicts:
        key = f"{v} ({reason})" if reason else v
        by_verdict[key] = by_verdict.get(key, 0) + 1
    # the clicks came one at a time: the journal's order is theirs (a 302 each, so one row each)
    unmatched = [
        f"#{k + 1}: " + (" ".join(x for x in verdicts[k] if x) if k < len(verdicts) else "not in the journal")
        for k, ok in enumerate(matched)
        if not ok
    ]
    return {"employee": emp, "window": window, "clicks": CLICKS, "statuses": statuses, **summary_ms(latencies),
            "matched": len(latencies), "max_ms": max(latencies) * 1000 if latencies else float("nan"),
            "verdicts": by_verdict, "unmatched": unmatched, "settled_on_share": settled_on_share,
            "steps": steps}  # fmt: skip


def report(
    data: dict[str, Any],
    results: list[tuple[str, dict[str, float]]],
    parts: dict[str, dict[str, float]],
    wall_run: dict[str, Any],
    load: dict[str, Any],
) -> str:
    over = [p for p, s in results if s["p99_ms"] >= TARGET_MS]
    waited = f"after waiting {load['waited_s']:.0f} s (at most {QUIET_WAIT_S:.0f} s) for load1 < {QUIET_LOAD}: " + (
        "quiet" if load["quiet"] else "**not quiet**"
    )
    lines = [
        f"Load average (1/5/15 min) on a machine shared with other engineers' runs: {load_text(load['before'])} "
        f"just before the page measurements ({waited}), {load_text(load['after'])} just after them, "
        f"{load_text(os.getloadavg())} at the end (after the wall).",
        f"Dataset: gamification {data['gamification_rows']:,} leaderboard rows for "
        f"{board_bench.EMPLOYEES:,} members ({data['gamification_s']:.0f} s); metrics at scale "
        f"{reads_bench.SCALE} ({reads_bench.EMPLOYEES:,} employees, {reads_bench.SHARES:,} shares, "
        f"~{reads_bench.SHARES * reads_bench.CLICKS_PER_SHARE:,} clicks; {data['metrics_s']:.0f} s); "
        f"{CONTENT_ITEMS} content items.",
        "",
        f"First render, server time, {N} calls each (console in-process, services over loopback):",
        "",
        "| page | p50 ms | p99 ms | < 300 ms |",
        "| --- | ---: | ---: | --- |",
        *(
            f"| {p} | {s['p50_ms']:.1f} | {s['p99_ms']:.1f} | {'yes' if s['p99_ms'] < TARGET_MS else '**no**'} |"
            for p, s in results
        ),
        "",
        f"Pages over target (p99): {', '.join(over) or 'none'}.",
        "",
        f"/admin/analytics's parts, {N} more calls (each upstream call as the console waits for it):",
        "",
        "| part | p50 ms | p99 ms |",
        "| --- | ---: | ---: |",
        *(f"| {name} | {s['p50_ms']:.1f} | {s['p99_ms']:.1f} |" for name, s in parts.items()),
        "",
        f"Wall: click (302) -> the SSE message on the wall's stream (window {wall_run['window']}, the top "
        f"employee), {wall_run['clicks']} clicks one at a time, statuses {wall_run['statuses']}, "
        f"{wall_run['matched']} matched: p50 {wall_run['p50_ms']:.0f} ms, p99 {wall_run['p99_ms']:.0f} ms, "
        f"max {wall_run['max_ms']:.0f} ms (target {WALL_TARGET_S:.0f} s: "
        f"{'met' if wall_run['p99_ms'] < WALL_TARGET_S * 1000 else '**missed**'}). "
        f"Sharing's verdicts of the clicks: {wall_run['verdicts']}; unmatched: "
        f"{', '.join(wall_run['unmatched']) or 'none'}; points each matched message added: {wall_run['steps']} "
        f"(1 is a click's; the share's points were on the wall before the first click: "
        f"{'yes' if wall_run['settled_on_share'] else '**no**'}).",
    ]
    return "\n".join(lines)


async def run(stack: BenchStack) -> str:
    data = await seed(stack)
    app = console_app(stack)
    async with app.router.lifespan_context(app):
        load = await quiet()
        load["before"] = os.getloadavg()
        print(f"load before the pages: {load_text(load['before'])} (waited {load['waited_s']:.0f} s)", flush=True)
        results, parts = await pages(stack, app)
        load["after"] = os.getloadavg()
        wall_run = await wall(stack, app)
    return report(data, results, parts, wall_run, load)


def main() -> None:
    from bench.stackutil import bench_stack

    with bench_stack(
        ["content", "sharing", "metrics", "gamification"],
        extra_env={"sharing": {"SHARING_REDIRECT_LAG_BUDGET_MS": "0"}},
    ) as stack:
        body = asyncio.run(run(stack))
    print(body)
    append_results("Console: first render of every page, and the wall's click -> SSE", body)


if __name__ == "__main__":
    main()
