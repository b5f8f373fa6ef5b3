"""The board and content items; suggestions and their review."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from advocacy_common.auth import AdminPrincipal, EmployeePrincipal
from advocacy_common.db import SessionDep
from advocacy_common.networks import Network
from advocacy_common.openapi import answers
from advocacy_common.pagination import MAX_LIMIT, Page, PageDep
from advocacy_content.api.deps import LinkSample
from advocacy_content.domain import Status
from advocacy_content.features import board, content, suggestions
from advocacy_content.features.policy import current_policy
from advocacy_content.schemas import BoardPage, ContentCreate, ContentPatch, ContentPublic, RejectIn, SuggestionCreate

router = APIRouter(prefix="/v1", tags=["content"])

StatusFilter = Annotated[str | None, Query(pattern="^(" + "|".join(Status.ALL) + ")$")]
# ids=a,b,c: at most a page of content ids (MAX_LIMIT; the page's own limit is checked by the board)
_ID = "[A-Za-z0-9_-]{1,64}"
IdsFilter = Annotated[
    str | None,
    Query(
        pattern=f"^{_ID}(,{_ID})*$",
        max_length=MAX_LIMIT * 65,
        description="Comma-separated content ids: only these items, as this caller's board holds them "
        "(another tenant's or an unknown id is left out); at most `limit` ids.",
    ),
]


@router.post("/content", responses=answers(429), status_code=status.HTTP_201_CREATED, response_model=ContentPublic)
async def create_content(
    body: ContentCreate, who: AdminPrincipal, session: SessionDep, link: LinkSample
) -> ContentPublic:
    item, policy = await content.create_content(session, who, body, link_sample=link)
    (out,) = await content.checked_public([item], policy, link)
    return out


@router.get("/content", response_model=BoardPage, response_model_exclude_none=False)
async def list_content(
    who: EmployeePrincipal,
    session: SessionDep,
    page: PageDep,
    link: LinkSample,
    status: StatusFilter = None,
    tag: Annotated[str | None, Query(max_length=50)] = None,
    network: Network | None = None,
    topic: Annotated[str | None, Query(max_length=50)] = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    ids: IdsFilter = None,
) -> BoardPage:
    """The advocacy board (staff only: partners get their own feed). ``notice`` explains an empty
    board (roll-out wave not started, opted out). ``ids`` reads given items in one call (a
    console's titles of its top content)."""
    filters = board.BoardFilters(
        status=status, tag=tag, network=network, topic=topic, q=q, ids=ids.split(",") if ids else None
    )
    return await board.list_board(session, who, page, filters, link_sample=link)


# before /content/{content_id}, so "suggestions" is not taken for an id
@router.post(
    "/content/suggestions",
    responses=answers(429),
    operation_id="proposeSuggestion",
    status_code=status.HTTP_201_CREATED,
    response_model=ContentPublic,
)
async def propose(
    body: SuggestionCreate, who: EmployeePrincipal, session: SessionDep, link: LinkSample
) -> ContentPublic:
    item, policy = await suggestions.propose(session, who, body, link_sample=link)
    (out,) = await content.checked_public([item], policy, link)
    return out


@router.get("/content/suggestions", response_model=Page[ContentPublic])
async def list_suggestions(
    who: EmployeePrincipal,
    session: SessionDep,
    page: PageDep,
    link: LinkSample,
    status: Annotated[str | None, Query(pattern="^(" + "|".join(suggestions.SUGGESTION_FILTERS) + ")$")] = None,
) -> Page[ContentPublic]:
    """Admins: the tenant's suggestions pending review (``status`` for others). Employees: their own,
    with status and rejection reason."""
    items, cursor, policy = await suggestions.list_suggestions(session, who, page, status=status)
    return Page(items=await content.checked_public(items, policy, link), next_cursor=cursor)


@router.get("/content/{content_id}", response_model=ContentPublic)
async def get_content(content_id: str, who: EmployeePrincipal, session: SessionDep, link: LinkSample) -> ContentPublic:
    item = await content.get_content(session, who, content_id)
    if who.is_admin or item.proposer_id == who.sub:
        policy, _ = await current_policy(session, who.tenant_id)
        (out,) = await content.checked_public([item], policy, link)
        return out
    return content.to_public(item)


@router.patch(
    "/content/{content_id}", operation_id="updateContent", responses=answers(409, 429), response_model=ContentPublic
)
async def patch_content(
    content_id: str, body: ContentPatch, who: AdminPrincipal, session: SessionDep, link: LinkSample
) -> ContentPublic:
    item, policy = await content.patch_content(session, who, content_id, body, link_sample=link)
    (out,) = await content.checked_public([item], policy, link)
    return out


@router.post("/content/{content_id}/archive", response_model=ContentPublic)
async def archive_content(content_id: str, who: AdminPrincipal, session: SessionDep) -> ContentPublic:
    return content.to_public(await content.archive_content(session, who, content_id))


@router.post(
    "/content/{content_id}/approve",
    operation_id="approveSuggestion",
    responses=answers(409),
    response_model=ContentPublic,
)
async def approve(content_id: str, who: AdminPrincipal, session: SessionDep) -> ContentPublic:
    """Approve a suggestion. With a second approver required, the first approval leaves it pending."""
    return content.to_public(await suggestions.approve(session, who, content_id))


@router.post(
    "/content/{content_id}/reject",
    operation_id="rejectSuggestion",
    responses=answers(409),
    response_model=ContentPublic,
)
async def reject(content_id: str, body: RejectIn, who: AdminPrincipal, session: SessionDep) -> ContentPublic:
    return content.to_public(await suggestions.reject(session, who, content_id, body))
