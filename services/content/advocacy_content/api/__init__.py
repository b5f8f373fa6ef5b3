"""HTTP routes of the content service: parse, call the use case, return schemas. No SQL here.

One module per feature (``features/``), named alike; ``content`` holds every route under
``/v1/content`` (the board, items, suggestions), whose order matters: ``/content/suggestions``
before ``/content/{content_id}``."""

from __future__ import annotations

from fastapi import APIRouter

from advocacy_content.api import coaching, content, members, partner, policy, scim, tenant_settings, waves

router = APIRouter()
for _module in (content, policy, members, waves, coaching, tenant_settings, partner, scim):
    router.include_router(_module.router)

__all__ = ["router"]
