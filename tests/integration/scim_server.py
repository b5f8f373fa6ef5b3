"""The content service serving SCIM over real HTTP for the SCIM tests: uvicorn on a free port, the
real PostgreSQL, API role (no relay: the events stay in the outbox, where the tests read them)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
import uvicorn
from scim2_client import BaseSyncSCIMClient
from scim2_client.client import RawResponse

from advocacy_common.auth.devkeys import DevKeys
from advocacy_common.migrations import upgrade
from advocacy_content.app import create_app
from advocacy_content.settings import ContentSettings
from advocacy_dev.devstack.net import free_port


class HttpxSCIMClient(BaseSyncSCIMClient):
    """scim2-client's network engine on the project's httpx (the library ships one for httpx2, a
    fork with the same client API: this is that engine, line for line, on httpx)."""

    def __init__(self, client: httpx.Client, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client = client

    def _stays_under_base_url(self, endpoint: str) -> bool:
        base = self.client.base_url
        url = self.client.build_request("GET", endpoint).url
        return url.scheme == base.scheme and url.netloc == base.netloc and url.raw_path.startswith(base.raw_path)

    def _parse_json(self, response: RawResponse) -> Any:
        return cast(httpx.Response, response).json()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.client.request(method, url, **kwargs)


@dataclass
class ScimServer:
    base: str  # http://127.0.0.1:<port>
    database_url: str
    secrets: dict[str, str] = field(default_factory=dict)  # tenant -> its SCIM secret

    def client(self, tenant: str | None = None, secret: str | None = None) -> httpx.AsyncClient:
        token = secret if secret is not None else self.secrets[tenant or ""]
        return httpx.AsyncClient(
            base_url=f"{self.base}/scim/v2",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"},
            timeout=30,
        )


@asynccontextmanager
async def serving_scim(
    database_url: str, dev_keys: DevKeys, mint: Callable[..., str], tenants: list[str]
) -> AsyncIterator[ScimServer]:
    """The content service on a free port, with a SCIM secret rotated (by an admin) for each tenant."""
    await asyncio.to_thread(upgrade, "advocacy_content", database_url)
    settings = ContentSettings(
        database_url=database_url,
        role="api",
        dev_mode=True,
        jwt_jwks_path=str(dev_keys.jwks_path),
        log_json=False,
        log_level="WARNING",
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None))
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(20):
        while not server.started:
            await asyncio.sleep(0.05)
    out = ScimServer(base=f"http://127.0.0.1:{port}", database_url=database_url)
    try:
        async with httpx.AsyncClient(base_url=out.base) as c:
            for tenant in tenants:
                r = await c.post(
                    "/v1/scim/secret/rotate", headers={"Authorization": f"Bearer {mint(tenant, 'root', 'admin')}"}
                )
                assert r.status_code == 200, r.text
                out.secrets[tenant] = r.json()["secret"]
        yield out
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)
