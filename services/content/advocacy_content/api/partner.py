"""Partner webhooks (admins): endpoints and their secrets, the delivery log, redelivery and replay."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from advocacy_common.auth import AdminPrincipal
from advocacy_common.db import SessionDep
from advocacy_common.instants import Instant
from advocacy_common.openapi import answers
from advocacy_common.pagination import Page, PageDep
from advocacy_content.features import partner

router = APIRouter(prefix="/v1/partner", tags=["partner"])

Scheme = Literal["standard", "legacy"]
EventTypes = Annotated[list[Annotated[str, Field(min_length=1, max_length=200)]], Field(min_length=1, max_length=50)]


class WebhookSecret(BaseModel):
    secret: str
    rotated_at: datetime


class Delivery(BaseModel):
    id: str
    endpoint_id: str | None = Field(description="The endpoint; null for the tenant-wide URL (deprecated).")
    event_id: str
    event_type: str
    url: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int = Field(description="Attempts in the current round (a redelivery or replay starts a new one).")
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None


class Attempt(BaseModel):
    attempt: int
    started_at: datetime
    latency_ms: int | None
    status_code: int | None
    error: str | None


class DeliveryDetail(Delivery):
    attempt_log: list[Attempt] = Field(description="Every attempt, newest first (at most 100).")


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    partner_id: str = Field(
        min_length=1, max_length=63, pattern=r"^[a-z0-9._-]+$", description="The partner it serves (sharing's id)."
    )
    url: str = Field(min_length=1, max_length=2048)
    event_types: EventTypes | None = Field(
        default=None, description="The partner-visible types it receives; null (default): every one."
    )
    signature_scheme: Scheme = Field(
        default="standard", description="`standard` (Standard Webhooks) or the deprecated `legacy` scheme."
    )


class EndpointUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=1, max_length=2048)
    event_types: EventTypes | None = None
    signature_scheme: Scheme | None = None
    enabled: bool | None = Field(default=None, description="true re-enables an endpoint a 410 disabled.")


class Endpoint(BaseModel):
    id: str
    partner_id: str
    url: str
    event_types: list[str] | None
    signature_scheme: Scheme
    enabled: bool
    disabled_at: datetime | None
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime


class EndpointCreated(Endpoint):
    secret: str = Field(description="The endpoint's `whsec_` signing secret (shown once).")


class EndpointSecret(BaseModel):
    secret: str = Field(description="The new `whsec_` secret (shown once).")
    rotated_at: datetime
    previous_valid_until: datetime | None = Field(description="The previous secret signs too until then.")


class Replay(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: Instant
    until: Instant


class Replayed(BaseModel):
    replayed: int = Field(description="Deliveries due again now (each sent once more).")


def _default_overlap(request: Request) -> int:
    return int(request.app.state.settings.webhook_secret_overlap_hours)


DefaultOverlap = Annotated[int, Depends(_default_overlap)]


@router.post("/webhook-secret/rotate", response_model=WebhookSecret, deprecated=True)
async def rotate_webhook_secret(who: AdminPrincipal, session: SessionDep) -> WebhookSecret:
    """A new secret for the tenant-wide webhook URL (the deprecated scheme), shown only in this answer."""
    return WebhookSecret.model_validate(await partner.rotate_secret(session, who))


@router.get("/webhook-deliveries", operation_id="listWebhookDeliveries", response_model=Page[Delivery])
async def webhook_deliveries(
    who: AdminPrincipal,
    session: SessionDep,
    page: PageDep,
    status: Annotated[Literal["pending", "delivered", "failed"] | None, Query()] = None,
    endpoint_id: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[Delivery]:
    """The delivery log: every webhook, its attempts and the last answer, newest first."""
    items, cursor = await partner.list_deliveries(session, who, page, status, endpoint_id)
    return Page(items=[Delivery.model_validate(i) for i in items], next_cursor=cursor)


@router.get("/webhook-deliveries/{delivery_id}", response_model=DeliveryDetail)
async def get_webhook_delivery(who: AdminPrincipal, session: SessionDep, delivery_id: str) -> DeliveryDetail:
    """One delivery and the log of its attempts (answer, latency)."""
    return DeliveryDetail.model_validate(await partner.get_delivery(session, who, delivery_id))


@router.post(
    "/webhook-deliveries/{delivery_id}/redeliver",
    operation_id="createWebhookRedelivery",
    status_code=status.HTTP_202_ACCEPTED,
    responses=answers(409),
    response_model=DeliveryDetail,
)
async def redeliver_webhook(who: AdminPrincipal, session: SessionDep, delivery_id: str) -> DeliveryDetail:
    """Send a delivered or failed delivery again (a new round of attempts)."""
    return DeliveryDetail.model_validate(await partner.redeliver(session, who, delivery_id))


@router.post(
    "/webhook-endpoints", status_code=status.HTTP_201_CREATED, responses=answers(409), response_model=EndpointCreated
)
async def create_webhook_endpoint(who: AdminPrincipal, session: SessionDep, body: EndpointCreate) -> EndpointCreated:
    """A webhook endpoint for a partner, with its first secret (shown only in this answer)."""
    created = await partner.create_endpoint(
        session,
        who,
        partner_id=body.partner_id,
        url=body.url,
        event_types=body.event_types,
        signature_scheme=body.signature_scheme,
    )
    return EndpointCreated.model_validate(created)


@router.get("/webhook-endpoints", response_model=list[Endpoint])
async def list_webhook_endpoints(who: AdminPrincipal, session: SessionDep) -> list[Endpoint]:
    """The tenant's webhook endpoints (at most 20)."""
    return [Endpoint.model_validate(e) for e in await partner.list_endpoints(session, who)]


@router.get("/webhook-endpoints/{endpoint_id}", response_model=Endpoint)
async def get_webhook_endpoint(who: AdminPrincipal, session: SessionDep, endpoint_id: str) -> Endpoint:
    """One endpoint: its filter, scheme, and whether it is enabled (a 410 from it disables it)."""
    return Endpoint.model_validate(await partner.get_endpoint(session, who, endpoint_id))


@router.patch("/webhook-endpoints/{endpoint_id}", response_model=Endpoint)
async def update_webhook_endpoint(
    who: AdminPrincipal, session: SessionDep, endpoint_id: str, body: EndpointUpdate
) -> Endpoint:
    """Change the URL, the event types (null: every type), the scheme, or re-enable (`enabled`)."""
    # Fields left out stay; an explicit null means "every type" for event_types, nothing elsewhere.
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None or k == "event_types"}
    return Endpoint.model_validate(await partner.update_endpoint(session, who, endpoint_id, changes))


@router.post("/webhook-endpoints/{endpoint_id}/secret/rotate", response_model=EndpointSecret)
async def rotate_webhook_endpoint_secret(
    who: AdminPrincipal,
    session: SessionDep,
    endpoint_id: str,
    default_overlap: DefaultOverlap,
    overlap_hours: Annotated[int | None, Query(ge=0, le=168)] = None,
) -> EndpointSecret:
    """A new secret; the previous one keeps signing for `overlap_hours` (default: the service's
    `CONTENT_WEBHOOK_SECRET_OVERLAP_HOURS`, 24), both signatures sent meanwhile."""
    hours = default_overlap if overlap_hours is None else overlap_hours
    rotated = await partner.rotate_endpoint_secret(session, who, endpoint_id, timedelta(hours=hours))
    return EndpointSecret.model_validate(rotated)


@router.post(
    "/webhook-endpoints/{endpoint_id}/replay",
    operation_id="createWebhookReplay",
    status_code=status.HTTP_202_ACCEPTED,
    responses=answers(409),
    response_model=Replayed,
)
async def replay_webhooks(who: AdminPrincipal, session: SessionDep, endpoint_id: str, body: Replay) -> Replayed:
    """Send again, once each, the endpoint's delivered or failed deliveries created in [since, until)
    (at most 7 days and 1,000 deliveries)."""
    return Replayed.model_validate(await partner.replay(session, who, endpoint_id, body.since, body.until))
