"""SCIM 2.0 provisioning (issue 17; docs/adr/0012-directory-in-content.md): the tenant's identity
provider creates, changes and deletes users and groups at ``/scim/v2``, and they become the
directory. Every change is an event through the outbox: ``member.provisioned`` (the person's whole
record) on every user create, replace and patch, and whenever a group change moves their team;
``team.updated`` (a team's size in active people) whenever a team's membership or existence changes;
a user DELETE runs the erasure (``member.erased``).

The tenant is the one whose bearer secret the caller presents (never the URL or the body). A user's
employee id (the id tokens name them by) is read once, at creation, as the tenant chose
(``directory.employee_id_from``: externalId, else userName), and never changes. Resources are kept
whole as the SCIM documents served (the password is dropped unread); the columns beside them are
what filters, uniqueness, teams and events read.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from scim2_models import (
    Context,
    EnterpriseUser,
    Error,
    Group,
    GroupMember,
    ListResponse,
    Meta,
    MutabilityException,
    NotFoundException,
    PatchOp,
    PayloadTooLargeException,
    ResourceType,
    ResponseParameters,
    Schema,
    SCIMException,
    UnauthorizedException,
    UniquenessException,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common import audit
from advocacy_common.auth.principal import Principal
from advocacy_common.tenant import DirectorySettings
from advocacy_content.adapters import directory
from advocacy_content.adapters.events import emit, now
from advocacy_content.adapters.scim import (
    MAX_MEMBERS_PER_GROUP,
    MAX_MEMBERS_PER_REQUEST,
    MAX_OPERATIONS,
    MAX_SECRET_CHARS,
    POLICY,
    PROVIDER,
    SERVICE_PROVIDER_CONFIG,
    Filterable,
    UserResource,
    bad_value,
    bounded,
    filter_clause,
    fold,
    manager_refs,
    new_secret,
    page_bounds,
    secret_hash,
    validated,
)
from advocacy_content.adapters.tombstones import TOMBSTONES
from advocacy_content.db import ScimGroupMembers, ScimGroups, ScimSecrets, ScimUsers, TenantSettingsTable
from advocacy_content.features import members, tenant_settings

U, G, GM = ScimUsers, ScimGroups, ScimGroupMembers
log = logging.getLogger("advocacy.content.scim")

# Who the audit log and erasure name as the actor of a SCIM change.
SCIM_ACTOR = "scim"

USER_FILTERS: dict[tuple[str, str | None], Filterable] = {
    ("id", None): Filterable(U.c.id),
    ("username", None): Filterable(U.c.user_name_key, "fold"),
    ("externalid", None): Filterable(U.c.external_id),
    ("emails", None): Filterable(U.c.emails, "array"),
    ("emails", "value"): Filterable(U.c.emails, "array"),
    ("active", None): Filterable(U.c.active, "boolean"),
}
GROUP_FILTERS: dict[tuple[str, str | None], Filterable] = {
    ("id", None): Filterable(G.c.id),
    ("displayname", None): Filterable(G.c.display_name_key, "fold"),
    ("externalid", None): Filterable(G.c.external_id),
}


@dataclass(frozen=True)
class Caller:
    """A SCIM client: the tenant its secret names, and the base URL resources are located under."""

    tenant_id: str
    base_url: str


# -- the secret ---------------------------------------------------------------------------------------
async def tenant_for_secret(session: AsyncSession, secret: str | None) -> str:
    """The tenant whose current SCIM secret this is; 401 for anything else (no hint which part failed)."""
    if not secret or len(secret) > MAX_SECRET_CHARS:
        raise UnauthorizedException(detail="a bearer SCIM secret is required")
    digest = secret_hash(secret)
    row = (
        await session.execute(
            sa.select(ScimSecrets.c.tenant_id, ScimSecrets.c.secret_hash).where(ScimSecrets.c.secret_hash == digest)
        )
    ).first()
    # the lookup is by hash (an attacker cannot steer it); compare again in constant time regardless
    if row is None or not hmac.compare_digest(row.secret_hash, digest):
        raise UnauthorizedException(detail="the SCIM secret is not valid")
    return str(row.tenant_id)


async def rotate_secret(session: AsyncSession, who: Principal) -> dict[str, Any]:
    """A new SCIM secret for the admin's tenant; the old one stops working at once. Shown only here."""
    secret = new_secret()
    at = now()
    stmt = pg_insert(ScimSecrets).values(
        tenant_id=who.tenant_id, secret_hash=secret_hash(secret), rotated_at=at, rotated_by=who.sub
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant_id"],
            set_={"secret_hash": stmt.excluded.secret_hash, "rotated_at": at, "rotated_by": who.sub},
        )
    )
    await audit.record(session, who.tenant_id, who.sub, "scim_secret.rotated", at=at)
    return {"secret": secret, "rotated_at": at}


# -- discovery ----------------------------------------------------------------------------------------
def service_provider_config(caller: Caller) -> dict[str, Any]:
    config = SERVICE_PROVIDER_CONFIG.model_copy(deep=True)
    config.meta = Meta(resource_type="ServiceProviderConfig", location=f"{caller.base_url}/ServiceProviderConfig")
    return config.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)


def _schemas(caller: Caller) -> list[Schema]:
    out = []
    for schema in PROVIDER.schemas:
        copy = schema.model_copy(deep=True)
        copy.meta = Meta(resource_type="Schema", location=f"{caller.base_url}/Schemas/{schema.id}")
        out.append(copy)
    return out


def _resource_types(caller: Caller) -> list[ResourceType]:
    out = []
    for rt in PROVIDER.resource_types:
        copy = rt.model_copy(deep=True)
        copy.meta = Meta(resource_type="ResourceType", location=f"{caller.base_url}/ResourceTypes/{rt.id}")
        out.append(copy)
    return out


def schemas(caller: Caller, schema_id: str | None = None) -> dict[str, Any]:
    found = _schemas(caller)
    if schema_id is None:
        return _listing(Schema, found, len(found), 1)
    for s in found:
        if s.id == schema_id:
            return s.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    raise NotFoundException(detail=f"no schema {schema_id!r}")


def resource_types(caller: Caller, name: str | None = None) -> dict[str, Any]:
    found = _resource_types(caller)
    if name is None:
        return _listing(ResourceType, found, len(found), 1)
    for rt in found:
        if rt.id == name or rt.name == name:
            return rt.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    raise NotFoundException(detail=f"no resource type {name!r}")


def _listing(
    model: Any, resources: list[Any], total: int, start: int, params: ResponseParameters[Any] | None = None
) -> dict[str, Any]:
    page = ListResponse[model](
        total_results=total, start_index=start, items_per_page=len(resources), resources=resources
    )
    return page.model_dump(scim_ctx=Context.SEARCH_RESPONSE, response_parameters=params)


def response_parameters(model: Any, attributes: str | None, excluded: str | None) -> ResponseParameters[Any] | None:
    if not attributes and not excluded:
        return None
    return validated(
        ResponseParameters[model],
        {"attributes": attributes, "excludedAttributes": excluded},
        Context.SEARCH_REQUEST,
    )


# -- users --------------------------------------------------------------------------------------------
def _user_model(row: Any, caller: Caller) -> Any:
    user = UserResource.model_validate(row.resource, scim_policy=POLICY)
    user.meta = Meta(
        resource_type="User",
        created=row.created_at,
        last_modified=row.updated_at,
        location=f"{caller.base_url}/Users/{row.id}",
    )
    return user


def _location(user: Any) -> str | None:
    addresses = user.addresses or []
    chosen = next((a for a in addresses if a.primary), addresses[0] if addresses else None)
    return chosen.locality if chosen is not None else None


def _user_columns(user: Any) -> dict[str, Any]:
    ext = user[EnterpriseUser] if user[EnterpriseUser] is not None else EnterpriseUser()
    display = user.display_name
    if not display and user.name is not None:
        display = user.name.formatted or " ".join(p for p in (user.name.given_name, user.name.family_name) if p) or None
    user.password = None  # never kept
    bounded("userName", user.user_name, required=True)
    bounded("externalId", user.external_id)
    manager = ext.manager.value if ext.manager is not None else None
    location = _location(user)
    for name, value in (
        ("displayName", display),
        ("department", ext.department),
        ("addresses.locality", location),
        ("employeeNumber", ext.employee_number),
        ("manager.value", manager),
    ):
        bounded(name, value)
    return {
        "user_name": user.user_name,
        "user_name_key": fold(user.user_name),
        "external_id": user.external_id,
        "emails": sorted({fold(str(e.value)) for e in user.emails or [] if e.value}),
        "active": user.active is not False,
        "display_name": display,
        "department": ext.department,
        "location": location,
        "manager": manager,
        "employee_number": ext.employee_number,
        "resource": _stored(user),
    }


def _stored(resource: Any) -> dict[str, Any]:
    doc = resource.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    doc.pop("meta", None)
    return dict(doc)


async def _unique_user(session: AsyncSession, tenant_id: str, key: str, employee_id: str, user_id: str) -> None:
    clash = (
        await session.execute(
            sa.select(U.c.user_name_key, U.c.employee_id).where(
                U.c.tenant_id == tenant_id,
                sa.or_(U.c.user_name_key == key, U.c.employee_id == employee_id),
                U.c.id != user_id,
            )
        )
    ).first()
    if clash is None:
        return
    if clash.user_name_key == key:
        raise UniquenessException(detail="another user has this userName")
    raise UniquenessException(detail="another user has this employee id (externalId or userName, per the tenant)")


async def _user_row(session: AsyncSession, tenant_id: str, user_id: str, *, for_update: bool = False) -> Any:
    stmt = sa.select(U).where(U.c.tenant_id == tenant_id, U.c.id == user_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).first()
    if row is None:
        raise NotFoundException(detail=f"no user {user_id!r}")
    return row


async def _directory(session: AsyncSession, tenant_id: str) -> DirectorySettings:
    return (await tenant_settings.current(session, tenant_id)).directory


async def _announce_user(
    session: AsyncSession, caller: Caller, user_id: str, teams: set[str], settings: DirectorySettings, at: datetime
) -> None:
    event = await directory.provisioned_event(session, caller.tenant_id, user_id)
    if event is not None:
        await emit(session, caller.tenant_id, event, at)
    await directory.announce_teams(session, caller.tenant_id, teams, settings, at)


async def create_user(session: AsyncSession, caller: Caller, payload: Any) -> dict[str, Any]:
    user = validated(UserResource, manager_refs(payload), Context.RESOURCE_CREATION_REQUEST)
    t, at = caller.tenant_id, now()
    settings = await _directory(session, t)
    user_id = uuid.uuid4().hex
    user.id = user_id
    cols = _user_columns(user)
    employee_id = str(
        user.external_id if settings.employee_id_from == "externalId" and user.external_id else user.user_name
    )
    await _unique_user(session, t, cols["user_name_key"], employee_id, user_id)
    team = cols["department"] if settings.team_from == "department" else None
    # an erased employee id provisioned again stays erased (the tombstone stays): noted on the row
    # so no team counts them (docs/identity.md, "Leavers and rehires")
    erased = await TOMBSTONES.is_erased(session, t, employee_id)
    try:
        await session.execute(
            sa.insert(U).values(
                tenant_id=t,
                id=user_id,
                employee_id=employee_id,
                erased_at=at if erased else None,
                team=team,
                version=1,
                created_at=at,
                updated_at=at,
                deactivated_at=None if cols["active"] else at,
                **cols,
            )
        )
    except sa.exc.IntegrityError as e:  # a concurrent create took the name first
        raise UniquenessException(detail="another user has this userName or employee id") from e
    await _announce_user(session, caller, user_id, {team} if team else set(), settings, at)
    row = await _user_row(session, t, user_id)
    return dict(_user_model(row, caller).model_dump(scim_ctx=Context.RESOURCE_CREATION_RESPONSE))


async def get_user(
    session: AsyncSession, caller: Caller, user_id: str, params: ResponseParameters[Any] | None
) -> dict[str, Any]:
    row = await _user_row(session, caller.tenant_id, user_id)
    return dict(
        _user_model(row, caller).model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE, response_parameters=params)
    )


async def list_users(
    session: AsyncSession,
    caller: Caller,
    filter_: str | None,
    start_index: int | None,
    count: int | None,
    params: ResponseParameters[Any] | None,
) -> dict[str, Any]:
    filtered = filter_clause(filter_, UserResource, USER_FILTERS) if filter_ else None
    rows, total, start = await _page(session, U, caller, filtered, start_index, count)
    return _listing(UserResource, [_user_model(r, caller) for r in rows], total, start, params)


async def _page(
    session: AsyncSession,
    table: sa.Table,
    caller: Caller,
    filtered: sa.ColumnElement[bool] | None,
    start_index: int | None,
    count: int | None,
) -> tuple[Sequence[Any], int, int]:
    """One page of a tenant's users or groups in creation order (SCIM paging is by index), with the
    total the filter matches and the page's 1-based start.

    The page and ``totalResults`` are one statement (a window count), so they agree even while the
    identity provider provisions someone meanwhile (two statements once listed a new person beside
    a total without them). ``one_snapshot`` cannot serve here: the caller's secret was read first,
    in the request's transaction. A page past the end has no rows to carry the total: it is counted."""
    where = table.c.tenant_id == caller.tenant_id
    if filtered is not None:
        where = sa.and_(where, filtered)
    start, size = page_bounds(start_index, count)
    total_col = sa.func.count().over().label("_total")
    found = (
        await session.execute(
            sa.select(table, total_col)
            .where(where)
            .order_by(table.c.created_at, table.c.id)
            .offset(start - 1)
            .limit(size)
        )
    ).all()
    if found:
        return found, int(found[0]._total), start
    total = (await session.execute(sa.select(sa.func.count()).select_from(table).where(where))).scalar_one()
    return found, int(total), start


async def _save_user(
    session: AsyncSession, caller: Caller, row: Any, user: Any, settings: DirectorySettings
) -> dict[str, Any]:
    t, at = caller.tenant_id, now()
    cols = _user_columns(user)
    await _unique_user(session, t, cols["user_name_key"], row.employee_id, row.id)
    team = cols["department"] if settings.team_from == "department" else row.team
    try:
        await session.execute(
            sa.update(U)
            .where(U.c.tenant_id == t, U.c.id == row.id)
            .values(
                team=team,
                version=row.version + 1,
                updated_at=at,
                deactivated_at=None if cols["active"] else (row.deactivated_at if not row.active else at),
                **cols,
            )
        )
    except sa.exc.IntegrityError as e:
        raise UniquenessException(detail="another user has this userName") from e
    teams = {x for x in (row.team, team) if x} if (row.team, row.active) != (team, cols["active"]) else set()
    await _announce_user(session, caller, row.id, teams, settings, at)
    return dict(
        _user_model(await _user_row(session, t, row.id), caller).model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    )


async def replace_user(session: AsyncSession, caller: Caller, user_id: str, payload: Any) -> dict[str, Any]:
    row = await _user_row(session, caller.tenant_id, user_id, for_update=True)
    new = validated(UserResource, manager_refs(payload), Context.RESOURCE_REPLACEMENT_REQUEST)
    original = _user_model(row, caller)
    _replace(new, original)
    return await _save_user(session, caller, row, new, await _directory(session, caller.tenant_id))


async def patch_user(session: AsyncSession, caller: Caller, user_id: str, payload: Any) -> dict[str, Any]:
    _bound_patch(payload)
    ops = validated(PatchOp[UserResource], manager_refs(payload), Context.RESOURCE_PATCH_REQUEST)
    row = await _user_row(session, caller.tenant_id, user_id, for_update=True)
    user = _user_model(row, caller)
    if not _apply(ops, user):
        return dict(user.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))
    return await _save_user(session, caller, row, user, await _directory(session, caller.tenant_id))


async def delete_user(session: AsyncSession, caller: Caller, user_id: str) -> None:
    """Deprovisioning is erasure: content forgets the person and every other service is told to."""
    row = await _user_row(session, caller.tenant_id, user_id, for_update=True)
    who = Principal(sub=SCIM_ACTOR, tenant_id=caller.tenant_id, roles=frozenset())
    await members.erase_member(session, who, row.employee_id)


# -- groups -------------------------------------------------------------------------------------------
async def _group_row(session: AsyncSession, tenant_id: str, group_id: str, *, for_update: bool = False) -> Any:
    stmt = sa.select(G).where(G.c.tenant_id == tenant_id, G.c.id == group_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).first()
    if row is None:
        raise NotFoundException(detail=f"no group {group_id!r}")
    return row


async def _member_ids(session: AsyncSession, tenant_id: str, group_id: str) -> list[str]:
    return list(
        (
            await session.scalars(
                sa.select(GM.c.user_id)
                .where(GM.c.tenant_id == tenant_id, GM.c.group_id == group_id)
                .order_by(GM.c.user_id)
            )
        ).all()
    )


async def _group_model(session: AsyncSession, caller: Caller, row: Any, *, with_members: bool = True) -> Any:
    group = Group.model_validate(row.resource, scim_policy=POLICY)
    group.meta = Meta(
        resource_type="Group",
        created=row.created_at,
        last_modified=row.updated_at,
        location=f"{caller.base_url}/Groups/{row.id}",
    )
    if with_members:
        found = (
            await session.execute(
                sa.select(U.c.id, sa.func.coalesce(GM.c.display, U.c.display_name).label("display"))
                .select_from(GM.join(U, sa.and_(U.c.tenant_id == GM.c.tenant_id, U.c.id == GM.c.user_id)))
                .where(GM.c.tenant_id == caller.tenant_id, GM.c.group_id == row.id)
                .order_by(U.c.id)
            )
        ).all()
        group.members = [
            GroupMember(value=r.id, ref=f"{caller.base_url}/Users/{r.id}", display=r.display, type="User")
            for r in found
        ] or None
    return group


def _wanted_members(group: Any, *, named_by_request: bool = True) -> dict[str, str | None]:
    """The members a group is to have. When the request named them all (POST, PUT) they are bounded
    here by MAX_MEMBERS_PER_REQUEST; a PATCH's result (the PATCH itself was bounded before it was
    parsed) by MAX_MEMBERS_PER_GROUP, before anything is written."""
    wanted = {m.value: m.display for m in group.members or [] if m.value}
    if named_by_request and len(wanted) > MAX_MEMBERS_PER_REQUEST:
        raise PayloadTooLargeException(detail=f"a group request may name at most {MAX_MEMBERS_PER_REQUEST} members")
    if len(wanted) > MAX_MEMBERS_PER_GROUP:
        raise bad_value(
            f"a group may have at most {MAX_MEMBERS_PER_GROUP:,} members; this change would give it {len(wanted):,}"
        )
    return wanted


async def _check_members(session: AsyncSession, tenant_id: str, wanted: set[str]) -> None:
    if not wanted:
        return
    known = set(
        (await session.scalars(sa.select(U.c.id).where(U.c.tenant_id == tenant_id, U.c.id.in_(sorted(wanted))))).all()
    )
    missing = sorted(wanted - known)
    if missing:
        raise bad_value(f"members name no user of this tenant: {', '.join(missing[:5])}")


async def _unique_group(session: AsyncSession, tenant_id: str, key: str, group_id: str) -> None:
    clash = await session.scalar(
        sa.select(G.c.id).where(G.c.tenant_id == tenant_id, G.c.display_name_key == key, G.c.id != group_id)
    )
    if clash is not None:
        raise UniquenessException(detail="another group has this displayName")


def _group_columns(group: Any) -> dict[str, Any]:
    bounded("displayName", group.display_name, required=True)
    bounded("externalId", group.external_id)
    stored = group.model_copy(deep=True)
    stored.members = None
    return {
        "display_name": group.display_name,
        "display_name_key": fold(group.display_name),
        "external_id": group.external_id,
        "resource": _stored(stored),
    }


async def _set_members(
    session: AsyncSession, tenant_id: str, group_id: str, before: set[str], wanted: dict[str, str | None]
) -> set[str]:
    """Make the group's members ``wanted`` (id -> the display the client sent); returns who joined or left."""
    gone, new = before - set(wanted), set(wanted) - before
    if gone:
        await session.execute(
            sa.delete(GM).where(GM.c.tenant_id == tenant_id, GM.c.group_id == group_id, GM.c.user_id.in_(sorted(gone)))
        )
    rows = sorted(wanted.items())
    for i in range(0, len(rows), UPSERT_ROWS):
        stmt = pg_insert(GM).values(
            [
                {"tenant_id": tenant_id, "group_id": group_id, "user_id": u, "display": d}
                for u, d in rows[i : i + UPSERT_ROWS]
            ]
        )
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["tenant_id", "group_id", "user_id"],
                set_={"display": stmt.excluded.display},
                where=GM.c.display.is_distinct_from(stmt.excluded.display),
            )
        )
    return gone | new


# Member rows per upsert statement: 4 bind parameters each, under PostgreSQL's 32,767 per statement
# (a group of 6,600 members or more failed in one statement).
UPSERT_ROWS = 5000


async def _after_group_change(
    session: AsyncSession, caller: Caller, moved: set[str], names: set[str], at: datetime
) -> None:
    """People whose groups changed get their team again; teams touched (and renamed or deleted
    groups' names) are announced."""
    settings = await _directory(session, caller.tenant_id)
    if settings.team_from != "group":
        return
    touched = await directory.refresh_group_teams(session, caller.tenant_id, moved, settings, at)
    await directory.announce_teams(session, caller.tenant_id, touched | names, settings, at)


async def create_group(session: AsyncSession, caller: Caller, payload: Any) -> dict[str, Any]:
    group = validated(Group, payload, Context.RESOURCE_CREATION_REQUEST)
    t, at = caller.tenant_id, now()
    wanted = _wanted_members(group)
    await _check_members(session, t, set(wanted))
    group_id = uuid.uuid4().hex
    group.id = group_id
    cols = _group_columns(group)
    await _unique_group(session, t, cols["display_name_key"], group_id)
    try:
        await session.execute(
            sa.insert(G).values(tenant_id=t, id=group_id, version=1, created_at=at, updated_at=at, **cols)
        )
    except sa.exc.IntegrityError as e:
        raise UniquenessException(detail="another group has this displayName") from e
    moved = await _set_members(session, t, group_id, set(), wanted)
    await _after_group_change(session, caller, moved, {str(group.display_name)}, at)
    row = await _group_row(session, t, group_id)
    return dict((await _group_model(session, caller, row)).model_dump(scim_ctx=Context.RESOURCE_CREATION_RESPONSE))


async def get_group(
    session: AsyncSession, caller: Caller, group_id: str, params: ResponseParameters[Any] | None
) -> dict[str, Any]:
    row = await _group_row(session, caller.tenant_id, group_id)
    group = await _group_model(session, caller, row, with_members=not _excludes_members(params))
    return dict(group.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE, response_parameters=params))


def _excludes_members(params: ResponseParameters[Any] | None) -> bool:
    if params is None:
        return False
    if params.excluded_attributes and any(str(a).casefold().endswith("members") for a in params.excluded_attributes):
        return True
    return bool(params.attributes) and not any("members" in str(a).casefold() for a in params.attributes or [])


async def list_groups(
    session: AsyncSession,
    caller: Caller,
    filter_: str | None,
    start_index: int | None,
    count: int | None,
    params: ResponseParameters[Any] | None,
) -> dict[str, Any]:
    filtered = filter_clause(filter_, Group, GROUP_FILTERS) if filter_ else None
    rows, total, start = await _page(session, G, caller, filtered, start_index, count)
    with_members = not _excludes_members(params)
    groups = [await _group_model(session, caller, r, with_members=with_members) for r in rows]
    return _listing(Group, groups, total, start, params)


async def _save_group(
    session: AsyncSession, caller: Caller, row: Any, group: Any, before: set[str], *, patched: bool = False
) -> dict[str, Any]:
    t, at = caller.tenant_id, now()
    wanted = _wanted_members(group, named_by_request=not patched)
    await _check_members(session, t, set(wanted) - before)
    cols = _group_columns(group)
    await _unique_group(session, t, cols["display_name_key"], row.id)
    try:
        await session.execute(
            sa.update(G)
            .where(G.c.tenant_id == t, G.c.id == row.id)
            .values(version=row.version + 1, updated_at=at, **cols)
        )
    except sa.exc.IntegrityError as e:
        raise UniquenessException(detail="another group has this displayName") from e
    moved = await _set_members(session, t, row.id, before, wanted)
    renamed = row.display_name != group.display_name
    if renamed:
        moved |= set(wanted)  # every member's team may follow the new name
    names = {row.display_name, group.display_name} if renamed else ({group.display_name} if moved else set())
    await _after_group_change(session, caller, moved, names, at)
    fresh = await _group_row(session, t, row.id)
    return dict((await _group_model(session, caller, fresh)).model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))


async def replace_group(session: AsyncSession, caller: Caller, group_id: str, payload: Any) -> dict[str, Any]:
    row = await _group_row(session, caller.tenant_id, group_id, for_update=True)
    new = validated(Group, payload, Context.RESOURCE_REPLACEMENT_REQUEST)
    original = await _group_model(session, caller, row)
    before = {m.value for m in original.members or [] if m.value}
    _replace(new, original)
    return await _save_group(session, caller, row, new, before)


async def patch_group(session: AsyncSession, caller: Caller, group_id: str, payload: Any) -> dict[str, Any]:
    _bound_patch(payload)
    ops = validated(PatchOp[Group], payload, Context.RESOURCE_PATCH_REQUEST)
    row = await _group_row(session, caller.tenant_id, group_id, for_update=True)
    group = await _group_model(session, caller, row)
    before = {m.value for m in group.members or [] if m.value}
    if not _apply(ops, group):
        return dict(group.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))
    return await _save_group(session, caller, row, group, before, patched=True)


async def delete_group(session: AsyncSession, caller: Caller, group_id: str) -> None:
    t, at = caller.tenant_id, now()
    row = await _group_row(session, t, group_id, for_update=True)
    before = set(await _member_ids(session, t, group_id))
    await session.execute(sa.delete(G).where(G.c.tenant_id == t, G.c.id == group_id))  # memberships cascade
    await _after_group_change(session, caller, before, {row.display_name}, at)


# -- PATCH and PUT, as the library applies them -------------------------------------------------------
def _bound_patch(payload: Any) -> None:
    """Count before parsing: operations, and the member values they carry."""
    operations = payload.get("Operations") if isinstance(payload, dict) else None
    if not isinstance(operations, list):
        return  # the model refuses it with the RFC's error
    if len(operations) > MAX_OPERATIONS:
        raise PayloadTooLargeException(detail=f"a PATCH may hold at most {MAX_OPERATIONS} operations")
    values = 0
    for op in operations:
        value = op.get("value") if isinstance(op, dict) else None
        if isinstance(value, list):
            values += len(value)
        elif isinstance(value, dict) and isinstance(value.get("members"), list):
            values += len(value["members"])
    if values > MAX_MEMBERS_PER_REQUEST:
        raise PayloadTooLargeException(detail=f"a PATCH may carry at most {MAX_MEMBERS_PER_REQUEST} values")


def _apply(ops: Any, resource: Any) -> bool:
    try:
        return bool(ops.patch(resource, POLICY))
    except SCIMException:
        raise
    except ValidationError as e:
        raise SCIMException.from_error(Error.from_validation_errors(e)[0]) from e


def _replace(new: Any, original: Any) -> None:
    new.id = original.id
    try:
        new.replace(original)
    except MutabilityException:
        raise
    except ValidationError as e:
        raise SCIMException.from_error(Error.from_validation_errors(e)[0]) from e


# -- the tenant policy: erase after N days inactive ---------------------------------------------------
RETENTION_ACTOR = "scim-retention"
SWEEP_BATCH = 100


async def erase_inactive(session: AsyncSession, at: datetime) -> int:
    """Erase (as a SCIM DELETE would) up to SWEEP_BATCH people deactivated longer ago than their
    tenant's ``directory.erase_inactive_after_days``; returns how many."""
    days = TenantSettingsTable.c.settings["directory"]["erase_inactive_after_days"].astext.cast(sa.Integer)
    due = (
        await session.execute(
            sa.select(U.c.tenant_id, U.c.employee_id)
            .join(TenantSettingsTable, TenantSettingsTable.c.tenant_id == U.c.tenant_id)
            .where(
                U.c.active.is_(False),
                U.c.deactivated_at.is_not(None),
                days.is_not(None),
                U.c.deactivated_at < sa.literal(at) - sa.func.make_interval(0, 0, 0, days),
            )
            .order_by(U.c.deactivated_at)
            .limit(SWEEP_BATCH)
            .with_for_update(of=U, skip_locked=True)
        )
    ).all()
    for row in due:
        who = Principal(sub=RETENTION_ACTOR, tenant_id=row.tenant_id, roles=frozenset())
        await members.erase_member(session, who, row.employee_id)
    return len(due)


async def erase_inactive_task(runtime: Any, stop: asyncio.Event, every_seconds: float = 3600.0) -> None:
    """A worker task: the sweep, hourly (batches back to back while there is more)."""
    while not stop.is_set():
        try:
            while True:
                async with runtime.sessionmaker() as session, session.begin():
                    n = await erase_inactive(session, now())
                if n:
                    log.info("directory: inactive people erased by tenant policy", extra={"erased": n})
                if n < SWEEP_BATCH or stop.is_set():
                    break
        except Exception as e:  # the next round tries again
            log.warning("directory: the inactive sweep failed", extra={"error": f"{type(e).__name__}: {e}"})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_seconds)
