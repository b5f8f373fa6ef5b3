"""SCIM 2.0 (RFC 7644) at ``/scim/v2``, authenticated by the tenant's SCIM bearer secret, and the
admin's rotation of that secret (routes of features/scim.py).

Bodies are read raw (``application/scim+json`` is what identity providers send) and bounded
(adapters/scim.py); every error, the 401 included, is the RFC's ``Error`` message."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel
from scim2_models import Error, Group, NotFoundException, NotImplementedException

from advocacy_common.auth import AdminPrincipal
from advocacy_common.db import SessionDep
from advocacy_content.adapters.scim import (
    BASE_PATH,
    MAX_FILTER_CHARS,
    ScimRoute,
    UserResource,
    bearer,
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


async def _caller(request: Request, session: SessionDep) -> Caller:
    tenant_id = await scim.tenant_for_secret(session, bearer(request))
    return Caller(tenant_id=tenant_id, base_url=str(request.base_url).rstrip("/") + BASE_PATH)


ScimCaller = Annotated[Caller, Depends(_caller)]
Filter = Annotated[str | None, Query(alias="filter", max_length=MAX_FILTER_CHARS)]
StartIndex = Annotated[int | None, Query(alias="startIndex", ge=-(2**31), le=2**31)]
Count = Annotated[int | None, Query(alias="count", ge=-(2**31), le=2**31)]
Attributes = Annotated[str | None, Query(alias="attributes", max_length=2000)]
Excluded = Annotated[str | None, Query(alias="excludedAttributes", max_length=2000)]

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
@api.get("/ServiceProviderConfig", operation_id="scimServiceProviderConfig", responses={200: _JSON})
async def service_provider_config(caller: ScimCaller) -> Response:
    return scim_json(scim.service_provider_config(caller))


@api.get("/Schemas", operation_id="scimSchemas", responses={200: _JSON})
async def schemas(caller: ScimCaller) -> Response:
    return scim_json(scim.schemas(caller))


@api.get("/Schemas/{schema_id}", operation_id="scimSchema", responses={200: _JSON})
async def schema(schema_id: str, caller: ScimCaller) -> Response:
    return scim_json(scim.schemas(caller, schema_id))


@api.get("/ResourceTypes", operation_id="scimResourceTypes", responses={200: _JSON})
async def resource_types(caller: ScimCaller) -> Response:
    return scim_json(scim.resource_types(caller))


@api.get("/ResourceTypes/{name}", operation_id="scimResourceType", responses={200: _JSON})
async def resource_type(name: str, caller: ScimCaller) -> Response:
    return scim_json(scim.resource_types(caller, name))


# -- users --------------------------------------------------------------------------------------------
@api.get("/Users", operation_id="scimListUsers", responses={200: _JSON})
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


@api.post("/Users", operation_id="scimCreateUser", status_code=201, openapi_extra=_BODY, responses={201: _JSON})
async def create_user(request: Request, caller: ScimCaller, session: SessionDep) -> Response:
    doc = await scim.create_user(session, caller, await read_json(request))
    return scim_json(doc, 201, {"Location": doc["meta"]["location"]})


@api.get("/Users/{user_id}", operation_id="scimGetUser", responses={200: _JSON})
async def get_user(
    user_id: str, caller: ScimCaller, session: SessionDep, attributes: Attributes = None, excluded: Excluded = None
) -> Response:
    params = scim.response_parameters(UserResource, attributes, excluded)
    return scim_json(await scim.get_user(session, caller, user_id, params))


@api.put("/Users/{user_id}", operation_id="scimReplaceUser", openapi_extra=_BODY, responses={200: _JSON})
async def replace_user(user_id: str, request: Request, caller: ScimCaller, session: SessionDep) -> Response:
    return scim_json(await scim.replace_user(session, caller, user_id, await read_json(request)))


@api.patch("/Users/{user_id}", operation_id="scimPatchUser", openapi_extra=_BODY, responses={200: _JSON})
async def patch_user(user_id: str, request: Request, caller: ScimCaller, session: SessionDep) -> Response:
    return scim_json(await scim.patch_user(session, caller, user_id, await read_json(request)))


@api.delete("/Users/{user_id}", operation_id="scimDeleteUser", status_code=204)
async def delete_user(user_id: str, caller: ScimCaller, session: SessionDep) -> Response:
    """Deprovisioning: the person is erased in every service (member.erased)."""
    await scim.delete_user(session, caller, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- groups -------------------------------------------------------------------------------------------
@api.get("/Groups", operation_id="scimListGroups", responses={200: _JSON})
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


@api.post("/Groups", operation_id="scimCreateGroup", status_code=201, openapi_extra=_BODY, responses={201: _JSON})
async def create_group(request: Request, caller: ScimCaller, session: SessionDep) -> Response:
    doc = await scim.create_group(session, caller, await read_json(request))
    return scim_json(doc, 201, {"Location": doc["meta"]["location"]})


@api.get("/Groups/{group_id}", operation_id="scimGetGroup", responses={200: _JSON})
async def get_group(
    group_id: str, caller: ScimCaller, session: SessionDep, attributes: Attributes = None, excluded: Excluded = None
) -> Response:
    params = scim.response_parameters(Group, attributes, excluded)
    return scim_json(await scim.get_group(session, caller, group_id, params))


@api.put("/Groups/{group_id}", operation_id="scimReplaceGroup", openapi_extra=_BODY, responses={200: _JSON})
async def replace_group(group_id: str, request: Request, caller: ScimCaller, session: SessionDep) -> Response:
    return scim_json(await scim.replace_group(session, caller, group_id, await read_json(request)))


@api.patch("/Groups/{group_id}", operation_id="scimPatchGroup", openapi_extra=_BODY, responses={200: _JSON})
async def patch_group(group_id: str, request: Request, caller: ScimCaller, session: SessionDep) -> Response:
    return scim_json(await scim.patch_group(session, caller, group_id, await read_json(request)))


@api.delete("/Groups/{group_id}", operation_id="scimDeleteGroup", status_code=204)
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
