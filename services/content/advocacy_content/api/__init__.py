"""HTTP routes of the content service: parse, call the use case, return schemas. No SQL here."""

from __future__ import annotations

from fastapi import APIRouter

from advocacy_content.api import coaching, content, partner, policy, programme, tenant

router = APIRouter()
for _module in (content, policy, programme, coaching, tenant, partner):
    router.include_router(_module.router)

__all__ = ["router"]
