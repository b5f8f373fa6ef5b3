"""HTTP routes of the sharing service (the redirect itself is adapters/redirect.py, in front of these)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from advocacy_common import action_links as action_tokens
from advocacy_common import audit, languages
from advocacy_common.auth import AdminPrincipal, EmployeePrincipal
from advocacy_common.auth.deps import get_principal
from advocacy_common.auth.principal import ADMIN, PARTNER
from advocacy_common.db import SessionDep, after_commit
from advocacy_common.errors import Forbidden, Unauthorized, Unprocessable, validation_details
from advocacy_common.net import ClientAddress
from advocacy_common.networks import Network, intent_url
from advocacy_common.openapi import BEARER_OR_SIGNED, answers, raw_body
from advocacy_common.pagination import Page, PageDep
from advocacy_common.tickets import TicketSigner
from advocacy_sharing import domain
from advocacy_sharing.adapters import action_pages
from advocacy_sharing.adapters.ratelimit import RateLimiter
from advocacy_sharing.db import DEFAULT_PARTNER, Account, Partner, Share
from advocacy_sharing.features import (
    accounts,
    action_links,
    clicks,
    conversions,
    links,
    partners,
    share_tickets,
    shares,
)
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
    PartnerCreated,
    PartnerIn,
    PartnerOut,
    RefusedLinkOut,
    SecretOut,
    ShareCreate,
    SharePublic,
    ShareTicket,
    ShareTicketIn,
    ShareWithTicket,
)
from advocacy_sharing.settings import SharingSettings


def _text(description: str, *headers: str) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
    if headers:
        answer["headers"] = {h: {"schema": {"type": "string"}} for h in headers}
    return answer


#: The public redirect, answered before the app's routing (adapters/redirect.py): its OpenAPI path
#: item, published in this service's document beside the routes (ServiceDefinition.openapi_paths).
REDIRECT_PATHS: dict[str, Any] = {
    "/r/{code}": {
        "get": {
            "operationId": "followLink",
            "summary": "Follow a tracked link",
            "description": "The visitor's click: a 302 to the content URL with a click id added (a conversion "
            "reports it back). No token. HEAD answers the same without counting a click.",
            "security": [],
            "parameters": [
                {
                    "name": "code",
                    "in": "path",
                    "required": True,
                    "description": "The link code of a share.",
                    "schema": {"type": "string", "maxLength": 500},
                }
            ],
            "responses": {
                "302": {
                    "description": "To the content, with the click id",
                    "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}},
                },
                "404": _text("No such link"),
                "410": _text("The content is no longer published, or its URL is now refused"),
                "414": _text("URI too long"),
                "429": _text("Too many clicks from this visitor: retry after `Retry-After` seconds", "Retry-After"),
                "503": _text("Busy (load shedding): retry after `Retry-After` seconds", "Retry-After"),
            },
        }
    }
}

# Read by record_conversion itself (it authenticates before it judges anything else).
_PARTNER_HEADER = {
    "name": "X-Advocacy-Partner",
    "in": "header",
    "required": False,
    "description": "The partner reporting: with the signed headers, only its secrets are tried; with an admin "
    "token, the partner reported for (default: the tenant's default partner). A partner token's own id or absent.",
    "schema": {"type": "string"},
}

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


def _read_ahead(request: Request, session: SessionDep, share: Share) -> None:
    """Once the share has committed, this process's redirect reads its link ahead of its first
    visit (LinkCache.prefetch; a worker-only process has no cache)."""
    cache = parts_of(request.app.state.runtime).cache
    if cache is not None:
        after_commit(session, lambda: cache.prefetch(share.code))


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


@router.post("/shares", responses=answers(429), status_code=status.HTTP_201_CREATED, response_model=SharePublic)
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
    _read_ahead(request, session, result.share)
    return _public(result.share, settings, result.warnings)


async def _ticket_signer(request: Request, session: SessionDep) -> TicketSigner:
    """The share-ticket signer, its key read once per process (a request with a forged ticket costs
    an HMAC, no database round trip)."""
    sign: TicketSigner | None = getattr(request.app.state, "share_ticket_signer", None)
    if sign is None:
        sign = request.app.state.share_ticket_signer = await share_tickets.signer(session)
    return sign


@router.post("/shares/tickets", status_code=status.HTTP_201_CREATED, response_model=ShareTicket)
async def create_share_ticket(
    body: ShareTicketIn, who: EmployeePrincipal, session: SessionDep, request: Request
) -> ShareTicket:
    """A 60-second, single-use ticket for one share (this item, on this network) that a browser may
    hold instead of the person's token: a front-end asks for it with the token, its page posts it
    to ``POST /v1/shares/with-ticket`` directly."""
    sign = await _ticket_signer(request, session)
    ticket, expires_at = share_tickets.issue(sign, who, body.content_id, body.network.value, datetime.now(UTC))
    return ShareTicket(ticket=ticket, expires_at=expires_at)


@router.post(
    "/shares/with-ticket",
    responses=answers(401, 409, 429),
    status_code=status.HTTP_201_CREATED,
    response_model=SharePublic,
    openapi_extra={"security": []},
)
async def create_share_with_ticket(
    body: ShareWithTicket, session: SessionDep, request: Request, response: Response
) -> SharePublic:
    """``POST /v1/shares`` for a browser: the ticket (``POST /v1/shares/tickets``) says who, what and
    where, and acts once (409 after); no bearer token. Every check of a share applies."""
    settings = _settings(request)
    result = await share_tickets.redeem(
        session,
        await _ticket_signer(request, session),
        body.ticket,
        body.message,
        link_template=_link(settings, "x" * domain.CODE_LENGTH),
        creator_visitor=_requester_visitor(request, settings),
        authenticity=shares.AuthenticityRule(settings.authenticity_min_colleagues, settings.authenticity_similarity),
    )
    if not result.created:
        response.status_code = status.HTTP_200_OK
    _read_ahead(request, session, result.share)
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


@router.put("/accounts/{network}", operation_id="replaceAccount", response_model=AccountPublic)
async def put_account(network: Network, body: AccountIn, who: EmployeePrincipal, session: SessionDep) -> AccountPublic:
    return _account(await accounts.put_account(session, who, network, body))


@router.get("/accounts", response_model=AccountList)
async def list_accounts(who: EmployeePrincipal, session: SessionDep) -> AccountList:
    return AccountList(items=[_account(a) for a in await accounts.list_accounts(session, who)])


@router.post("/clicks/invalidate", operation_id="invalidateClicks", response_model=InvalidateOut)
async def invalidate(body: InvalidateIn, who: AdminPrincipal, session: SessionDep) -> InvalidateOut:
    n = await clicks.invalidate_clicks(session, who.tenant_id, body)
    filters = body.model_dump(mode="json", by_alias=True, exclude_none=True)
    await audit.record(session, who.tenant_id, who.sub, "clicks.invalidated", after={**filters, "invalidated": n})
    return InvalidateOut(invalidated=n)


@router.get("/links/{code}/verdicts", operation_id="listLinkVerdicts", response_model=LinkVerdicts)
async def link_verdicts(code: str, who: AdminPrincipal, session: SessionDep) -> LinkVerdicts:
    """Why the clicks of one link were or were not counted: clicks by verdict and reason."""
    return await clicks.link_verdicts(session, who.tenant_id, code)


@router.get("/links/refused", operation_id="listRefusedLinks", response_model=Page[RefusedLinkOut])
async def refused_links(who: AdminPrincipal, session: SessionDep, page: PageDep) -> Page[RefusedLinkOut]:
    """Links whose content URL the canonical URL rules now refuse (they answer 410), with the reason."""
    rows, next_cursor = await links.refused_links(session, who.tenant_id, page)
    return Page[RefusedLinkOut](
        items=[
            RefusedLinkOut(
                code=r.code, content_id=r.content_id, network=r.network, created_at=r.created_at, reason=r.reason
            )
            for r in rows
        ],
        next_cursor=next_cursor,
    )


@router.post(
    "/conversions",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ConversionOut,
    responses=answers(401, 403, 404, 409, 413, 422),
    openapi_extra={**BEARER_OR_SIGNED, **raw_body(ConversionIn), "parameters": [_PARTNER_HEADER]},
)
async def record_conversion(request: Request, session: SessionDep) -> ConversionOut:
    """A partner token (its `sub` is the partner), or the HMAC headers: the secret that verifies names
    the partner (docs/partners.md). An admin token reports for `X-Advocacy-Partner` (default: the
    tenant's default partner). Authentication comes before the body is judged."""
    settings = _settings(request)
    raw = await request.body()
    now = datetime.now(UTC)
    named = request.headers.get("x-advocacy-partner")
    if request.headers.get("authorization"):
        who = await get_principal(request)
        tenant_id = who.tenant_id
        if who.has_role(PARTNER):
            partner_id = await partners.token_partner(session, tenant_id, who.sub)
            if named is not None and named != partner_id:
                raise Forbidden("X-Advocacy-Partner names another partner than the token")
        elif who.has_role(ADMIN):
            partner_id = await partners.token_partner(session, tenant_id, named) if named else DEFAULT_PARTNER
        else:
            raise Forbidden("requires role: partner or admin")
    else:
        tenant = request.headers.get("x-advocacy-tenant")
        ts = request.headers.get("x-advocacy-timestamp")
        sig = request.headers.get("x-advocacy-signature")
        if not (tenant and ts and sig):
            raise Unauthorized(
                "a partner token or the X-Advocacy-Tenant, X-Advocacy-Timestamp and X-Advocacy-Signature headers"
            )
        partner_id = await conversions.verify_signed(
            session,
            conversions.SignedRequest(tenant, ts, sig, named),
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
    conversion_id = await conversions.record_conversion(
        session, tenant_id, body, click_ids=click_ids, partner_id=partner_id, now=now
    )
    return ConversionOut(conversion_id=conversion_id)


def _overlap(request: Request, hours: int | None) -> timedelta:
    return timedelta(hours=_settings(request).conversion_secret_grace_hours if hours is None else hours)


OverlapHours = Annotated[
    int | None,
    Query(ge=0, le=168, description="How long the previous secret keeps verifying (default: the service's 24 h)."),
]


@router.post("/conversion-secrets/rotate", response_model=SecretOut, status_code=status.HTTP_201_CREATED)
async def rotate_conversion_secret(
    who: AdminPrincipal, session: SessionDep, request: Request, overlap_hours: OverlapHours = None
) -> SecretOut:
    """Rotates the secret of the tenant's default partner (`POST /v1/partners/default/secrets/rotate`)."""
    r = await partners.rotate_secret(
        session,
        who.tenant_id,
        who.sub,
        DEFAULT_PARTNER,
        now=datetime.now(UTC),
        overlap=_overlap(request, overlap_hours),
    )
    return SecretOut(
        secret=r.secret.secret, created_at=r.secret.created_at, previous_valid_until=r.previous_valid_until
    )


def _partner(p: Partner) -> PartnerOut:
    return PartnerOut(id=p.id, name=p.name, created_at=p.created_at, revoked_at=p.revoked_at)


@router.post("/partners", responses=answers(409), response_model=PartnerCreated, status_code=status.HTTP_201_CREATED)
async def create_partner(body: PartnerIn, who: AdminPrincipal, session: SessionDep) -> PartnerCreated:
    """A partner with its own conversion secret (in the answer, once) and `external_id` space."""
    p, secret = await partners.create_partner(
        session, who.tenant_id, who.sub, body.id, body.name, now=datetime.now(UTC)
    )
    return PartnerCreated(**_partner(p).model_dump(), secret=secret.secret)


@router.get("/partners", response_model=Page[PartnerOut])
async def list_partners(who: AdminPrincipal, session: SessionDep, page: PageDep) -> Page[PartnerOut]:
    rows, next_cursor = await partners.list_partners(session, who.tenant_id, page)
    return Page[PartnerOut](items=[_partner(p) for p in rows], next_cursor=next_cursor)


@router.post(
    "/partners/{partner_id}/secrets/rotate",
    responses=answers(409),
    response_model=SecretOut,
    status_code=status.HTTP_201_CREATED,
)
async def rotate_partner_secret(
    partner_id: Annotated[str, Path(max_length=63)],
    who: AdminPrincipal,
    session: SessionDep,
    request: Request,
    overlap_hours: OverlapHours = None,
) -> SecretOut:
    """A new secret; the previous one keeps verifying for `overlap_hours`, then stops."""
    r = await partners.rotate_secret(
        session, who.tenant_id, who.sub, partner_id, now=datetime.now(UTC), overlap=_overlap(request, overlap_hours)
    )
    return SecretOut(
        secret=r.secret.secret, created_at=r.secret.created_at, previous_valid_until=r.previous_valid_until
    )


@router.post("/partners/{partner_id}/revoke", responses=answers(409), response_model=PartnerOut)
async def revoke_partner(
    partner_id: Annotated[str, Path(max_length=63)], who: AdminPrincipal, session: SessionDep
) -> PartnerOut:
    """Every secret of the partner stops now; its tokens are refused from now on."""
    return _partner(await partners.revoke_partner(session, who.tenant_id, who.sub, partner_id, now=datetime.now(UTC)))


# -- one-click share buttons in messages (ADR 0016) -----------------------------------------------------
#: Requests to the share buttons' routes per client address per minute. Each costs a signature check
#: (~0.15 ms), so this bounds what one address can make a process spend (600 a minute: 0.15 % of a
#: core) while a whole office behind one NAT address still uses its digest at 9 o'clock.
SHARE_ACTIONS_PER_MINUTE = 600
_ACTION_PATH = "/v1/share-actions"
_ACTION_STATUS = {
    action_links.Kind.used: status.HTTP_409_CONFLICT,
    action_links.Kind.expired: status.HTTP_410_GONE,
    action_links.Kind.malformed: status.HTTP_400_BAD_REQUEST,
    action_links.Kind.refused: status.HTTP_403_FORBIDDEN,
}
_PAGE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}


def _html(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


SHARE_ACTION_DOC: dict[str, Any] = {
    "security": [],
    "parameters": [
        {
            "name": "token",
            "in": "query",
            "required": True,
            "description": "The signed token of the button (made by notifications; at most "
            f"{action_tokens.MAX_TOKEN_LENGTH} characters).",
            "schema": {"type": "string", "maxLength": action_tokens.MAX_TOKEN_LENGTH},
        }
    ],
}
_EXPLAINED: dict[int | str, dict[str, Any]] = {
    "400": _html("Not a link we made, or altered: a page that explains"),
    "403": _html("The share's own checks refuse it (not on the person's board...): a page that explains"),
    "409": _html("The button was used before: a page that explains"),
    "410": _html("The button has expired: a page that explains"),
    "429": _html("Too many requests from this address: retry after `Retry-After` seconds"),
}


def _token_of(request: Request) -> str:
    # read here, not validated by FastAPI: an over-long or missing token gets the page, not a 422
    return request.query_params.get("token", "")[: action_tokens.MAX_TOKEN_LENGTH + 1]


def _throttled(request: Request, settings: SharingSettings) -> HTMLResponse | None:
    limiter: RateLimiter | None = getattr(request.app.state, "share_action_limiter", None)
    if limiter is None:
        limiter = request.app.state.share_action_limiter = RateLimiter(limit=SHARE_ACTIONS_PER_MINUTE)
    addresses: ClientAddress = getattr(request.app.state, "client_address", None) or ClientAddress(
        settings.trusted_proxies
    )
    request.app.state.client_address = addresses
    peer = request.client.host if request.client else ""
    ip = addresses.resolve(peer, request.headers.get("x-forwarded-for"))
    if not limiter.hit(ip, datetime.now(UTC).timestamp()):
        return None
    page = action_pages.explain("busy", settings.board_url, language=_language(request))
    return HTMLResponse(page, status_code=429, headers={**_PAGE_HEADERS, "Retry-After": "60"})


def _language(request: Request, outcome: action_links.Outcome | None = None) -> str | None:
    """The page's language: the message's, which the button carries (ADR 0018), else the browser's."""
    if outcome is not None and outcome.action is not None and outcome.action.language:
        return outcome.action.language
    return languages.from_accept_language(request.headers.get("accept-language"))


def _explained(outcome: action_links.Outcome, settings: SharingSettings, request: Request) -> HTMLResponse:
    intent = None
    if outcome.kind is action_links.Kind.used and outcome.share is not None:
        intent = intent_url(Network(outcome.share.network), _link(settings, outcome.share.code), None)
    title = outcome.content.title if outcome.content is not None else None
    page = action_pages.explain(
        outcome.kind,
        settings.board_url,
        title=title,
        reason=outcome.message,
        intent=intent,
        language=_language(request, outcome),
    )
    return HTMLResponse(page, status_code=_ACTION_STATUS[outcome.kind], headers=_PAGE_HEADERS)


@router.get(
    _ACTION_PATH.removeprefix("/v1"),
    operation_id="getShareAction",
    response_class=HTMLResponse,
    openapi_extra=SHARE_ACTION_DOC,
    responses={"200": _html("A page that POSTs the button at once (a button when scripts are off)"), **_EXPLAINED},
)
async def show_share_action(request: Request, session: SessionDep) -> HTMLResponse:
    """A share button in a message (no login: the signed token says who, what and where). Changes
    nothing, as mail scanners fetch every link: the page it answers POSTs the same URL."""
    settings = _settings(request)
    throttled = _throttled(request, settings)
    if throttled is not None:
        return throttled
    token = _token_of(request)
    outcome = await action_links.preview(
        session, token, public_key=settings.action_link_public_key, now=datetime.now(UTC)
    )
    if outcome.kind is not action_links.Kind.shared:
        return _explained(outcome, settings, request)
    assert outcome.action is not None
    title = outcome.content.title if outcome.content is not None else None
    page = action_pages.confirm(outcome.action.network, title, _ACTION_PATH, token, _language(request, outcome))
    return HTMLResponse(page, headers=_PAGE_HEADERS)


@router.post(
    _ACTION_PATH.removeprefix("/v1"),
    operation_id="createShareFromAction",
    response_class=HTMLResponse,
    status_code=status.HTTP_303_SEE_OTHER,
    openapi_extra=SHARE_ACTION_DOC,
    responses={
        "303": {
            "description": "The share is made (or was already): to the network's share dialog with the tracked link",
            "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}},
        },
        **_EXPLAINED,
    },
)
async def use_share_action(request: Request, session: SessionDep) -> Response:
    """Use a share button: the share is created with every check a share has (``POST /v1/shares``),
    the button's ``jti`` recorded with it (single use), then a 303 to the network's share dialog."""
    settings = _settings(request)
    throttled = _throttled(request, settings)
    if throttled is not None:
        return throttled
    outcome = await action_links.use(
        session,
        _token_of(request),
        public_key=settings.action_link_public_key,
        link_template=_link(settings, "x" * domain.CODE_LENGTH),
        now=datetime.now(UTC),
    )
    if outcome.kind is not action_links.Kind.shared or outcome.share is None:
        return _explained(outcome, settings, request)
    share = outcome.share
    _read_ahead(request, session, share)
    title = outcome.content.title if outcome.content is not None else None
    target = intent_url(Network(share.network), _link(settings, share.code), share.message, title)
    if target is None:  # a network without a share dialog is never signed (action_links.shareable)
        return _explained(action_links.Outcome(action_links.Kind.malformed), settings, request)
    return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER, headers=_PAGE_HEADERS)
