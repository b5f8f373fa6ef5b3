from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from advocacy_common.auth import AdminPrincipal, EmployeePrincipal
from advocacy_common.db import SessionDep
from advocacy_common.pagination import Page, PageDep, as_offset, encode_cursor, parse_cursor
from advocacy_notifications.domain import (
    Category,
    Channel,
    ChatChannel,
    Defaults,
    Language,
    QuietHours,
    TemplateName,
    frequency_of,
)
from advocacy_notifications.features import chat, preferences, quiet_hours, reports, unsubscribe, wording
from advocacy_notifications.schemas import (
    ChatChannelIn,
    ChatChannelOut,
    DefaultsBody,
    LanguageIn,
    LanguageOut,
    PreferenceIn,
    PreferenceOut,
    QuietHoursBody,
    QuietHoursOut,
    ReportRecipientsBody,
    TemplateOverrideIn,
    TemplateOverrideOut,
    TenantLanguageBody,
    Unsubscribed,
)

router = APIRouter(prefix="/v1/notifications", tags=["notifications"])

# The links in messages work without logging in: the signed token says who.
NO_LOGIN: dict[str, Any] = {"security": []}

Token = Annotated[str, Query(min_length=1, max_length=1024, description="The signed token of the link in a message.")]


@router.get("/preferences", operation_id="listMyNotificationPreferences", response_model=Page[PreferenceOut])
async def my_preferences(who: EmployeePrincipal, session: SessionDep, page: PageDep) -> Page[PreferenceOut]:
    """What the caller receives, per category and channel (the tenant's default where they chose nothing).
    An admin's call also makes them a recipient of the weekly programme report (ADR 0017)."""
    await reports.note_admin(session, who, datetime.now(UTC))
    start = parse_cursor(page.cursor, as_offset)[0] if page.cursor else 0
    rows = await preferences.mine(session, who.tenant_id, who.sub)
    end = start + page.limit
    return Page[PreferenceOut](
        items=[PreferenceOut.model_validate(r) for r in rows[start:end]],
        next_cursor=encode_cursor([end]) if end < len(rows) else None,
    )


@router.put(
    "/preferences/{category}/{channel}", operation_id="updateMyNotificationPreference", response_model=PreferenceOut
)
async def set_my_preference(
    category: Category, channel: Channel, body: PreferenceIn, who: EmployeePrincipal, session: SessionDep
) -> PreferenceOut:
    """Choose how often the caller receives one category on one channel (``off`` stops it)."""
    await reports.note_admin(session, who, datetime.now(UTC))
    return PreferenceOut.model_validate(
        await preferences.choose(session, who.tenant_id, who.sub, category, channel, body.frequency)
    )


def _defaults_body(d: Defaults) -> DefaultsBody:
    q = d.quiet_hours
    return DefaultsBody(
        digest_frequency=d.digest_frequency,
        digest_hour=d.digest_hour,
        nudge_after_days=d.nudge_after_days,
        expiring_notice_hours=d.expiring_notice_hours,
        quiet_hours=QuietHoursBody(start_hour=q.start, end_hour=q.end) if q else None,
    )


@router.get("/defaults", operation_id="getNotificationDefaults", response_model=DefaultsBody)
async def get_defaults(admin: AdminPrincipal, session: SessionDep) -> DefaultsBody:
    """The tenant's defaults for people who chose nothing."""
    await reports.note_admin(session, admin, datetime.now(UTC))
    return _defaults_body(await preferences.defaults(session, admin.tenant_id))


@router.put("/defaults", operation_id="replaceNotificationDefaults", response_model=DefaultsBody)
async def set_defaults(body: DefaultsBody, admin: AdminPrincipal, session: SessionDep) -> DefaultsBody:
    d = Defaults(
        digest_frequency=body.digest_frequency,
        digest_hour=body.digest_hour,
        nudge_after_days=body.nudge_after_days,
        expiring_notice_hours=body.expiring_notice_hours,
        quiet_hours=body.quiet_hours.hours() if body.quiet_hours else None,
    )
    return _defaults_body(await preferences.set_defaults(session, admin.tenant_id, d))


@router.get("/defaults/categories", operation_id="listNotificationCategoryDefaults", response_model=list[PreferenceOut])
async def get_category_defaults(admin: AdminPrincipal, session: SessionDep) -> list[PreferenceOut]:
    """The tenant's default per category and channel for people who chose nothing (``chosen``:
    the tenant set it; otherwise ``on``, and the digest its ``digest_frequency``)."""
    d = await preferences.defaults(session, admin.tenant_id)
    tenant = await preferences.category_defaults(session, admin.tenant_id)
    return [
        PreferenceOut(
            category=cat,
            channel=ch,
            frequency=frequency_of(cat, None, tenant.get((cat, ch)), d),
            chosen=(cat, ch) in tenant,
        )
        for cat, ch in preferences.PAIRS
    ]


@router.put(
    "/defaults/categories/{category}/{channel}",
    operation_id="replaceNotificationCategoryDefault",
    response_model=PreferenceOut,
)
async def set_category_default(
    category: Category, channel: Channel, body: PreferenceIn, admin: AdminPrincipal, session: SessionDep
) -> PreferenceOut:
    """Turn a category ``on`` or ``off`` for the tenant's people who chose nothing (the digest: its
    ``digest_frequency`` in ``PUT /defaults``, 422 here)."""
    return PreferenceOut.model_validate(
        await preferences.set_category_default(session, admin.tenant_id, category, channel, body.frequency)
    )


@router.get("/defaults/report-recipients", operation_id="listReportRecipients", response_model=ReportRecipientsBody)
async def get_report_recipients(admin: AdminPrincipal, session: SessionDep) -> ReportRecipientsBody:
    """The people the tenant listed as recipients of the weekly programme report (ADR 0017); the
    admins who used this API in the last 90 days get it too."""
    await reports.note_admin(session, admin, datetime.now(UTC))
    return ReportRecipientsBody(employee_ids=await reports.listed(session, admin.tenant_id))


@router.put("/defaults/report-recipients", operation_id="replaceReportRecipients", response_model=ReportRecipientsBody)
async def set_report_recipients(
    body: ReportRecipientsBody, admin: AdminPrincipal, session: SessionDep
) -> ReportRecipientsBody:
    """Replace the list of the weekly report's recipients (at most 100 employee ids; an empty list:
    only the admins seen). A listed person is written to whatever their role, when their directory
    record has an address, they are active and did not turn the report off."""
    ids = await reports.set_listed(session, admin.tenant_id, body.employee_ids, datetime.now(UTC))
    return ReportRecipientsBody(employee_ids=ids)


def _quiet_out(hours: QuietHours | None, chosen: bool) -> QuietHoursOut:
    return QuietHoursOut(
        start_hour=hours.start if hours else None, end_hour=hours.end if hours else None, chosen=chosen
    )


@router.get("/quiet-hours", operation_id="getMyQuietHours", response_model=QuietHoursOut)
async def my_quiet_hours(who: EmployeePrincipal, session: SessionDep) -> QuietHoursOut:
    """The caller's quiet hours (local, the tenant's time zone): their own, or the tenant's default."""
    return _quiet_out(*await quiet_hours.mine(session, who.tenant_id, who.sub))


@router.put("/quiet-hours", operation_id="replaceMyQuietHours", response_model=QuietHoursOut)
async def set_my_quiet_hours(body: QuietHoursBody, who: EmployeePrincipal, session: SessionDep) -> QuietHoursOut:
    """Set the caller's quiet hours: messages composed in them wait until they end. Both hours
    null: none, whatever the tenant's default. 422 for an hour outside 0-23 or an empty range."""
    await quiet_hours.choose(session, who.tenant_id, who.sub, body.hours())
    return _quiet_out(body.hours(), True)


@router.delete("/quiet-hours", operation_id="deleteMyQuietHours", response_model=QuietHoursOut)
async def clear_my_quiet_hours(who: EmployeePrincipal, session: SessionDep) -> QuietHoursOut:
    """Back to the tenant's default quiet hours."""
    await quiet_hours.clear(session, who.tenant_id, who.sub)
    return _quiet_out(*await quiet_hours.mine(session, who.tenant_id, who.sub))


@router.get("/unsubscribe", operation_id="checkUnsubscribeLink", response_class=HTMLResponse, openapi_extra=NO_LOGIN)
async def show_unsubscribe(token: Token, session: SessionDep) -> HTMLResponse:
    """The page behind a message's unsubscribe link (no login): one button that confirms."""
    await unsubscribe.check(session, token)
    return HTMLResponse(unsubscribe.page(False, token, await unsubscribe.language(session, token)))


@router.post("/unsubscribe", operation_id="cancelSubscription", response_model=Unsubscribed, openapi_extra=NO_LOGIN)
async def do_unsubscribe(token: Token, request: Request, session: SessionDep) -> Response:
    """One-click unsubscribe (RFC 8058: a mail client POSTs ``List-Unsubscribe=One-Click``), or the
    page's button; no login, the signed token says who. Repeating it changes nothing."""
    done = Unsubscribed.model_validate(await unsubscribe.unsubscribe(session, token))
    if "text/html" in request.headers.get("accept", ""):
        return HTMLResponse(unsubscribe.page(True, token, await unsubscribe.language(session, token)))
    return Response(done.model_dump_json(), media_type="application/json")


@router.get("/channels", operation_id="listTeamChannels", response_model=list[ChatChannelOut])
async def list_channels(admin: AdminPrincipal, session: SessionDep) -> list[ChatChannelOut]:
    """The tenant's team channels (Slack, Teams) that are set, their webhook URLs masked."""
    return [ChatChannelOut.model_validate(c) for c in await chat.channels(session, admin.tenant_id)]


@router.put("/channels/{channel}", operation_id="replaceTeamChannel", response_model=ChatChannelOut)
async def set_channel(
    channel: ChatChannel, body: ChatChannelIn, request: Request, admin: AdminPrincipal, session: SessionDep
) -> ChatChannelOut:
    """Set the tenant's Slack incoming-webhook URL or Teams Workflows webhook URL. The URL must
    pass the outbound guard (https, public addresses only): 422 saying why otherwise. Answered
    masked: it is a credential."""
    settings = request.app.state.runtime.settings
    return ChatChannelOut.model_validate(await chat.save_channel(session, admin.tenant_id, channel, body.url, settings))


@router.delete("/channels/{channel}", operation_id="deleteTeamChannel", status_code=204)
async def delete_channel(channel: ChatChannel, admin: AdminPrincipal, session: SessionDep) -> Response:
    """Stop posting to the channel: the URL is forgotten and its pending messages are cancelled."""
    await chat.remove_channel(session, admin.tenant_id, channel)
    return Response(status_code=204)


# -- the language of messages and the tenant's own wording (features/wording.py) ---------------------
@router.get("/language", operation_id="getMyNotificationLanguage", response_model=LanguageOut)
async def my_language(who: EmployeePrincipal, session: SessionDep) -> LanguageOut:
    """The language the caller's messages are written in: their choice, else the directory's for
    them when messages are written in it, else the tenant's default."""
    language, chosen = await wording.language_of(session, who.tenant_id, who.sub)
    return LanguageOut(language=language, chosen=chosen)


@router.put("/language", operation_id="replaceMyNotificationLanguage", response_model=LanguageOut)
async def set_my_language(body: LanguageIn, who: EmployeePrincipal, session: SessionDep) -> LanguageOut:
    """Choose the language of the caller's messages (null: the tenant's default)."""
    await wording.set_member_language(session, who.tenant_id, who.sub, body.language, datetime.now(UTC))
    return await my_language(who, session)


@router.get("/defaults/language", operation_id="getNotificationDefaultLanguage", response_model=TenantLanguageBody)
async def get_default_language(admin: AdminPrincipal, session: SessionDep) -> TenantLanguageBody:
    """The language of the messages of people who chose none."""
    return TenantLanguageBody(language=await wording.tenant_language(session, admin.tenant_id))


@router.put("/defaults/language", operation_id="replaceNotificationDefaultLanguage", response_model=TenantLanguageBody)
async def set_default_language(
    body: TenantLanguageBody, admin: AdminPrincipal, session: SessionDep
) -> TenantLanguageBody:
    language = await wording.set_tenant_language(session, admin.tenant_id, body.language, datetime.now(UTC))
    return TenantLanguageBody(language=language)


@router.get("/templates", operation_id="listTemplateOverrides", response_model=Page[TemplateOverrideOut])
async def list_templates(admin: AdminPrincipal, session: SessionDep, page: PageDep) -> Page[TemplateOverrideOut]:
    """The tenant's overrides (a message and language without one uses the built-in template)."""
    start = parse_cursor(page.cursor, as_offset)[0] if page.cursor else 0
    rows = await wording.list_overrides(session, admin.tenant_id)
    end = start + page.limit
    return Page[TemplateOverrideOut](
        items=[TemplateOverrideOut.model_validate(r) for r in rows[start:end]],
        next_cursor=encode_cursor([end]) if end < len(rows) else None,
    )


@router.get("/templates/{name}/{language}", operation_id="getTemplateOverride", response_model=TemplateOverrideOut)
async def get_template(
    name: TemplateName, language: Language, admin: AdminPrincipal, session: SessionDep
) -> TemplateOverrideOut:
    return TemplateOverrideOut.model_validate(await wording.get_override(session, admin.tenant_id, name, language))


@router.put("/templates/{name}/{language}", operation_id="replaceTemplateOverride", response_model=TemplateOverrideOut)
async def put_template(
    name: TemplateName, language: Language, body: TemplateOverrideIn, admin: AdminPrincipal, session: SessionDep
) -> TemplateOverrideOut:
    """Word message ``name`` in ``language`` the tenant's way. Checked before it is saved: compiled
    in a sandbox and rendered against an example of the message; a syntax error, an unknown variable
    or a construct the sandbox refuses is a 422 whose message names the part and the line."""
    saved = await wording.put_override(session, admin.tenant_id, name, language, body.model_dump(), datetime.now(UTC))
    return TemplateOverrideOut.model_validate(saved)


@router.delete("/templates/{name}/{language}", operation_id="deleteTemplateOverride", status_code=204)
async def delete_template(
    name: TemplateName, language: Language, admin: AdminPrincipal, session: SessionDep
) -> Response:
    """Back to the built-in template (repeating it changes nothing)."""
    await wording.delete_override(session, admin.tenant_id, name, language)
    return Response(status_code=204)
