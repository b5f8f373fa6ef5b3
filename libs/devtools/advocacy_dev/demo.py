"""``make demo``: the platform end to end against a running stack, through HTTP only.

An admin of a fresh tenant publishes a piece of content; three employees in two teams share it;
visitors click the links (a Zipf-like spread, each from its own address with a real browser
User-Agent); then the demo waits until metrics and the leaderboard show exactly those clicks.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:
    from advocacy_common.auth.devkeys import DevKeys

T = TypeVar("T")

BROWSER_USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
]
# The three documentation ranges (RFC 5737): 762 distinct visitor addresses.
_VISITOR_NETS = ("203.0.113", "198.51.100", "192.0.2")
# Default points (API.md): a share 10, a counted click 1.
DEFAULT_SHARE_POINTS = 10
DEFAULT_CLICK_POINTS = 1


class DemoError(RuntimeError):
    pass


@dataclass(frozen=True)
class DemoUrls:
    content: str = "http://127.0.0.1:8001"
    sharing: str = "http://127.0.0.1:8002"
    metrics: str = "http://127.0.0.1:8003"
    gamification: str = "http://127.0.0.1:8004"


@dataclass(frozen=True)
class Employee:
    sub: str
    name: str
    team: str
    network: str


EMPLOYEES = [
    Employee("alice", "Alice Martin", "sales", "linkedin"),
    Employee("bob", "Bob Okafor", "sales", "x"),
    Employee("carol", "Carol Nguyen", "marketing", "linkedin"),
]


@dataclass
class DemoResult:
    tenant: str
    content_id: str
    codes: dict[str, str] = field(default_factory=dict)  # sub -> link code
    clicks_sent: dict[str, int] = field(default_factory=dict)  # sub -> redirects that answered 302
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)  # sub -> metrics body
    leaderboard: list[dict[str, Any]] = field(default_factory=list)
    complete: bool = False  # every number showed up within the time allowed


def visitor_ip(i: int) -> str:
    """A distinct documentation address for visitor ``i`` (0 <= i < 762)."""
    net, host = divmod(i, 254)
    if net >= len(_VISITOR_NETS):
        raise ValueError("at most 762 distinct visitors")
    return f"{_VISITOR_NETS[net]}.{host + 1}"


def zipf_split(total: int, n: int, s: float = 1.1) -> list[int]:
    """Split ``total`` over ``n`` ranks proportionally to 1/rank^s (largest remainders)."""
    weights = [1 / (rank**s) for rank in range(1, n + 1)]
    exact = [total * w / sum(weights) for w in weights]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(n), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _keys(keys_dir: Path) -> DevKeys:
    from advocacy_common.auth.devkeys import ensure_dev_keys

    keys_dir.mkdir(parents=True, exist_ok=True)
    return ensure_dev_keys(keys_dir)


def _token(keys: DevKeys, tenant: str, sub: str, roles: list[str], team: str | None, name: str | None) -> str:
    from advocacy_common.auth.devkeys import mint_token

    return mint_token(keys, tenant=tenant, sub=sub, roles=roles, team=team, name=name, ttl_seconds=3600)


async def _poll(attempt: Callable[[], Awaitable[T | None]], timeout: float, interval: float = 0.25) -> T | None:
    """Call ``attempt`` until it returns something other than None, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await attempt()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(interval)


def _check(r: httpx.Response, *expected: int) -> dict[str, Any]:
    if r.status_code not in expected:
        raise DemoError(f"{r.request.method} {r.request.url} -> {r.status_code}: {r.text[:500]}")
    body: dict[str, Any] = r.json() if r.content else {}
    return body


async def _demo(
    urls: DemoUrls, keys: DevKeys, clicks: int, tenant: str, timeout: float, console: Console
) -> DemoResult:
    rng = random.Random(tenant)
    admin = {"Authorization": f"Bearer {_token(keys, tenant, 'admin', ['admin'], None, 'Demo Admin')}"}
    employee_headers = {
        e.sub: {"Authorization": f"Bearer {_token(keys, tenant, e.sub, ['employee'], e.team, e.name)}"}
        for e in EMPLOYEES
    }
    async with httpx.AsyncClient(timeout=10.0) as http:
        for svc, base in vars(urls).items():
            try:
                await http.get(f"{base}/readyz")
            except httpx.HTTPError as exc:
                raise DemoError(f"cannot reach {svc} at {base} ({exc!r}); is `make run` running?") from exc

        console.rule(f"[bold]tenant {tenant}")
        body = _check(
            await http.post(
                f"{urls.content}/v1/content",
                headers=admin,
                json={
                    "title": "How we cut our release time in half",
                    "url": "https://example.com/blog/release-time",
                    "tags": ["engineering", "culture"],
                    "captions": {
                        "linkedin": "Our engineering team halved release time. Here is how.",
                        "x": "We halved our release time. The story:",
                    },
                },
            ),
            201,
        )
        result = DemoResult(tenant=tenant, content_id=str(body["id"]))
        console.print(f"[green]published[/] content {result.content_id} (status {body.get('status')})")

        # Sharing learns about the content from the content.published event: 404 until then.
        async def share(e: Employee) -> dict[str, Any] | None:
            r = await http.post(
                f"{urls.sharing}/v1/shares",
                headers=employee_headers[e.sub],
                json={"content_id": result.content_id, "network": e.network},
            )
            if r.status_code == 404:
                return None
            return _check(r, 200, 201)

        with console.status("waiting for sharing to receive the content..."):
            first = await _poll(lambda: share(EMPLOYEES[0]), timeout)
        if first is None:
            raise DemoError(f"sharing still answers 404 for content {result.content_id} after {timeout:.0f}s")
        shares = {EMPLOYEES[0].sub: first}
        for e in EMPLOYEES[1:]:
            shared = await share(e)
            if shared is None:
                raise DemoError(f"sharing answered 404 to {e.sub}")
            shares[e.sub] = shared
        for e in EMPLOYEES:
            result.codes[e.sub] = str(shares[e.sub]["code"])
            console.print(f"[green]shared[/] by {e.name} ({e.team}) on {e.network}: {shares[e.sub]['link']}")

        # Clicks: Zipf-like over the three links, each from its own address.
        counts = zipf_split(clicks, len(EMPLOYEES))
        plan = [e.sub for e, n in zip(EMPLOYEES, counts, strict=True) for _ in range(n)]
        rng.shuffle(plan)
        result.clicks_sent = dict.fromkeys(result.codes, 0)
        failures: list[str] = []
        gate = asyncio.Semaphore(16)
        with Progress(
            TextColumn("clicks"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        ) as progress:
            task = progress.add_task("clicks", total=len(plan))

            async def click(i: int, sub: str) -> None:
                headers = {
                    "X-Forwarded-For": visitor_ip(i),
                    "User-Agent": rng.choice(BROWSER_USER_AGENTS),
                    "Accept": "text/html,application/xhtml+xml",
                    "Accept-Language": "en-GB,en;q=0.9",
                    "Referer": "https://www.linkedin.com/",
                }
                async with gate:
                    r = await http.get(f"{urls.sharing}/r/{result.codes[sub]}", headers=headers)
                if r.status_code == 302:
                    result.clicks_sent[sub] += 1
                else:
                    failures.append(f"{r.status_code} {r.text[:100]}")
                progress.advance(task)

            await asyncio.gather(*(click(i, sub) for i, sub in enumerate(plan)))
        if failures:
            console.print(f"[yellow]{len(failures)} redirects failed, first: {failures[0]}[/]")

        # Metrics and points arrive through Kafka: poll until they show every click.
        async def metrics_done() -> bool | None:
            for e in EMPLOYEES:
                r = await http.get(f"{urls.metrics}/v1/metrics/employees/{e.sub}", headers=admin)
                if r.status_code != 200:
                    return None
                result.metrics[e.sub] = r.json()
            ok = all(
                result.metrics[e.sub].get("clicks") == result.clicks_sent[e.sub]
                and result.metrics[e.sub].get("shares") == 1
                for e in EMPLOYEES
            )
            return True if ok else None

        expected_points = {
            e.sub: DEFAULT_SHARE_POINTS + DEFAULT_CLICK_POINTS * result.clicks_sent[e.sub] for e in EMPLOYEES
        }

        async def board_done() -> bool | None:
            r = await http.get(f"{urls.gamification}/v1/leaderboard", params={"window": "all"}, headers=admin)
            if r.status_code != 200:
                return None
            result.leaderboard = list(r.json().get("items", []))
            points = {item.get("employee_id"): item.get("points") for item in result.leaderboard}
            return True if all(points.get(sub) == p for sub, p in expected_points.items()) else None

        with console.status("waiting for metrics and the leaderboard to count every click..."):
            metrics_ok = await _poll(metrics_done, timeout) is not None
            board_ok = await _poll(board_done, timeout) is not None
        result.complete = metrics_ok and board_ok and not failures
        if not metrics_ok:
            console.print(f"[yellow]metrics did not reach the clicks sent within {timeout:.0f}s[/]")
        if not board_ok:
            console.print(
                f"[yellow]the leaderboard did not reach the expected points within {timeout:.0f}s "
                "(expected with the default rules: a share 10, a click 1)[/]"
            )
    return result


def render(result: DemoResult, console: Console) -> None:
    board = Table(title=f"Leaderboard (all time) - {result.tenant}")
    for col, justify in (("rank", "right"), ("employee", "left"), ("team", "left"), ("points", "right")):
        board.add_column(col, justify=justify)  # type: ignore[arg-type]
    for item in result.leaderboard:
        board.add_row(
            str(item.get("rank")), str(item.get("name")), str(item.get("team") or ""), str(item.get("points"))
        )
    console.print(board)

    table = Table(title="Per employee")
    for col in ("employee", "team", "shares", "clicks sent", "clicks counted", "not counted"):
        table.add_column(col, justify="left" if col in ("employee", "team") else "right")
    for e in EMPLOYEES:
        m = result.metrics.get(e.sub, {})
        verdicts = m.get("clicks_by_verdict") or {}
        others = ", ".join(f"{k} {v}" for k, v in verdicts.items() if k != "counted" and v)
        table.add_row(
            e.name,
            e.team,
            str(m.get("shares", "-")),
            str(result.clicks_sent.get(e.sub, 0)),
            str(m.get("clicks", "-")),
            others or "-",
        )
    console.print(table)
    status = "[bold green]every click accounted for[/]" if result.complete else "[bold yellow]incomplete[/]"
    console.print(status)


def run_demo(
    urls: DemoUrls | None = None,
    *,
    keys_dir: Path,
    clicks: int = 300,
    tenant: str | None = None,
    timeout: float = 60.0,
    console: Console | None = None,
) -> DemoResult:
    """Run the demo and print its tables; returns the numbers (the e2e tests assert on them)."""
    console = console or Console()
    tenant = tenant or f"demo-{uuid.uuid4().hex[:8]}"
    keys = _keys(keys_dir)
    result = asyncio.run(_demo(urls or DemoUrls(), keys, clicks, tenant, timeout, console))
    render(result, console)
    return result
