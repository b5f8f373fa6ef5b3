"""PostgreSQL text cannot hold U+0000: refuse it at the edge with a 422 that names the field.

An app-wide dependency looks at the request body FastAPI has already read (a byte search, so the
common case costs next to nothing) and at the query string; the first string holding a NUL is named.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request

from advocacy_common.errors import Unprocessable

MESSAGE = "must not contain NUL (U+0000) characters"


def nul_path(node: Any, path: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """The path of the first key or string value holding a NUL, or None."""
    if isinstance(node, str):
        return path if "\x00" in node else None
    if isinstance(node, dict):
        for k, v in node.items():
            if "\x00" in k:
                return (*path, k.replace("\x00", "\\u0000"))
            found = nul_path(v, (*path, k))
            if found is not None:
                return found
    if isinstance(node, list):
        for i, v in enumerate(node):
            found = nul_path(v, (*path, str(i)))
            if found is not None:
                return found
    return None


async def reject_nul_characters(request: Request) -> None:
    for key, value in request.query_params.multi_items():
        if "\x00" in key or "\x00" in value:
            raise Unprocessable.field(key.replace("\x00", "\\u0000"), MESSAGE)
    if request.method in ("GET", "HEAD", "DELETE", "OPTIONS"):
        return
    body = await request.body()
    if b"\\u0000" not in body and b"\x00" not in body:
        return
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return  # FastAPI answers malformed JSON with its own 422
    path = nul_path(doc)
    if path is not None:
        raise Unprocessable.field(".".join(path) or "body", MESSAGE)
