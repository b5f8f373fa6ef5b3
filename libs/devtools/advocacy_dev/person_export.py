"""``advocacy export-person``: one person's data export, assembled from the five services.

Each service answers ``GET /v1/data-export/<service>/{employee_id}`` with what it holds about the person
(:mod:`advocacy_common.person_export`; an admin, or the person themselves); services do not read each
other's data, so the parts are put side by side here (or by a front end doing the same four calls):

    {"employee_id": ..., "tenant_id": ..., "generated_at": ..., "services": {"content": {...}, ...}}

Each section holds at most ``section_limit`` rows (1000) and says ``truncated`` when there were more.
A service that does not answer 200 fails the whole export: a partial export would read as complete.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

SERVICES = ("content", "sharing", "metrics", "gamification", "notifications")


class ExportError(RuntimeError):
    pass


def assemble(urls: Mapping[str, str], token: str, employee_id: str, *, timeout: float = 30.0) -> dict[str, Any]:
    """Call every service's export route and put the parts in one document."""
    parts: dict[str, Any] = {}
    headers = {"Authorization": f"Bearer {token}"}
    who = quote(employee_id, safe="")
    with httpx.Client(timeout=timeout, headers=headers) as client:
        for svc in SERVICES:
            try:
                r = client.get(f"{urls[svc].rstrip('/')}/v1/data-export/{svc}/{who}")
            except httpx.HTTPError as e:
                raise ExportError(f"{svc}: {e}") from e
            if r.status_code != 200:
                raise ExportError(f"{svc} answered {r.status_code}: {r.text[:300]}")
            parts[svc] = r.json()
    tenants = {p.get("tenant_id") for p in parts.values()}
    return {
        "employee_id": employee_id,
        "tenant_id": tenants.pop() if len(tenants) == 1 else None,
        "generated_at": datetime.now(UTC).isoformat(),
        "services": parts,
    }
