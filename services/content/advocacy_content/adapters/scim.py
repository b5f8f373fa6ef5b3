"""SCIM 2.0 on the wire (RFC 7643/7644) for content's directory: the resources the service serves and
what it declares (the ``scim2-models`` library's models, paths, PATCH and filter parser), the error
shape, bounded bodies, filters turned into SQL, and the bearer secret's hash.

Every SCIM answer, errors included, is ``application/scim+json`` and carries the RFC's ``Error``
message (``status`` as a string, ``scimType`` where Table 9 names one); :class:`ScimRoute` turns a
:class:`~scim2_models.SCIMException` raised anywhere in a route (its authentication included) into
one, after the request's transaction rolled back: an error changes nothing.
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import ValidationError
from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    Context,
    EnterpriseUser,
    Error,
    ETag,
    Filter,
    Group,
    InvalidFilterException,
    InvalidSyntaxException,
    InvalidValueException,
    Pagination,
    Patch,
    PayloadTooLargeException,
    ResourceType,
    SCIMException,
    ScimFilter,
    ScimPolicy,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
    User,
)
from scim2_models.path import AttrPath, CompareOperator, Comparison, FilterNode, LogicalExpr, LogicalOperator

from advocacy_common.errors import AppError

MEDIA_TYPE = "application/scim+json"
BASE_PATH = "/scim/v2"

# Bounds. A user with every attribute of the published schemas filled is about 10 KiB, and a group
# PATCH adding MAX_MEMBERS_PER_REQUEST members about 60 KiB: 256 KiB leaves room for both and keeps
# what one request can make the process parse small (the service-wide limit is 1 MiB).
MAX_BODY_BYTES = 256 * 1024
MAX_FILTER_CHARS = 1000  # Entra's and Okta's filters are one or two comparisons, under 300 characters
MAX_COUNT = 100  # a page; ServiceProviderConfig declares it as filter.maxResults and maxPageSize
MAX_OPERATIONS = 100  # PATCH operations in one request
MAX_MEMBERS_PER_REQUEST = 1000  # members one group POST, PUT or PATCH may name (Entra sends <= 1000)
# Members one group may have, whatever the number of PATCHes that grew it. A group's GET and every
# PATCH of it load all its members (the library applies a PATCH to the whole resource). Measured on
# the shared 2-core dev box, a 10,000-member group: GET 0.84 MB in 1.5 s, a PATCH adding one member
# 7.6 s; at 50,000 a PATCH ran past a client's 30 s. 10,000 is more people than a team or an audience
# needs; "everyone" groups are better mapped by attribute (directory.team_from = department). Past
# it: 400 invalidValue, nothing changed. Clients that do not need the members ask for
# ``excludedAttributes=members`` (Entra does), which skips the read (0.05 s at 10,000).
MAX_MEMBERS_PER_GROUP = 10_000
MAX_START_INDEX = 10**9  # startIndex is an offset: past this, no tenant has rows
MAX_SECRET_CHARS = 200
# userName, externalId, displayName, department, location, employeeNumber, a manager's id, a group's
# name: each is indexed, compared or carried by every member.provisioned / team.updated event.
MAX_VALUE_CHARS = 256

UserResource = User[EnterpriseUser]
CORE_USER = str(User.__schema__)
CORE_GROUP = str(Group.__schema__)
ENTERPRISE = str(EnterpriseUser.__schema__)

# Entra's PATCH dialect is accepted: a ``remove`` whose ``value`` names the members to remove, and an
# ``add``/``replace`` on ``emails[type eq "work"].value`` that creates the entry it filters on.
# Unknown attributes stay refused (the interoperability profile asks a provider to reject them).
POLICY = ScimPolicy(
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)

SERVICE_PROVIDER_CONFIG = ServiceProviderConfig(
    patch=Patch(supported=True),
    bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
    filter=Filter(supported=True, max_results=MAX_COUNT),
    change_password=ChangePassword(supported=False),
    sort=Sort(supported=False),
    etag=ETag(supported=False),
    authentication_schemes=[
        AuthenticationScheme(
            type=AuthenticationScheme.Type.oauthbearertoken,
            name="Tenant SCIM secret",
            description="The bearer secret an admin rotates with POST /v1/scim/secret/rotate; it names the tenant.",
            primary=True,
        )
    ],
    pagination=Pagination(
        cursor=False,
        index=True,
        default_pagination_method=Pagination.DefaultPaginationMethod.index,
        default_page_size=MAX_COUNT,
        max_page_size=MAX_COUNT,
    ),
)

PROVIDER = ScimProvider(
    models=[User, EnterpriseUser, Group],
    resource_types=[ResourceType.from_resource(UserResource), ResourceType.from_resource(Group)],
    config=SERVICE_PROVIDER_CONFIG,
    policy=POLICY,
)


# -- the secret ---------------------------------------------------------------------------------------
def new_secret() -> str:
    return "scim_" + secrets.token_urlsafe(32)


def secret_hash(secret: str) -> str:
    """SHA-256, hex. The secret is 256 random bits, so a fast hash is enough: nothing to brute-force."""
    return hashlib.sha256(secret.encode()).hexdigest()


# -- values -------------------------------------------------------------------------------------------
def fold(value: str) -> str:
    """The comparison form of a case-insensitive string (userName, emails, a group's displayName):
    NFC, lower case, NFC again (scim2-models' default comparison key)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", value).lower())


# -- Entra's manager ---------------------------------------------------------------------------------
_MANAGER = f"{ENTERPRISE}:manager".casefold()


def _manager(value: Any) -> Any:
    """Entra ID sends a manager as their id alone (``"value": "<id>"`` in a PATCH) or as ``{"value"}``
    with no ``$ref``; scim2-models (RFC 7643 §4.3) wants the reference too: it is made from the id,
    relative to /Users."""
    if isinstance(value, str) and value:
        return {"value": value, "$ref": f"../Users/{value}"}
    if isinstance(value, dict) and isinstance(value.get("value"), str) and value["value"] and not value.get("$ref"):
        return {**value, "$ref": f"../Users/{value['value']}"}
    return value


def _extension_manager(document: dict[str, Any]) -> None:
    for key, ext in document.items():
        if key.casefold() == ENTERPRISE.casefold() and isinstance(ext, dict) and "manager" in ext:
            ext["manager"] = _manager(ext["manager"])
        elif key.casefold() == _MANAGER:
            document[key] = _manager(ext)


def manager_refs(payload: Any) -> Any:
    """A user (POST, PUT) or a PATCH of one with every manager reference completed (in place)."""
    if not isinstance(payload, dict):
        return payload
    _extension_manager(payload)
    operations = payload.get("Operations")
    for op in operations if isinstance(operations, list) else []:
        if not isinstance(op, dict):
            continue
        path = op.get("path")
        if isinstance(path, str) and path.casefold() == _MANAGER and "value" in op:
            op["value"] = _manager(op["value"])
        elif path is None and isinstance(op.get("value"), dict):
            _extension_manager(op["value"])
    return payload


# -- bodies and errors --------------------------------------------------------------------------------
async def read_json(request: Request) -> Any:
    """The request's JSON body, at most MAX_BODY_BYTES (413 past it, counted as it arrives)."""
    size = 0
    chunks: list[bytes] = []
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise PayloadTooLargeException(detail=f"the request body is larger than {MAX_BODY_BYTES:,} bytes")
        chunks.append(chunk)
    try:
        return orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError as e:
        raise InvalidSyntaxException(detail=f"the body is not JSON: {e}") from e


M = TypeVar("M")


def validated(model: type[M], payload: Any, ctx: Context) -> M:
    """``model`` read from ``payload`` in a SCIM context; a refusal is the SCIM error it stands for."""
    if not isinstance(payload, dict):
        raise InvalidSyntaxException(detail="the body must be a JSON object")
    try:
        return model.model_validate(payload, scim_ctx=ctx, scim_policy=POLICY)  # type: ignore[attr-defined,no-any-return]
    except ValidationError as e:
        raise SCIMException.from_error(Error.from_validation_errors(e)[0]) from e


def scim_json(document: Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(document), status_code=status, media_type=MEDIA_TYPE, headers=headers)


def error_response(error: Error) -> Response:
    status = int(error.status or 400)
    return scim_json(error.model_dump(), status)


class ScimRoute(APIRoute):
    """A route that answers every SCIM error in the RFC's shape (RFC 7644 §3.12)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def scim_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except SCIMException as e:
                return error_response(e.to_error())
            except AppError as e:  # the app's own guards (NUL characters...), in SCIM's shape
                status = 400 if e.status_code == 422 else e.status_code
                scim_type = "invalidValue" if status == 400 else None
                return error_response(Error(status=status, scim_type=scim_type, detail=_app_detail(e)))
            except RequestValidationError as e:
                where = ", ".join(".".join(str(p) for p in err["loc"]) for err in e.errors()[:3])
                return error_response(Error(status=400, scim_type="invalidValue", detail=f"invalid parameter: {where}"))

        return scim_handler


def _app_detail(e: AppError) -> str:
    fields = [str(d.get("field")) for d in e.details if d.get("field")]
    return f"{e.message}: {', '.join(fields)}" if fields else e.message


def bounded(name: str, value: str | None, *, required: bool = False) -> str | None:
    """A value the directory indexes or publishes: not blank when required, at most MAX_VALUE_CHARS."""
    if required and (value is None or not value.strip()):
        raise InvalidValueException(detail=f"{name} must not be empty")
    if value is not None and len(value) > MAX_VALUE_CHARS:
        raise InvalidValueException(detail=f"{name} is longer than {MAX_VALUE_CHARS} characters")
    return value


# -- filters ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Filterable:
    """A column a filter may compare with ``eq``: ``fold`` compares the folded value, ``array`` looks
    the folded value up in an array column, ``boolean`` compares a boolean."""

    column: sa.ColumnElement[Any]
    kind: str = "exact"  # exact | fold | array | boolean


def filter_clause(
    expression: str, model: type[Any], columns: Mapping[tuple[str, str | None], Filterable]
) -> sa.ColumnElement[bool]:
    """A SQL condition for a SCIM filter. ``eq`` comparisons of the attributes ``columns`` names,
    joined by ``and``/``or``; anything else is ``invalidFilter`` (RFC 7644 §3.4.2.2 lets a provider
    support a subset). Parsed by scim2-models: a malformed filter is ``invalidFilter`` too."""
    if len(expression) > MAX_FILTER_CHARS:
        raise InvalidFilterException(detail=f"the filter is longer than {MAX_FILTER_CHARS} characters")
    try:
        parsed = ScimFilter[model](expression)  # type: ignore[valid-type]
    except SCIMException:
        raise
    except (ValueError, TypeError) as e:
        raise InvalidFilterException(detail=str(e)) from e
    return _clause(parsed.ast, model, columns, depth=0)


def _clause(
    node: FilterNode, model: type[Any], columns: Mapping[tuple[str, str | None], Filterable], depth: int
) -> sa.ColumnElement[bool]:
    if depth > 20:
        raise InvalidFilterException(detail="the filter nests too deep")
    if isinstance(node, LogicalExpr):
        terms = [_clause(t, model, columns, depth + 1) for t in node.terms]
        return sa.and_(*terms) if node.op == LogicalOperator.and_ else sa.or_(*terms)
    if isinstance(node, Comparison) and node.op == CompareOperator.eq:
        target = columns.get(_key(node.attr_path, model))
        if target is None:
            raise InvalidFilterException(detail=f"filtering on {_name(node.attr_path)} is not supported")
        value = node.value
        if target.kind == "boolean":
            if not isinstance(value, bool):
                raise InvalidFilterException(detail=f"{_name(node.attr_path)} compares with true or false")
            return target.column == value
        if not isinstance(value, str):
            raise InvalidFilterException(detail=f"{_name(node.attr_path)} compares with a string")
        if target.kind == "array":
            return target.column.contains([fold(value)])
        return target.column == (fold(value) if target.kind == "fold" else value)
    raise InvalidFilterException(
        detail="only 'eq' comparisons joined by 'and'/'or' are supported (e.g. userName eq \"bjensen\")"
    )


def _key(path: AttrPath, model: type[Any]) -> tuple[str, str | None]:
    if path.uri and path.uri.casefold() not in {str(model.__schema__).casefold()}:
        raise InvalidFilterException(detail=f"filtering on {_name(path)} is not supported")
    return path.attr.casefold(), path.sub_attr.casefold() if path.sub_attr else None


def _name(path: AttrPath) -> str:
    return path.attr + (f".{path.sub_attr}" if path.sub_attr else "")


def page_bounds(start_index: int | None, count: int | None) -> tuple[int, int]:
    """RFC 7644 §3.4.2.4: startIndex is 1-based (below 1 reads as 1), count below 0 as 0; count is
    capped at MAX_COUNT (the declared maxResults)."""
    start = min(max(start_index or 1, 1), MAX_START_INDEX)
    size = MAX_COUNT if count is None else min(max(count, 0), MAX_COUNT)
    return start, size


def bad_value(detail: str) -> InvalidValueException:
    return InvalidValueException(detail=detail)
