"""Partner webhooks: signing-secret rotation and the delivery log (admins)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from advocacy_common.auth import AdminPrincipal
from advocacy_common.db import SessionDep
from advocacy_common.pagination import Page, PageDep
from advocacy_content.features import partner

router = APIRouter(prefix="/v1/partner", tags=["partner"])


class WebhookSecret(BaseModel):
    secret: str
    rotated_at: datetime


class Delivery(BaseModel):
    id: str
    event_id: str
    event_type: str
    url: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None


@router.post("/webhook-secret/rotate", response_model=WebhookSecret)
async def rotate_webhook_secret(who: AdminPrincipal, session: SessionDep) -> WebhookSecret:
    """A new signing secret for the tenant's webhooks, shown only in this answer."""
    return WebhookSecret.model_validate(await partner.rotate_secret(session, who))


@router.get("/webhook-deliveries", operation_id="listWebhookDeliveries", response_model=Page[Delivery])
async def webhook_deliveries(
    who: AdminPrincipal,
    session: SessionDep,
    page: PageDep,
    status: Annotated[Literal["pending", "delivered", "failed"] | None, Query()] = None,
) -> Page[Delivery]:
    """The delivery log: every webhook, its attempts and the last answer, newest first."""
    items, cursor = await partner.list_deliveries(session, who, page, status)
    return Page(items=[Delivery.model_validate(i) for i in items], next_cursor=cursor)
