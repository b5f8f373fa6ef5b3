"""SCIM 2.0 (RFC 7644) at ``/scim/v2``, authenticated by the tenant's SCIM bearer secret, and the
admin's rotation of that secret (routes of features/scim.py).

Bodies are read raw (``application/scim+json`` is what identity providers send) and bounded
(adapters/scim.py); every error, the 401 included, is the RFC's ``Error`` message."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from scim2_models import Error, Group, NotFoundException, NotImplementedException

from advocacy_common.auth import AdminPrincipal
from advocacy_common.db import SessionDep
from advocacy_content.adapters.scim import (
    BASE_PATH,
    MAX_FILTER_CHARS,
    MAX_MEMBERS_PER_GROUP,
    MEDIA_TYPE,
    ScimRoute,
    UserResource,
    error_response,
    read_json,
    scim_json,
)
from advocacy_content.features import scim
from advocacy_content.features.scim import Caller

router = APIRouter()
api = APIRouter(prefix=BASE_PATH, tags=["scim"], route_class=ScimRoute)


class ScimSecret(BaseModel):
    secret: str
    rotated_at: datetime
    base_path: str = BASE_PATH


@router.post("/v1/scim/secret/rotate", tags=["scim"], operation_id="rotateScimSecret", response_model=ScimSecret)
async def rotate_secret(who: AdminPrincipal, session: SessionDep) -> ScimSecret:
    """A new SCIM bearer secret for the tenant, shown only in this answer; the old one stops working."""
    return ScimSecret.model_validate(await scim.rotate_secret(session, who))


# The scheme the OpenAPI document names (and the security tests key on: tests/security/openapi_kit.py).
_SECRET = HTTPBearer(
    scheme_name="scimSecret",
    bearerFormat="opaque",
    description="The tenant's SCIM secret (POST /v1/scim/secret/rotate; `advocacy scim-token` in dev).",
    auto_error=False,
)


async def _caller(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_SECRET)],
) -> Caller:
    tenant_id = await scim.tenant_for_secret(session, credentials.credentials if credentials else None)
    return Caller(tenant_id=tenant_id, base_url=str(request.base_url).rstrip("/") + BASE_PATH)


ScimCaller = Annotated[Caller, Depends(_caller)]
Filter = Annotated[str | None, Query(alias="filter", max_length=MAX_FILTER_CHARS)]
StartIndex = Annotated[int | None, Query(alias="startIndex", ge=-(2**31), le=2**31)]
Count = Annotated[int | None, Query(alias="count", ge=-(2**31), le=2**31)]
Attributes = Annotated[str | None, Query(alias="attributes", max_length=2000)]
Excluded = Annotated[str | None, Query(alias="excludedAttributes", max_length=2000)]

_ERROR: dict[str, Any] = {
    "type": "object",
    "description": "RFC 7644 §3.12",
    "required": ["schemas", "status"],
    "properties": {
        "schemas": {"type": "array", "items": {"type": "string"}},
        "status": {"type": "string", "description": "the HTTP status, as a string"},
        "scimType": {"type": "string", "description": "invalidFilter, invalidValue, invalidPath, uniqueness..."},
        "detail": {"type": "string"},
    },
}
_ERRORS = {
    400: (
        "invalidFilter, invalidValue, invalidPath, invalidSyntax, noTarget or mutability (scimType);"
        f" invalidValue past {MAX_MEMBERS_PER_GROUP:,} members in one group"
    ),
    401: "No valid SCIM secret (a token is not one)",
    404: "Not found (another tenant's resource is not found either)",
    409: "uniqueness: another user has this userName or employee id, another group this displayName",
    413: "Over a bound: the body (256 KiB), PATCH operations (100), member values (1000)",
}


def _doc(ok: int | None, *statuses: int, body: bool = False) -> dict[str, Any]:
    """What a SCIM route's OpenAPI operation says: its answer, its own error shape, and the raw body
    it reads."""
    responses: dict[int | str, dict[str, Any]] = {ok: _JSON} if ok else {}
    for code in sorted({401, *statuses}):
        responses[code] = {"description": _ERRORS[code], "content": {MEDIA_TYPE: {"schema": _ERROR}}}
    extra: dict[str, Any] = {"x-own-errors": True}
    if body:
        extra |= _BODY
    return {"responses": responses, "openapi_extra": extra}


_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/scim+json": {"schema": {"type": "object"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}
_JSON: dict[str, Any] = {"content": {"application/scim+json": {"schema": {"type": "object"}}}}


# -- discovery ----------------------------------------------------------------------------------------
@api.get("/ServiceProviderConfig", operation_id="getScimServiceProviderConfig", **_doc(200))
async def service_provider_config(caller: ScimCaller) -> Response:
    return scim_json(scim.service_provider_config(caller))


@api.get("/Schemas", operation_id="listScimSchemas", **_doc(200))
async def schemas(caller: ScimCaller) -> Response:
    return scim_json(scim.schemas(caller))


@api.get("/Schemas/{schema_id}", operation_id="getScimSchema", **_doc(200, 404))
async def schema(schema_id: str, caller: ScimCaller) -> Response:
    return scim_json(scim.schemas(caller, schema_id))


@api.get("/ResourceTypes", operation_id="listScimResourceTypes", **_doc(200))
async def resource_types(caller: ScimCaller) -> Response:
    return scim_json(scim.resource_types(caller))


@api.get("/ResourceTypes/{name}", operation_id="getScimResourceType", **_doc(200, 404))
async def resource_type(name: str, caller: ScimCaller) -> Response:
    return scim_json(scim.resource_types(caller, name))


# -- users --------------------------------------------------------------------------------------------
@api.get("/Users", operation_id="listScimUsers", **_doc(200, 400))
async def list_users(
    caller: ScimCaller,
    session: SessionDep,
    filter_: Filter = None,
    start_index: StartIndex = None,
    count: Count = None,
    attributes: Attributes = None,
    excluded: Excluded = None,
) -> Response:
    params = scim.response_parameters(UserResource, attributes, excluded)
    return scim_json(await scim.list_users(session, caller, filter_, start_index, count, params))


@api.post("/Users", operation_id="createScimUser", status_code=201, **_doc(201, 400, 409, 413, body=True))
async def create_user(request: Request, caller: ScimCaller, session: SessionDep) -> Response:
    doc = await scim.create_user(session, caller, await read_json(request))
    return scim_json(doc, 201, {"Location": doc["meta"]["location"]})


@api.get("/Users/{user_id}", operation_id="getScimUser", **_doc(200, 400, 404))
async def get_user(
    user_id: str, caller: ScimCaller, session: SessionDep, attributes: Attributes = None, excluded: Excluded = None
) -> Response:
    params = scim.response_parameters(UserResource, attributes, excluded)
    return scim_json(await scim.get_user(session, caller, user_id, params))


@api.put("/Users/{user_id}", operation_id="replaceScimUser", **_doc(200, 400, 404, 409, 413, body=True))
async def replace_user(user_id: str, request: Request, caller: ScimCaller, session: SessionDep) -> Response:
    return scim_json(await scim.replace_user(session, caller, user_id, await read_json(request)))


@api.patch("/Users/{user_id}", operation_id="updateScimUser", **_doc(200, 400, 404, 409, 413, body=True))
async def patch_user(user_id: str, request: Request, caller: ScimCaller, session: SessionDep) -> Response:
    return scim_json(await scim.patch_user(session, caller, user_id, await read_json(request)))


@api.delete("/Users/{user_id}", operation_id="deleteScimUser", status_code=204, **_doc(None, 404))
async def delete_user(user_id: str, caller: ScimCaller, session: SessionDep) -> Response:
    """Deprovisioning: the person is erased in every service (member.erased)."""
    await scim.delete_user(session, caller, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- groups -------------------------------------------------------------------------------------------
@api.get("/Groups", operation_id="listScimGroups", **_doc(200, 400))
async def list_groups(
    caller: ScimCaller,
    session: SessionDep,
    filter_: Filter = None,
    start_index: StartIndex = None,
    count: Count = None,
    attributes: Attributes = None,
    excluded: Excluded = None,
) -> Response:
    params = scim.response_parameters(Group, attributes, excluded)
    return scim_json(await scim.list_groups(session, caller, filter_, start_index, count, params))


@api.post("/Groups", operation_id="createScimGroup", status_code=201, **_doc(201, 400, 409, 413, body=True))
async def create_group(request: Request, caller: ScimCaller, session: SessionDep) -> Response:
    doc = await scim.create_group(session, caller, await read_json(request))
    return scim_json(doc, 201, {"Location": doc["meta"]["location"]})


@api.get("/Groups/{group_id}", operation_id="getScimGroup", **_doc(200, 400, 404))
async def get_group(
    group_id: str, caller: ScimCaller, session: SessionDep, attributes: Attributes = None, excluded: Excluded = None
) -> Response:
    params = scim.response_parameters(Group, attributes, excluded)
    return scim_json(await scim.get_group(session, caller, group_id, params))


@api.put("/Groups/{group_id}", operation_id="replaceScimGroup", **_doc(200, 400, 404, 409, 413, body=True))
async def replace_group(group_id: str, request: Request, caller: ScimCaller, session: SessionDep) -> Response:
    return scim_json(await scim.replace_group(session, caller, group_id, await read_json(request)))


@api.patch("/Groups/{group_id}", operation_id="updateScimGroup", **_doc(200, 400, 404, 409, 413, body=True))
async def patch_group(group_id: str, request: Request, caller: ScimCaller, session: SessionDep) -> Response:
    return scim_json(await scim.patch_group(session, caller, group_id, await read_json(request)))


@api.delete("/Groups/{group_id}", operation_id="deleteScimGroup", status_code=204, **_doc(None, 404))
async def delete_group(group_id: str, caller: ScimCaller, session: SessionDep) -> Response:
    await scim.delete_group(session, caller, group_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# Anything else under /scim/v2 is the RFC's 404, once the caller is known.
@api.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
async def not_found(rest: str, request: Request, caller: ScimCaller) -> Response:
    if rest == ".search":  # searching several resource types at once (RFC 7644 §3.4.3): not offered
        raise NotImplementedException(detail="POST /.search is not supported; query /Users or /Groups")
    if rest.split("/", 1)[0] in KNOWN:  # a known endpoint, another method (POST /Schemas, PUT /Users)
        return error_response(Error(status=405, detail=f"{request.method} is not allowed on /{rest[:100]}"))
    raise NotFoundException(detail=f"no SCIM endpoint /{rest[:100]}")


KNOWN = {"ServiceProviderConfig", "Schemas", "ResourceTypes", "Users", "Groups"}


router.include_router(api)
