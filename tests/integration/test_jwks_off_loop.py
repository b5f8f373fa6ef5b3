"""A JWKS fetch never stalls the event loop (issue 12): a token with an unknown kid makes the
verifier fetch the JWKS in a worker thread while the loop keeps running; keys past their max-age are
refreshed in the background. Against a real HTTP server that answers slowly."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from advocacy_common.auth import JWTVerifier, ensure_dev_keys, mint_token
from advocacy_common.auth.devkeys import DEV_AUDIENCE, DEV_ISSUER
from advocacy_common.errors import Unauthorized

pytestmark = pytest.mark.integration

SLOW = 1.5


class _Issuer:
    def __init__(self, jwks: bytes) -> None:
        self.jwks = jwks
        self.requests = 0
        self.slow = False
        self.trickle = False  # the answer one byte every 0.5 s: each read finishes, the whole never does


@pytest.fixture
def issuer(tmp_path: Path) -> Iterator[tuple[str, _Issuer]]:
    keys = ensure_dev_keys(tmp_path / "trusted")
    state = _Issuer(keys.jwks_path.read_bytes())

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests += 1
            if state.slow:
                time.sleep(SLOW)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "public, max-age=60")
            self.send_header("Content-Length", str(len(state.jwks)))
            self.end_headers()
            if state.trickle:
                for i in range(len(state.jwks)):
                    try:
                        self.wfile.write(state.jwks[i : i + 1])
                        self.wfile.flush()
                    except OSError:
                        return  # the client gave up
                    time.sleep(0.5)
                return
            self.wfile.write(state.jwks)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json", state
    finally:
        server.shutdown()


async def _longest_stall(work: asyncio.Future[object]) -> float:
    """The longest gap between 10 ms ticks of the loop while ``work`` runs."""
    longest, last = 0.0, time.monotonic()
    while not work.done():
        await asyncio.sleep(0.01)
        now = time.monotonic()
        longest, last = max(longest, now - last), now
    return longest


async def test_an_unknown_kid_is_fetched_off_the_loop(issuer: tuple[str, _Issuer], tmp_path: Path) -> None:
    url, state = issuer
    verifier = JWTVerifier(DEV_ISSUER, DEV_AUDIENCE, jwks_url=url, refetch_seconds=0.0)
    assert state.requests == 1  # the start-up fetch
    stranger = ensure_dev_keys(tmp_path / "stranger")  # a key the issuer does not publish
    token = mint_token(stranger, tenant="t", sub="s", roles=["employee"])
    state.slow = True
    began = time.monotonic()
    work = asyncio.ensure_future(verifier.averify(token))
    stall = await _longest_stall(work)
    with pytest.raises(Unauthorized, match="unknown key"):
        await work
    assert time.monotonic() - began >= SLOW and state.requests == 2  # it did wait for the fetch ...
    assert stall < 0.5, f"the loop stalled {stall:.2f} s"  # ... but the loop went on meanwhile


async def test_keys_past_their_max_age_are_refreshed_in_the_background(
    issuer: tuple[str, _Issuer], tmp_path: Path
) -> None:
    url, state = issuer
    now = [1_000_000.0]
    verifier = JWTVerifier(DEV_ISSUER, DEV_AUDIENCE, jwks_url=url, clock=lambda: now[0])
    trusted = json.loads(state.jwks)["keys"][0]["kid"]
    assert verifier.key_ids == {trusted}
    rotated = ensure_dev_keys(tmp_path / "rotated")
    state.jwks = rotated.jwks_path.read_bytes()  # the issuer rotated its key
    state.slow = True
    token = mint_token(ensure_dev_keys(tmp_path / "unpublished"), tenant="t", sub="s", roles=["employee"])
    now[0] += 61  # past max-age=60
    work = asyncio.ensure_future(verifier.averify(token))
    stall = await _longest_stall(work)
    with pytest.raises(Unauthorized):
        await work  # signed by a key nobody publishes: refused at once, the refresh runs behind
    assert stall < 0.5
    async with asyncio.timeout(SLOW * 3):
        while verifier.key_ids != {rotated.kid}:
            await asyncio.sleep(0.05)
    assert state.requests == 2


async def test_a_trickling_or_huge_jwks_is_given_up_within_the_deadline(
    issuer: tuple[str, _Issuer], tmp_path: Path
) -> None:
    """Issue 12: the fetch had a timeout per read, so a byte every 4 s held it (and a thread) for
    ever, and it read a body of any size. Now the whole fetch has a deadline and a size cap, and the
    verifier keeps the keys it has."""
    from advocacy_common.auth import verifier as module

    url, state = issuer
    verifier = JWTVerifier(DEV_ISSUER, DEV_AUDIENCE, jwks_url=url, refetch_seconds=0.0)
    known = verifier.key_ids
    state.trickle = True
    began = time.monotonic()
    with pytest.raises(Exception, match="no complete JWKS"):
        module.fetch_jwks(url)
    assert time.monotonic() - began < module.FETCH_TIMEOUT_SECONDS + 2
    state.trickle = False
    state.jwks = b'{"keys": [' + b" " * (module.MAX_JWKS_BYTES + 10) + b"]}"
    with pytest.raises(ValueError, match="over"):
        module.fetch_jwks(url)
    token = mint_token(ensure_dev_keys(tmp_path / "stranger"), tenant="t", sub="s", roles=["employee"])
    with pytest.raises(Unauthorized):
        await verifier.averify(token)  # the refetch fails: the known keys stay
    assert verifier.key_ids == known
