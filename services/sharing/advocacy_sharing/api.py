"""HTTP routes of the sharing service (the redirect itself is adapters/redirect.py, in front of these)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import ValidationError

from advocacy_common.auth import AdminPrincipal, EmployeePrincipal
from advocacy_common.auth.deps import get_principal
from advocacy_common.auth.principal import ADMIN, PARTNER
from advocacy_common.db import SessionDep
from advocacy_common.errors import Forbidden, Unauthorized, Unprocessable, validation_details
from advocacy_common.net import ClientAddress
from advocacy_common.networks import Network, intent_url
from advocacy_common.pagination import Page, PageDep
from advocacy_sharing import domain
from advocacy_sharing.db import Account, Share
from advocacy_sharing.features import accounts, clicks, conversions, shares
from advocacy_sharing.parts import parts_of
from advocacy_sharing.schemas import (
    AccountIn,
    AccountList,
    AccountPublic,
    ConversionIn,
    ConversionOut,
    InvalidateIn,
    InvalidateOut,
    LinkVerdicts,
    SecretOut,
    ShareCreate,
    SharePublic,
)
from advocacy_sharing.settings import SharingSettings

router = APIRouter(prefix="/v1", tags=["sharing"])


def _settings(request: Request) -> SharingSettings:
    s = request.app.state.settings
    assert isinstance(s, SharingSettings)
    return s


def _link(settings: SharingSettings, code: str) -> str:
    return f"{settings.public_base_url.rstrip('/')}/r/{code}"


def _public(share: Share, settings: SharingSettings, warnings: list[str] | None = None) -> SharePublic:
    link = _link(settings, share.code)
    return SharePublic(
        id=share.id,
        code=share.code,
        link=link,
        intent_url=intent_url(Network(share.network), link, share.message),
        network=share.network,
        content_id=share.content_id,
        message=share.message,
        warnings=warnings or [],
        employee_id=share.employee_id,
        audience_size=share.audience_size,
        created_at=share.created_at,
    )


def _requester_visitor(request: Request, settings: SharingSettings) -> str:
    """The visitor key of this request, as the redirect would compute it (self-click detection)."""
    addresses: ClientAddress = getattr(request.app.state, "client_address", None) or ClientAddress(
        settings.trusted_proxies
    )
    request.app.state.client_address = addresses
    peer = request.client.host if request.client else ""
    ip = addresses.resolve(peer, request.headers.get("x-forwarded-for"))
    ua = request.headers.get("user-agent", "")[:512]
    return domain.visitor_hash(settings.visitor_secret, datetime.now(UTC).date(), ip, ua)


@router.post("/shares", status_code=status.HTTP_201_CREATED, response_model=SharePublic)
async def create_share(
    body: ShareCreate, who: EmployeePrincipal, session: SessionDep, request: Request, response: Response
) -> SharePublic:
    settings = _settings(request)
    result = await shares.create_share(
        session,
        who,
        body,
        link_template=_link(settings, "x" * domain.CODE_LENGTH),
        creator_visitor=_requester_visitor(request, settings),
        authenticity=shares.AuthenticityRule(settings.authenticity_min_colleagues, settings.authenticity_similarity),
    )
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return _public(result.share, settings, result.warnings)


@router.get("/shares", response_model=Page[SharePublic])
async def list_shares(
    who: EmployeePrincipal,
    session: SessionDep,
    request: Request,
    page: PageDep,
    employee_id: Annotated[str | None, Query(max_length=200)] = None,
    content_id: Annotated[str | None, Query(max_length=64)] = None,
    network: Network | None = None,
) -> Page[SharePublic]:
    settings = _settings(request)
    rows, next_cursor = await shares.list_shares(
        session, who, page, employee_id=employee_id, content_id=content_id, network=network
    )
    return Page[SharePublic](items=[_public(s, settings) for s in rows], next_cursor=next_cursor)


def _account(a: Account) -> AccountPublic:
    return AccountPublic(network=a.network, handle=a.handle, audience_size=a.audience_size, updated_at=a.updated_at)


@router.put("/accounts/{network}", response_model=AccountPublic)
async def put_account(network: Network, body: AccountIn, who: EmployeePrincipal, session: SessionDep) -> AccountPublic:
    return _account(await accounts.put_account(session, who, network, body))


@router.get("/accounts", response_model=AccountList)
async def list_accounts(who: EmployeePrincipal, session: SessionDep) -> AccountList:
    return AccountList(items=[_account(a) for a in await accounts.list_accounts(session, who)])


@router.post("/clicks/invalidate", response_model=InvalidateOut)
async def invalidate(body: InvalidateIn, who: AdminPrincipal, session: SessionDep) -> InvalidateOut:
    return InvalidateOut(invalidated=await clicks.invalidate_clicks(session, who.tenant_id, body))


@router.get("/links/{code}/verdicts", response_model=LinkVerdicts)
async def link_verdicts(code: str, who: AdminPrincipal, session: SessionDep) -> LinkVerdicts:
    """Why the clicks of one link were or were not counted: clicks by verdict and reason."""
    return await clicks.link_verdicts(session, who.tenant_id, code)


@router.post("/conversions", status_code=status.HTTP_202_ACCEPTED, response_model=ConversionOut)
async def record_conversion(request: Request, session: SessionDep) -> ConversionOut:
    """A partner token, or the HMAC headers (API.md). Authentication comes before the body is judged."""
    settings = _settings(request)
    raw = await request.body()
    now = datetime.now(UTC)
    if request.headers.get("authorization"):
        who = await get_principal(request)
        if not who.has_any_role(PARTNER, ADMIN):
            raise Forbidden("requires role: partner or admin")
        tenant_id = who.tenant_id
    else:
        tenant = request.headers.get("x-advocacy-tenant")
        ts = request.headers.get("x-advocacy-timestamp")
        sig = request.headers.get("x-advocacy-signature")
        if not (tenant and ts and sig):
            raise Unauthorized(
                "a partner token or the X-Advocacy-Tenant, X-Advocacy-Timestamp and X-Advocacy-Signature headers"
            )
        await conversions.verify_signed(
            session,
            conversions.SignedRequest(tenant, ts, sig),
            raw,
            now=now,
            max_skew_seconds=settings.conversion_max_skew_seconds,
        )
        tenant_id = tenant
    try:
        body = ConversionIn.model_validate_json(raw)
    except ValidationError as e:
        details = validation_details(e.errors())
        raise Unprocessable("; ".join(f"{d['field']}: {d['message']}" for d in details), details=details) from e
    click_ids = parts_of(request.app.state.runtime).click_ids
    conversion_id = await conversions.record_conversion(session, tenant_id, body, click_ids=click_ids, now=now)
    return ConversionOut(conversion_id=conversion_id)


@router.post("/conversion-secrets/rotate", response_model=SecretOut, status_code=status.HTTP_201_CREATED)
async def rotate_conversion_secret(who: AdminPrincipal, session: SessionDep, request: Request) -> SecretOut:
    settings = _settings(request)
    secret, previous_until = await conversions.rotate_secret(
        session, who.tenant_id, now=datetime.now(UTC), grace=timedelta(hours=settings.conversion_secret_grace_hours)
    )
    return SecretOut(secret=secret.secret, created_at=secret.created_at, previous_valid_until=previous_until)
