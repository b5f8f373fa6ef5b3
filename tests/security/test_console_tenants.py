"""The web console never shows or acts on another tenant's data (issue 20): tenant B, logged in
through the console, cannot share tenant A's content by its id, and no page B opens (board, my
results, wall, analytics, CSV export) carries anything only A's data contains. The console calls
the real services of the security stack with B's token; it runs in-process."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from advocacy_console.app import create_app
from advocacy_console.pages import SESSION_COOKIE
from advocacy_console.settings import ConsoleSettings
from tests.security.conftest import World
from tests.support.stackkit import PrivateStack

SERVICES = ("content", "sharing", "metrics", "gamification")


@pytest.fixture
async def console_as_b(sec_stack: PrivateStack) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Two browsers of tenant B on a console over the security stack: an employee and an admin."""
    settings = ConsoleSettings(
        dev_mode=True,
        dev_keys_dir=Path(sec_stack.keys.private_path).parent,
        cookie_secure=False,
        **{f"{svc}_url": sec_stack.url(svc) for svc in SERVICES},  # type: ignore[arg-type]
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    tenant = f"tb-{uuid.uuid4().hex[:8]}"
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as employee,
        httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as admin,
    ):
        for client, sub, role in ((employee, "mallory", "employee"), (admin, "boss-b", "admin")):
            page = await client.get("/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert csrf
            r = await client.post(
                "/login/dev", data={"csrf": csrf.group(1), "tenant": tenant, "sub": sub, "role": role, "team": "b"}
            )
            assert r.status_code == 303 and client.cookies.get(SESSION_COOKIE)
        yield employee, admin


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def leaked(text: str, world: World) -> set[str]:
    return {m for m in world.markers if m in text}


async def test_b_cannot_share_as_content_of_a_by_its_id(
    console_as_b: tuple[httpx.AsyncClient, httpx.AsyncClient], world: World, sec_stack: PrivateStack
) -> None:
    employee, _ = console_as_b
    board = await employee.get("/board")
    assert board.status_code == 200 and leaked(board.text, world) == set()
    r = await employee.post(
        "/share", data={"csrf": csrf_of(board.text), "content_id": world.ids["content_id"], "network": "linkedin"}
    )
    assert r.status_code == 303 and r.headers["location"] == "/board"  # not a share intent
    after = await employee.get("/board")
    assert "cannot be shared" in after.text and leaked(after.text, world) == set()
    # and sharing holds no share of B's person
    tenant_b = re.search(r'class="who">[^·]*· ([^<]+)<', after.text)
    assert tenant_b
    token = sec_stack.token(tenant_b.group(1).strip(), "mallory", "employee")
    async with sec_stack.client("sharing", token) as sharing:
        mine = (await sharing.get("/v1/shares")).json()
        assert mine["items"] == []


async def test_no_page_of_b_shows_anything_of_a(
    console_as_b: tuple[httpx.AsyncClient, httpx.AsyncClient], world: World
) -> None:
    employee, admin = console_as_b
    for client, path in (
        (employee, "/board"),
        (employee, "/board?q=SECRET"),
        (employee, "/me"),
        (employee, "/me?window=all"),
        (employee, "/wall?window=all"),
        (admin, "/board"),
        (admin, "/admin/analytics"),
        (admin, "/admin/analytics/export.csv?group_by=content"),
        (admin, "/admin/analytics/export.csv?group_by=employee"),
        (admin, "/admin/analytics/roi.csv"),
        (admin, "/admin/analytics/adoption.csv"),
        (admin, "/admin/content?status=published"),
        (admin, "/admin/suggestions"),
        (admin, "/admin/rules"),
        (employee, "/challenges"),
        (employee, "/coaching?status=open"),
        (admin, "/coaching?status=open"),
    ):
        r = await client.get(path)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        assert leaked(r.text, world) == set(), path


async def test_an_id_of_a_in_a_console_url_is_a_404_for_b(
    console_as_b: tuple[httpx.AsyncClient, httpx.AsyncClient], world: World, sec_stack: PrivateStack
) -> None:
    """Every console page and form that takes an id in its URL answers 404 for tenant A's id, and a
    form posted on A's id changes nothing of A's."""
    employee, admin = console_as_b
    ids = world.ids
    for client, path in (
        (admin, f"/admin/content/{ids['content_id']}"),
        (admin, f"/admin/content/{ids['suggestion_id']}"),
        (employee, f"/challenges/{ids['challenge_id']}"),
        (employee, f"/coaching/{ids['request_id']}"),
        (admin, f"/coaching/{ids['request_id']}"),
    ):
        r = await client.get(path)
        assert r.status_code == 404, (path, r.status_code, r.text[:300])
        assert leaked(r.text, world) == set(), path
    csrf = {c: csrf_of((await c.get("/board")).text) for c in (employee, admin)}
    for client, path, form in (
        (admin, f"/admin/content/{ids['content_id']}", {"title": "taken", "url": "https://example.com/x"}),
        (admin, f"/admin/suggestions/{ids['suggestion_id']}/approve", {}),
        (admin, f"/admin/suggestions/{ids['suggestion_id']}/reject", {"reason": "taken"}),
        (employee, f"/coaching/{ids['request_id']}/replies", {"text": "taken"}),
        (admin, f"/coaching/{ids['request_id']}/replies", {"text": "taken"}),
        (employee, f"/coaching/{ids['request_id']}/close", {}),
    ):
        r = await client.post(path, data={"csrf": csrf[client], **form})
        assert r.status_code == 404, (path, r.status_code, r.text[:300])
    # A's data is as it was
    token = sec_stack.token(world.tenant, world.admin, "admin")
    async with sec_stack.client("content", token) as c:
        assert "taken" not in (await c.get(f"/v1/content/{ids['content_id']}")).json()["title"]
        assert (await c.get(f"/v1/content/{ids['suggestion_id']}")).json()["status"] == "pending_review"
        thread = (await c.get(f"/v1/coaching/requests/{ids['request_id']}")).json()
        assert thread["status"] == "open" and not any(r["text"] == "taken" for r in thread.get("replies") or [])


async def test_the_leak_check_sees_as_own_data_when_a_looks(sec_stack: PrivateStack, world: World) -> None:
    """The control: through the same console, A's own employee does see A's markers (so the checks
    above would notice a leak)."""
    settings = ConsoleSettings(
        dev_mode=True,
        dev_keys_dir=Path(sec_stack.keys.private_path).parent,
        cookie_secure=False,
        **{f"{svc}_url": sec_stack.url(svc) for svc in SERVICES},  # type: ignore[arg-type]
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings)), base_url="http://x") as a:
        page = await a.get("/login")
        data = {"csrf": csrf_of(page.text), "tenant": world.tenant, "sub": world.employee, "role": "employee"}
        assert (await a.post("/login/dev", data={**data, "team": world.team})).status_code == 303
        assert leaked((await a.get("/board")).text, world)
