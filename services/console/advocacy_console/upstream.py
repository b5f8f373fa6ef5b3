"""The four public REST APIs, called with the person's own token: the console sees exactly what the
person may see, and nothing a front-end team could not get (no database, no broker: ADR 0014)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import httpx

from advocacy_console.settings import ConsoleSettings

Service = Literal["content", "sharing", "metrics", "gamification"]
# An answer larger than this is refused rather than rendered (a page lists at most 200 items).
MAX_ANSWER_BYTES = 4 * 1024 * 1024


class UpstreamUnavailable(Exception):
    """A service did not answer (down, timed out, or said something that is not JSON)."""

    def __init__(self, service: str, reason: str) -> None:
        super().__init__(f"{service}: {reason}")
        self.service = service


class SessionEnded(Exception):
    """A service answered 401: the token is no longer good, the person must log in again."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def error_message(self) -> str:
        """The API's error message (``{"error": {"message", "details"}}``), for a person to read."""
        error = self.body.get("error") if isinstance(self.body, dict) else None
        if not isinstance(error, dict):
            return f"the request failed ({self.status})"
        message = str(error.get("message") or f"the request failed ({self.status})")
        details = error.get("details")
        if isinstance(details, list) and details:
            parts = [str(d.get("message")) for d in details[:5] if isinstance(d, dict) and d.get("message")]
            if parts:
                message += ": " + "; ".join(parts)
        return message


class Upstream:
    """One pooled HTTP client for the four APIs."""

    def __init__(self, settings: ConsoleSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.bases: dict[str, str] = {
            "content": settings.content_url.rstrip("/"),
            "sharing": settings.sharing_url.rstrip("/"),
            "metrics": settings.metrics_url.rstrip("/"),
            "gamification": settings.gamification_url.rstrip("/"),
        }
        self.client = httpx.AsyncClient(
            timeout=settings.upstream_timeout_seconds, follow_redirects=False, transport=transport
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def call(
        self,
        service: Service,
        method: str,
        path: str,
        token: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        url = self.bases[service] + path
        try:
            r = await self.client.request(
                method, url, params=params, json=json, headers={**(headers or {}), "Authorization": f"Bearer {token}"}
            )
        except httpx.HTTPError as e:
            raise UpstreamUnavailable(service, type(e).__name__) from e
        if r.status_code == 401:
            raise SessionEnded
        if r.status_code >= 500:
            raise UpstreamUnavailable(service, f"answered {r.status_code}")
        if len(r.content) > MAX_ANSWER_BYTES:
            raise UpstreamUnavailable(service, "answer too large")
        try:
            body = r.json() if r.content else None
        except ValueError as e:
            raise UpstreamUnavailable(service, "answer is not JSON") from e
        return Answer(r.status_code, body)

    async def open_stream(self, service: Service, path: str, token: str, *, params: dict[str, Any]) -> httpx.Response:
        """A streamed GET (a CSV export) for the caller to relay and close; 401 and 5xx as in ``call``."""
        request = self.client.build_request(
            "GET", self.bases[service] + path, params=params, headers={"Authorization": f"Bearer {token}"}
        )
        try:
            r = await self.client.send(request, stream=True)
        except httpx.HTTPError as e:
            raise UpstreamUnavailable(service, type(e).__name__) from e
        if r.status_code == 401 or r.status_code >= 500:
            await r.aclose()
            if r.status_code == 401:
                raise SessionEnded
            raise UpstreamUnavailable(service, f"answered {r.status_code}")
        return r

    async def ready(self) -> dict[str, bool]:
        out: dict[str, bool] = {}
        for name, base in self.bases.items():
            try:
                out[name] = (await self.client.get(base + "/readyz", timeout=2.0)).status_code == 200
            except httpx.HTTPError:
                out[name] = False
        return out
