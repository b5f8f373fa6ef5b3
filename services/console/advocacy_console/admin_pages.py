"""The admin pages: the content editor (scheduling, targeting, captions per network, live policy
check), the approval queue, analytics (charts, ROI, adoption, top content and advocates, CSV) and
the points rules with ``simulate`` as a before/after table.

Thin routes over the public APIs with the admin's own token (ADR 0014): the API decides who may do
what, so a foreign or unknown id is the API's 404, shown as this console's 404 page.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from advocacy_console import exports, forms
from advocacy_console.forms import ID_PATTERN, items_of
from advocacy_console.pages import FormDep, SessionDep, page, see_other, templates_of, upstream_of
from advocacy_console.sessions import Session
from advocacy_console.upstream import Answer

router = APIRouter()

CONTENT_STATUSES = ("published", "scheduled", "draft", "pending_review", "rejected", "expired", "archived")
GROUPS = ("day", "week", "network", "team", "content", "employee")
WINDOWS = ("all", "month", "week")
# A cursor is the API's opaque string; a longer one is not the API's and is dropped.
MAX_CURSOR = 512
# The day and network summaries are one page each (a 30-day range: 30 days, a handful of networks).
SUMMARY_PAGE = 1000


def admin_only(request: Request, session: Session) -> Response | None:
    if session.person.is_admin:
        return None
    return page(request, "error.html", session, status_code=403, message="This page is for admins.")


def not_found(request: Request, session: Session, what: str) -> Response:
    return page(request, "error.html", session, status_code=404, message=f"There is no such {what}.")


def cursor_of(value: str | None) -> str | None:
    return value if value and len(value) <= MAX_CURSOR else None


def body_of(answer: Answer) -> dict[str, Any]:
    return answer.body if answer.ok and isinstance(answer.body, dict) else {}


# -- the content editor -----------------------------------------------------------------------------
@router.get("/admin/content", response_class=HTMLResponse)
async def content_list(
    request: Request, session: SessionDep, status: str = "published", cursor: str | None = None
) -> Response:
    """The tenant's content by status, a page at a time, each with its editor."""
    if (refused := admin_only(request, session)) is not None:
        return refused
    status = status if status in CONTENT_STATUSES else "published"
    params: dict[str, Any] = {"status": status, "limit": 50}
    if cursor_of(cursor):
        params["cursor"] = cursor
    answer = await upstream_of(request).call("content", "GET", "/v1/content", session.token, params=params)
    return page(
        request,
        "content_list.html",
        session,
        items=items_of(answer.body) if answer.ok else [],
        status=status,
        statuses=CONTENT_STATUSES,
        next_cursor=body_of(answer).get("next_cursor"),
        errors=[] if answer.ok else [answer.error_message],
    )


def _editor(
    request: Request,
    session: Session,
    values: dict[str, str],
    *,
    content_id: str | None = None,
    item: dict[str, Any] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    return page(
        request,
        "content_edit.html",
        session,
        status_code=status_code,
        values=values,
        content_id=content_id,
        item=item or {},
        networks=forms.NETWORKS,
        programme_roles=forms.PROGRAMME_ROLES,
        error=error,
    )


@router.get("/admin/content/new", response_class=HTMLResponse)
async def new_content(request: Request, session: SessionDep) -> Response:
    if (refused := admin_only(request, session)) is not None:
        return refused
    return _editor(request, session, {})


@router.post("/admin/content")
async def create_content(request: Request, session: SessionDep, form: FormDep) -> Response:
    if (refused := admin_only(request, session)) is not None:
        return refused
    try:
        body = forms.content_body(form)
    except forms.FormError as e:
        return _editor(request, session, form, error=str(e), status_code=422)
    answer = await upstream_of(request).call("content", "POST", "/v1/content", session.token, json=body)
    if not answer.ok:
        return _editor(request, session, form, error=answer.error_message, status_code=answer.status)
    created = body_of(answer)
    session.flash(f"“{created.get('title', '')}” is {created.get('status', 'saved')}.")
    return see_other("/board")


async def _content(request: Request, session: Session, content_id: str) -> Answer | None:
    """The content item, or None when the id cannot be one or the API has no such item for this tenant."""
    if not ID_PATTERN.match(content_id):
        return None
    answer = await upstream_of(request).call("content", "GET", f"/v1/content/{content_id}", session.token)
    return None if answer.status == 404 else answer


@router.get("/admin/content/{content_id}", response_class=HTMLResponse)
async def edit_content(request: Request, content_id: str, session: SessionDep) -> Response:
    if (refused := admin_only(request, session)) is not None:
        return refused
    answer = await _content(request, session, content_id)
    if answer is None:
        return not_found(request, session, "content")
    if not answer.ok:
        return page(request, "error.html", session, status_code=answer.status, message=answer.error_message)
    item = body_of(answer)
    return _editor(request, session, forms.content_values(item), content_id=content_id, item=item)


@router.post("/admin/content/{content_id}")
async def update_content(request: Request, content_id: str, session: SessionDep, form: FormDep) -> Response:
    if (refused := admin_only(request, session)) is not None:
        return refused
    answer = await _content(request, session, content_id)
    if answer is None:
        return not_found(request, session, "content")
    item = body_of(answer)
    try:
        patch = forms.changed_fields(forms.content_body(form), forms.content_body(forms.content_values(item)))
    except forms.FormError as e:
        return _editor(request, session, form, content_id=content_id, item=item, error=str(e), status_code=422)
    if "audience" in patch:  # the dimensions the editor does not show (topics, roles) stay as they are
        patch["audience"] = {**forms.dict_of(item.get("audience")), **patch["audience"]}
    if not patch:
        session.flash("Nothing changed.")
        return see_other(f"/admin/content/{content_id}")
    saved = await upstream_of(request).call("content", "PATCH", f"/v1/content/{content_id}", session.token, json=patch)
    if saved.status == 404:
        return not_found(request, session, "content")
    if not saved.ok:
        return _editor(
            request,
            session,
            form,
            content_id=content_id,
            item=item,
            error=saved.error_message,
            status_code=saved.status,
        )
    session.flash(f"Saved: “{body_of(saved).get('title', '')}” is {body_of(saved).get('status', 'saved')}.")
    return see_other(f"/admin/content/{content_id}")


@router.post("/admin/content-check", response_class=HTMLResponse)
async def caption_check(request: Request, session: SessionDep, form: FormDep, network: str = "linkedin") -> Response:
    """The live policy check of one caption while it is typed (htmx posts the editor's form)."""
    network = network if network in forms.NETWORKS else "linkedin"
    text = form.get(f"caption_{network}", "")[: forms.MAX_CAPTION]
    result: dict[str, Any] | None = None
    error = None
    if text.strip():
        body = {"network": network, "text": text}
        if form.get("url", "").strip():
            body["link"] = form["url"].strip()[:2048]
        answer = await upstream_of(request).call("content", "POST", "/v1/policy/check", session.token, json=body)
        result, error = (body_of(answer), None) if answer.ok else (None, answer.error_message)
    return page(request, "_policy_feedback.html", session, result=result, error=error)


# -- the approval queue -----------------------------------------------------------------------------
@router.get("/admin/suggestions", response_class=HTMLResponse)
async def suggestions(request: Request, session: SessionDep, cursor: str | None = None) -> Response:
    """Suggestions pending review, oldest first as the API pages them, each with approve and reject."""
    if (refused := admin_only(request, session)) is not None:
        return refused
    params: dict[str, Any] = {"status": "pending_review", "limit": 50}
    if cursor_of(cursor):
        params["cursor"] = cursor
    answer = await upstream_of(request).call("content", "GET", "/v1/content/suggestions", session.token, params=params)
    return page(
        request,
        "suggestions.html",
        session,
        items=items_of(answer.body) if answer.ok else [],
        next_cursor=body_of(answer).get("next_cursor"),
        errors=[] if answer.ok else [answer.error_message],
    )


@router.post("/admin/suggestions/{content_id}/{decision}")
async def decide(request: Request, content_id: str, decision: str, session: SessionDep, form: FormDep) -> Response:
    if (refused := admin_only(request, session)) is not None:
        return refused
    if decision not in ("approve", "reject") or not ID_PATTERN.match(content_id):
        return not_found(request, session, "suggestion")
    body = None
    if decision == "reject":
        reason = form.get("reason", "").strip()[:2000]
        if not reason:
            session.flash("Not rejected: say why (the proposer reads the reason).")
            return see_other("/admin/suggestions")
        body = {"reason": reason}
    answer = await upstream_of(request).call(
        "content", "POST", f"/v1/content/{content_id}/{decision}", session.token, json=body
    )
    if answer.status == 404:
        return not_found(request, session, "suggestion")
    if not answer.ok:
        session.flash(f"Not done: {answer.error_message}")
    else:
        item = body_of(answer)
        session.flash(f"“{item.get('title', '')}” is {str(item.get('status', decision)).replace('_', ' ')}.")
    return see_other("/admin/suggestions")


# -- analytics --------------------------------------------------------------------------------------
async def _titles(request: Request, session: Session, ids: list[str]) -> dict[str, str]:
    """Titles of the top content: one read of content's list by ids (at most ``TOP_N``)."""
    wanted = list(dict.fromkeys(i for i in ids if ID_PATTERN.match(i)))
    if not wanted:
        return {}
    params = {"ids": ",".join(wanted), "limit": len(wanted)}
    answer = await upstream_of(request).call("content", "GET", "/v1/content", session.token, params=params)
    return {str(i.get("id")): str(i.get("title") or i.get("id")) for i in items_of(answer.body)} if answer.ok else {}


@router.get("/admin/analytics", response_class=HTMLResponse)
async def analytics(request: Request, session: SessionDep) -> Response:
    """Clicks and shares by day (chart + table), totals with reach and conversions, the split by
    network, ROI, adoption of the eligible workforce, top content and top advocates; CSV for each."""
    if (refused := admin_only(request, session)) is not None:
        return refused
    up = upstream_of(request)
    token = session.token

    def summary(group_by: str, limit: int = SUMMARY_PAGE, order: str = "key") -> Any:
        params = {"group_by": group_by, "limit": limit, "order": order}
        return up.call("metrics", "GET", "/v1/metrics/summary", token, params=params)

    async def top_content() -> tuple[Answer, list[dict[str, Any]]]:
        """The top content with its titles: the titles' read starts as soon as the ranking is in,
        while the other metrics calls may still be running."""
        answer = await summary("content", forms.TOP_N, "clicks")
        items = items_of(answer.body)[: forms.TOP_N]
        titles = await _titles(request, session, [str(i.get("key")) for i in items])
        for item in items:
            item["title"] = titles.get(str(item.get("key")), str(item.get("key")))
        return answer, items

    # the top lists: metrics ranks every group by counted clicks and sends the first TOP_N
    by_day, by_network, (by_content, top), by_employee, roi, adoption = await asyncio.gather(
        summary("day"),
        summary("network"),
        top_content(),
        summary("employee", forms.TOP_N, "clicks"),
        up.call("metrics", "GET", "/v1/metrics/roi", token),
        up.call("metrics", "GET", "/v1/metrics/adoption", token),
    )
    days = body_of(by_day) or {"items": [], "totals": None}
    chart = {
        "labels": [str(i.get("key")) for i in days.get("items", [])],
        "clicks": [int(i.get("clicks") or 0) for i in days.get("items", [])],
        "shares": [int(i.get("shares") or 0) for i in days.get("items", [])],
    }
    networks = items_of(by_network.body)
    name = templates_of(request).env.filters["network"]  # LinkedIn, X, ... as on the pages
    network_chart = {
        "labels": [name(i.get("key")) if i.get("key") else "unknown" for i in networks],
        "clicks": [int(i.get("clicks") or 0) for i in networks],
        "shares": [int(i.get("shares") or 0) for i in networks],
    }
    return page(
        request,
        "analytics.html",
        session,
        days=days,
        networks=networks,
        network_chart=network_chart,
        top_content=top,
        top_advocates=items_of(by_employee.body)[: forms.TOP_N],
        roi=body_of(roi) or None,
        roi_rows=exports.roi_rows(body_of(roi)) if roi.ok else [],
        adoption=body_of(adoption) or None,
        chart=chart,
        groups=GROUPS,
        errors=[a.error_message for a in (by_day, by_network, by_content, by_employee, roi, adoption) if not a.ok],
    )


@router.get("/admin/analytics/export.csv")
async def analytics_export(request: Request, session: SessionDep, group_by: str = "day") -> Response:
    """The metrics CSV export, relayed as it streams (the browser cannot send the token itself)."""
    if (refused := admin_only(request, session)) is not None:
        return refused
    group_by = group_by if group_by in GROUPS else "day"
    upstream = await upstream_of(request).open_stream(
        "metrics", "/v1/metrics/export.csv", session.token, params={"group_by": group_by}
    )
    if upstream.status_code != 200:
        await upstream.aclose()
        return page(request, "error.html", session, status_code=upstream.status_code, message="No export.")
    headers = {k: v for k, v in upstream.headers.items() if k.lower() in ("content-type", "content-disposition")}

    async def relay() -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        finally:
            await upstream.aclose()

    return StreamingResponse(relay(), headers=headers)


@router.get("/admin/analytics/{report}.csv")
async def report_export(request: Request, report: str, session: SessionDep) -> Response:
    """The ROI and adoption tables as CSV (metrics exports neither; the console writes what it shows)."""
    if (refused := admin_only(request, session)) is not None:
        return refused
    if report not in ("roi", "adoption"):
        return not_found(request, session, "export")
    answer = await upstream_of(request).call("metrics", "GET", f"/v1/metrics/{report}", session.token)
    if not answer.ok:
        return page(request, "error.html", session, status_code=answer.status, message=answer.error_message)
    text = exports.roi_csv(body_of(answer)) if report == "roi" else exports.adoption_csv(body_of(answer))
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{report}.csv"'},
    )


# -- rules ------------------------------------------------------------------------------------------
async def _rules_page(
    request: Request,
    session: Session,
    *,
    values: dict[str, str] | None = None,
    simulation: dict[str, Any] | None = None,
    window: str = "all",
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    answer = await upstream_of(request).call("gamification", "GET", "/v1/rules", session.token)
    current = body_of(answer)
    return page(
        request,
        "rules.html",
        session,
        status_code=status_code,
        current=current,
        values=values or forms.rules_values(current),
        simulation=simulation,
        rows=forms.simulation_rows(items_of(simulation)) if simulation else [],
        window=window,
        windows=WINDOWS,
        error=error or (None if answer.ok else answer.error_message),
    )


@router.get("/admin/rules", response_class=HTMLResponse)
async def rules(request: Request, session: SessionDep) -> Response:
    if (refused := admin_only(request, session)) is not None:
        return refused
    return await _rules_page(request, session)


@router.post("/admin/rules", response_class=HTMLResponse)
async def rules_action(request: Request, session: SessionDep, form: FormDep) -> Response:
    """``simulate`` (the leaderboard under the proposed rules, before/after) or ``save`` (PUT)."""
    if (refused := admin_only(request, session)) is not None:
        return refused
    window = form.get("window", "all")
    window = window if window in WINDOWS else "all"
    up = upstream_of(request)
    current = body_of(await up.call("gamification", "GET", "/v1/rules", session.token))
    try:
        proposed = forms.rules_body(form, current)
    except forms.FormError as e:
        return await _rules_page(request, session, values=form, window=window, error=str(e), status_code=422)
    if form.get("action") == "save":
        answer = await up.call("gamification", "PUT", "/v1/rules", session.token, json=proposed)
        if not answer.ok:
            return await _rules_page(
                request, session, values=form, window=window, error=answer.error_message, status_code=answer.status
            )
        session.flash(f"Rules saved: version {body_of(answer).get('version', '')}.")
        return see_other("/admin/rules")
    params: dict[str, Any] = {"window": window, "limit": 50}
    if cursor_of(form.get("cursor")):
        params["cursor"] = form["cursor"]
    answer = await up.call("gamification", "POST", "/v1/rules/simulate", session.token, params=params, json=proposed)
    if not answer.ok:
        return await _rules_page(
            request, session, values=form, window=window, error=answer.error_message, status_code=answer.status
        )
    return await _rules_page(request, session, values=form, simulation=body_of(answer), window=window)
