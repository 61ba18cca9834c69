"""Cursor pagination, the one way every list is paged: ``limit`` and ``cursor`` in, ``items``
and ``next_cursor`` out.

A cursor is opaque to clients (URL-safe base64 of a small JSON value: the last key the page
showed); the route decides what the key is. ``next_cursor`` is null on the last page.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any

from fastapi import Query

from api.problems import InvalidParameter

Limit = Annotated[int, Query(ge=1, le=500, description="Items per page (1-500).")]
Cursor = Annotated[
    str | None,
    Query(max_length=200, description="`next_cursor` of the previous page; absent for the first page."),
]


def encode_cursor(key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, kind: type) -> Any:
    """The key in ``cursor`` (None for the first page); a 422 naming ``query.cursor`` if it is not ours."""
    if cursor is None:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        key = None
    if not isinstance(key, kind) or isinstance(key, bool):
        raise InvalidParameter("query.cursor", "not a cursor this list gave out")
    return key
