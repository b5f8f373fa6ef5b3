"""Live boards: two API replicas (real uvicorn servers on one database); a change committed by a
worker reaches streams on both through LISTEN/NOTIFY; a ticket issued by one replica opens a
stream on the other; bursts are coalesced to at most 4 messages a second."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn

from advocacy_common.auth import Principal
from advocacy_common.tickets import TicketSigner
from advocacy_dev.devstack.net import free_port
from advocacy_gamification.adapters.stream import PURPOSE, issue_ticket
from advocacy_gamification.app import create_app
from advocacy_gamification.settings import GamificationSettings
from tests.integration.test_gamification_support import Gam, click, erased, gam, gam_url, share
from tests.support.sse import SSE

__all__ = ["gam", "gam_url"]


@contextlib.asynccontextmanager
async def replica(url: str, jwks: str) -> AsyncIterator[str]:
    settings = GamificationSettings(
        database_url=url, role="api", dev_mode=True, jwt_jwks_path=jwks, log_json=False, log_level="WARNING"
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.05)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


@pytest.fixture
async def replicas(gam: Gam) -> AsyncIterator[tuple[str, str]]:
    async with replica(gam.url, gam.jwks_path) as a, replica(gam.url, gam.jwks_path) as b:
        yield a, b


async def ticket(base: str, token: str) -> str:
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}) as c:
        r = await c.post("/v1/leaderboard/stream-tickets")
        assert r.status_code == 201, r.text
        body = r.json()
        expires = datetime.fromisoformat(body["expires_at"])
        assert timedelta(seconds=55) < expires - datetime.now(UTC) <= timedelta(seconds=61)
        return str(body["ticket"])


@contextlib.asynccontextmanager
async def stream(base: str, tkt: str, **params: Any) -> AsyncIterator[SSE]:
    async with (
        httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(10, read=30)) as c,
        c.stream("GET", "/v1/leaderboard/stream", params={"ticket": tkt, **params}) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        yield SSE(r)


def points_of(emp: str) -> Callable[[Any], int | None]:
    def get(data: Any) -> int | None:
        return next((i["points"] for i in data["items"] if i["employee_id"] == emp), None)

    return get


async def test_a_change_reaches_streams_on_every_replica(gam: Gam, replicas: tuple[str, str], new_tenant: str) -> None:
    t = new_tenant
    a, b = replicas
    await gam.apply(share(t, "ann"))
    tkt, other = [await ticket(a, gam.mint(t, "ann")) for _ in range(2)]  # issued by A ...
    ann = points_of("ann")
    async with stream(b, tkt, window="week") as on_b, stream(a, other) as on_a:  # ... verified by B
        for sse in (on_b, on_a):
            _, name, first = await sse.next(5)
            assert name == "leaderboard" and ann(first) == 10
        assert first["window"] == "all"
        await gam.apply(click(t, "ann"))  # committed by "a worker": neither replica applied it
        for sse in (on_b, on_a):
            _, data = await sse.until(lambda d: ann(d) == 11, 5)
            assert data["items"][0]["rank"] == 1


async def test_bursts_are_coalesced_to_ten_a_second(gam: Gam, replicas: tuple[str, str], new_tenant: str) -> None:
    t = new_tenant
    a, _ = replicas
    await gam.apply(share(t, "bob"))
    bob = points_of("bob")
    async with stream(a, await ticket(a, gam.mint(t, "bob"))) as sse:
        first_at, _, _ = await sse.next(5)

        commits: list[float] = []

        async def burst() -> None:
            for _ in range(40):  # back to back: 40 commits far faster than ten a second
                await gam.apply(click(t, "bob"))
                commits.append(asyncio.get_running_loop().time())

        producer = asyncio.create_task(burst())
        times = [first_at]
        last: Any = None
        while last is None or bob(last) != 50:
            at, _, last = await sse.next(5)
            times.append(at)
        await producer
        # the server spaces its messages >= 0.1 s apart (GAMIFICATION_STREAM_MIN_INTERVAL_SECONDS);
        # receiving can only bunch them up, so the span from the first message to the last bounds
        # how many there can have been
        assert (len(times) - 1) * 0.1 <= times[-1] - times[0] + 0.05, times
        # and the burst was coalesced: the messages after the first cannot outnumber the 0.1 s steps
        # the commits spanned, plus the one after the last commit (a loaded machine that slows the
        # commits down loosens the bound with them; one message per commit fails it)
        span = commits[-1] - commits[0]
        assert len(times) - 1 <= span / 0.1 + 2, (len(times), span, times)


async def test_tickets_are_checked(gam: Gam, replicas: tuple[str, str], new_tenant: str) -> None:
    a, b = replicas
    async with httpx.AsyncClient(base_url=b) as c:
        good = await ticket(a, gam.mint(new_tenant, "cy"))
        # issue 13: a non-ASCII MAC was a 500 (hmac.compare_digest on str)
        for bad in ["nope", "v1.e30.AAAA", good[:-2] + "xx", good[:-2] + "é€", "v1.e30.\U0001f600"]:
            r = await c.get("/v1/leaderboard/stream", params={"ticket": bad})
            assert r.status_code == 401, bad
        r = await c.get("/v1/leaderboard/stream")
        assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "ticket"
        r = await c.post("/v1/leaderboard/stream-tickets")
        assert r.status_code == 401
    # an expired ticket signed with the right key is refused too
    key_value = await gam.scalar("SELECT value FROM service_secrets WHERE name = 'stream_ticket_key'")
    signer = TicketSigner(hashlib.sha256(key_value.encode()).digest(), PURPOSE)
    old, _ = issue_ticket(
        signer, Principal("cy", new_tenant, frozenset({"employee"})), datetime.now(UTC) - timedelta(seconds=120)
    )
    async with httpx.AsyncClient(base_url=b) as c:
        r = await c.get("/v1/leaderboard/stream", params={"ticket": old})
        assert r.status_code == 401 and "expired" in r.json()["error"]["message"]
    # a ticket shows its own tenant's board only
    await gam.apply(share(new_tenant, "cy"))
    other = await ticket(a, gam.mint("t-else", "zz"))
    async with stream(b, other) as sse:
        _, _, data = await sse.next(5)
        assert data["items"] == []


async def test_a_ticket_opens_one_stream_on_any_replica(gam: Gam, replicas: tuple[str, str], new_tenant: str) -> None:
    a, b = replicas
    tkt = await ticket(a, gam.mint(new_tenant, "dee"))
    async with stream(b, tkt) as sse:
        await sse.next(timeout=10)
        for base in (a, b):  # used: refused on every replica, while the first stream is open
            async with httpx.AsyncClient(base_url=base) as c:
                r = await c.get("/v1/leaderboard/stream", params={"ticket": tkt})
            assert r.status_code == 401 and "already used" in r.text


async def _open(stack: contextlib.AsyncExitStack, base: str, tkt: str, **params: Any) -> httpx.Response:
    """Open a stream and keep it open (until ``stack`` closes); its response, whatever the status."""
    client = await stack.enter_async_context(httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(10, read=30)))
    r = await stack.enter_async_context(
        client.stream("GET", "/v1/leaderboard/stream", params={"ticket": tkt, **params})
    )
    if r.status_code != 200:
        await r.aread()
    return r


async def test_open_streams_are_capped_per_person_and_boards_per_tenant(
    gam: Gam, replicas: tuple[str, str], new_tenant: str
) -> None:
    a, _ = replicas
    token = gam.mint(new_tenant, "eve")
    async with contextlib.AsyncExitStack() as held:
        for _ in range(5):  # STREAM_MAX_PER_USER
            assert (await _open(held, a, await ticket(a, token))).status_code == 200
        r = await _open(held, a, await ticket(a, token))
        assert r.status_code == 429 and r.headers["retry-after"] == "5" and "5 streams open" in r.text
    # invented team names: each is a board that reads the database; 50 per tenant per process
    async with contextlib.AsyncExitStack() as held:
        answers = []
        for i in range(51):
            r = await _open(held, a, await ticket(a, gam.mint(new_tenant, f"p{i}")), team=f"x{i}")
            answers.append(r.status_code)
        assert answers == [200] * 50 + [429] and "50 different boards" in r.text
    # closed streams give their places back (once the server has seen the disconnects)
    for _ in range(50):
        async with contextlib.AsyncExitStack() as held:
            if (await _open(held, a, await ticket(a, token), team="x60")).status_code == 200:
                break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the places of closed streams were not given back")


async def test_a_stream_ends_when_its_token_expires(gam: Gam, replicas: tuple[str, str], new_tenant: str) -> None:
    """Issue 12: a stream outlived the token behind its ticket (an hour's token, a day's stream)."""
    a, b = replicas
    await gam.apply(share(new_tenant, "gus"))
    short = gam.mint(new_tenant, "gus", ttl_seconds=4)
    async with stream(b, await ticket(a, short)) as sse:
        _, name, _ = await sse.next(5)
        assert name == "leaderboard"
        _, name, data = await sse.next(10)  # keep-alives are every 15 s: this is the end, at expiry
        assert (name, data) == ("end", {"reason": "token_expired"})
        with pytest.raises(EOFError):
            await sse.next(5)


async def test_an_erased_persons_streams_end_and_no_ticket_opens_a_new_one(
    gam: Gam, replicas: tuple[str, str], new_tenant: str
) -> None:
    t = new_tenant
    a, b = replicas
    await gam.apply(share(t, "fay"), share(t, "hal"))
    fay, hal = gam.mint(t, "fay"), gam.mint(t, "hal")
    spare = await ticket(a, fay)
    tickets = await ticket(a, fay), await ticket(b, fay), await ticket(b, hal)
    async with stream(a, tickets[0]) as on_a, stream(b, tickets[1]) as on_b, stream(b, tickets[2]) as other:
        for sse in (on_a, on_b, other):
            assert (await sse.next(5))[1] == "leaderboard"
        await gam.apply(erased(t, "fay"))  # applied by "a worker": the replicas hear it by NOTIFY
        for sse in (on_a, on_b):
            _, data = await sse.until(lambda d: "reason" in d, 5)
            assert data == {"reason": "erased"}
            with pytest.raises(EOFError):
                await sse.next(5)
        # everyone else's stream goes on, and shows fay gone
        _, data = await other.until(lambda d: all(i["employee_id"] != "fay" for i in d["items"]), 5)
        assert "hal" in {i["employee_id"] for i in data["items"]}
    async with httpx.AsyncClient(base_url=b) as c:
        r = await c.get("/v1/leaderboard/stream", params={"ticket": spare})
    assert r.status_code == 401 and "erased" in r.json()["error"]["message"]
