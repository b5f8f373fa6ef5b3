"""The employee pages beyond the board: challenges (list, and each one's progress and winners) and
coaching requests (list, ask, read and answer a thread, close it).

Thin routes over gamification's and content's public APIs with the person's own token: a thread the
person may not read, or another tenant's id, is the API's 404, shown as this console's 404 page.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from advocacy_console import forms
from advocacy_console.forms import ID_PATTERN, items_of
from advocacy_console.pages import FormDep, SessionDep, page, see_other, upstream_of
from advocacy_console.sessions import Session
from advocacy_console.upstream import Answer

router = APIRouter()

MAX_CURSOR = 512
# What a coaching request may hold (content's schema): a draft, a question, a reply.
MAX_DRAFT, MAX_QUESTION, MAX_REPLY = 20_000, 5_000, 10_000


def _not_found(request: Request, session: Session, what: str) -> Response:
    return page(request, "error.html", session, status_code=404, message=f"There is no such {what}.")


def _body(answer: Answer) -> dict[str, Any]:
    return answer.body if answer.ok and isinstance(answer.body, dict) else {}


def _paged(cursor: str | None, limit: int = 20) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": limit}
    if cursor and len(cursor) <= MAX_CURSOR:
        params["cursor"] = cursor
    return params


# -- challenges -------------------------------------------------------------------------------------
@router.get("/challenges", response_class=HTMLResponse)
async def challenges(request: Request, session: SessionDep, cursor: str | None = None) -> Response:
    answer = await upstream_of(request).call(
        "gamification", "GET", "/v1/challenges", session.token, params=_paged(cursor)
    )
    return page(
        request,
        "challenges.html",
        session,
        items=items_of(answer.body) if answer.ok else [],
        next_cursor=_body(answer).get("next_cursor"),
        errors=[] if answer.ok else [answer.error_message],
    )


@router.get("/challenges/{challenge_id}", response_class=HTMLResponse)
async def challenge(request: Request, challenge_id: str, session: SessionDep) -> Response:
    """Its goal and dates, the person's own progress, the top of its board (teams for a team goal)
    and, once it is over, its winners."""
    if not ID_PATTERN.match(challenge_id):
        return _not_found(request, session, "challenge")
    answer = await upstream_of(request).call("gamification", "GET", f"/v1/challenges/{challenge_id}", session.token)
    if answer.status == 404:
        return _not_found(request, session, "challenge")
    if not answer.ok:
        return page(request, "error.html", session, status_code=answer.status, message=answer.error_message)
    return page(request, "challenge.html", session, c=_body(answer))


# -- coaching ---------------------------------------------------------------------------------------
@router.get("/coaching", response_class=HTMLResponse)
async def coaching(request: Request, session: SessionDep, status: str = "open", cursor: str | None = None) -> Response:
    """The person's requests (a coach's or an admin's: the tenant's), and the form to ask."""
    status = status if status in ("open", "closed") else "open"
    params = {**_paged(cursor), "status": status}
    answer = await upstream_of(request).call("content", "GET", "/v1/coaching/requests", session.token, params=params)
    return page(
        request,
        "coaching.html",
        session,
        items=items_of(answer.body) if answer.ok else [],
        status=status,
        next_cursor=_body(answer).get("next_cursor"),
        networks=forms.NETWORKS,
        values={},
        errors=[] if answer.ok else [answer.error_message],
    )


@router.post("/coaching")
async def ask(request: Request, session: SessionDep, form: FormDep) -> Response:
    body = {
        "network": form.get("network", "")[:32],
        "draft": form.get("draft", "")[:MAX_DRAFT],
        "question": form.get("question", "")[:MAX_QUESTION],
    }
    answer = await upstream_of(request).call("content", "POST", "/v1/coaching/requests", session.token, json=body)
    if not answer.ok:
        return page(
            request,
            "coaching.html",
            session,
            status_code=answer.status,
            items=[],
            status="open",
            next_cursor=None,
            networks=forms.NETWORKS,
            values=form,
            errors=[f"Not sent: {answer.error_message}"],
        )
    created = _body(answer)
    session.flash("Sent: a coach will answer here.")
    request_id = str(created.get("id", ""))
    return see_other(f"/coaching/{request_id}" if ID_PATTERN.match(request_id) else "/coaching")


@router.get("/coaching/{request_id}", response_class=HTMLResponse)
async def thread(request: Request, request_id: str, session: SessionDep) -> Response:
    if not ID_PATTERN.match(request_id):
        return _not_found(request, session, "coaching request")
    answer = await upstream_of(request).call("content", "GET", f"/v1/coaching/requests/{request_id}", session.token)
    if answer.status == 404:
        return _not_found(request, session, "coaching request")
    if not answer.ok:
        return page(request, "error.html", session, status_code=answer.status, message=answer.error_message)
    return page(request, "coaching_thread.html", session, r=_body(answer))


@router.post("/coaching/{request_id}/{action}")
async def answer_thread(request: Request, request_id: str, action: str, session: SessionDep, form: FormDep) -> Response:
    """``replies`` (a reply from the requester or a coach) or ``close``."""
    if action not in ("replies", "close") or not ID_PATTERN.match(request_id):
        return _not_found(request, session, "coaching request")
    body = {"text": form.get("text", "")[:MAX_REPLY]} if action == "replies" else None
    answer = await upstream_of(request).call(
        "content", "POST", f"/v1/coaching/requests/{request_id}/{action}", session.token, json=body
    )
    if answer.status == 404:
        return _not_found(request, session, "coaching request")
    if not answer.ok:
        session.flash(f"Not sent: {answer.error_message}")
    else:
        session.flash("Reply sent." if action == "replies" else "Closed.")
    return see_other(f"/coaching/{request_id}")
