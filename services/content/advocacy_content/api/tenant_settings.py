"""Tenant settings (content is their system of record)."""

from __future__ import annotations

from fastapi import APIRouter

from advocacy_common.auth import AdminPrincipal
from advocacy_common.db import SessionDep
from advocacy_common.tenant import TenantSettingsIn
from advocacy_content.features import tenant_settings
from advocacy_content.schemas import TenantSettingsPublic

router = APIRouter(prefix="/v1/tenant", tags=["tenant"])


@router.get("/settings", operation_id="getTenantSettings", response_model=TenantSettingsPublic)
async def get_settings(who: AdminPrincipal, session: SessionDep) -> TenantSettingsPublic:
    return await tenant_settings.get_settings(session, who)


@router.put("/settings", operation_id="replaceTenantSettings", response_model=TenantSettingsPublic)
async def put_settings(body: TenantSettingsIn, who: AdminPrincipal, session: SessionDep) -> TenantSettingsPublic:
    """Replace the settings; every change is published to the other services."""
    return await tenant_settings.put_settings(session, who, body)
