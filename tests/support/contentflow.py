"""A tenant publishing content and sharing it while others load the platform, timed from a process of
its own (scenario 10's good tenant).

Why a process: the hostile generator of scenario 10 is Python doing CPU work at a high rate in the
test process; on a loaded 2-core machine its event loop ran seconds behind, and the good tenant's
delays measured on that loop were the generator's lag (a share the server answered in < 5 s measured
27 s), not the platform's. Here the flow runs alone on its own loop, as a front-end would: its figures
are what a tenant sees. The open-loop schedule is the test's ``at_rate``: item ``i`` starts at
``i * every`` seconds, whatever the earlier ones are doing.

``run(spec)`` is module level (the ``spawn`` start method imports this module and calls it); the spec
and the result are plain dicts.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.support.helpers import eventually


def run(spec: dict[str, Any]) -> dict[str, list[float]]:
    """Publish an item every ``spec["every"]`` seconds for ``spec["seconds"]``, share each as a new
    person as soon as sharing knows it, and wait for each share's webhook; the delays, in order."""
    return asyncio.run(_run(spec))


async def _run(spec: dict[str, Any]) -> dict[str, list[float]]:
    every, seconds = float(spec["every"]), float(spec["seconds"])
    tokens: list[str] = spec["employee_tokens"]
    hooks = Path(spec["webhooks"])
    content_delays: dict[int, float] = {}
    webhook_delays: dict[int, float] = {}

    async with (
        httpx.AsyncClient(
            base_url=spec["content_url"], timeout=30.0, headers={"Authorization": f"Bearer {spec['admin_token']}"}
        ) as content,
        httpx.AsyncClient(base_url=spec["sharing_url"], timeout=30.0) as sharing,
    ):

        async def flow(i: int) -> None:
            r = await content.post(
                "/v1/content", json={"title": f"Good {i}", "url": f"https://example.com/{uuid.uuid4().hex}"}
            )
            assert r.status_code == 201, r.text
            item = str(r.json()["id"])
            published = time.monotonic()

            async def shared() -> str | None:
                r = await sharing.post(
                    "/v1/shares",
                    json={"content_id": item, "network": "linkedin"},
                    headers={"Authorization": f"Bearer {tokens[i]}"},
                )
                if r.status_code == 404:
                    return None
                assert r.status_code in (200, 201), r.text
                return str(r.json()["code"])

            await eventually(shared, timeout=60, what=f"sharing learns item {i}")
            content_delays[i] = time.monotonic() - published
            shared_at = time.time()

            async def arrived() -> float | None:
                for line in hooks.read_bytes().splitlines() if hooks.exists() else []:
                    hit = orjson.loads(line)
                    event = orjson.loads(hit["body"])
                    if event["type"].endswith("share.created.v1") and event["data"].get("content_id") == item:
                        return float(hit["at"])
                return None

            at = await eventually(arrived, timeout=60, interval=0.2, what=f"the webhook of item {i}")
            webhook_delays[i] = at - shared_at

        loop = asyncio.get_running_loop()
        start, tasks, i = loop.time(), [], 0
        while i * every < seconds and i < len(tokens):
            await asyncio.sleep(max(0.0, start + i * every - loop.time()))
            tasks.append(asyncio.create_task(flow(i)))
            i += 1
        await asyncio.gather(*tasks)
    return {
        "content_to_sharing_s": [content_delays[k] for k in sorted(content_delays)],
        "webhook_after_share_s": [webhook_delays[k] for k in sorted(webhook_delays)],
    }
