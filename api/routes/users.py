"""HMI users, for admins: the list, and clearing a PIN lock-out.

Adding and disabling users is done on the line PC (``gradeline user ...``), where a PIN can be
typed without crossing the network.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from api.auth import AdminCaller, Audit, auth_state
from api.paging import Cursor, Limit, decode_cursor, encode_cursor
from api.problems import NotFoundProblem, documented
from grading.access import NotFound, User

router = APIRouter(prefix="/api/v1/users", tags=["users"])

_USER_EXAMPLE: dict[str, Any] = {
    "name": "张三", "role": "operator", "active": True, "locked": True, "failed_pins": 5,
    "created_at": "2026-11-29T07:58:00+00:00", "locked_at": "2026-12-02T09:14:03+00:00",
}


class UserInfo(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_USER_EXAMPLE]})

    name: str
    role: str = Field(description="operator, supervisor or admin.")
    active: bool = Field(description="False once disabled: cannot log in.")
    locked: bool = Field(description="Locked after too many wrong PINs; an admin unlocks.")
    failed_pins: int = Field(ge=0, description="Wrong PINs in a row.")
    created_at: datetime
    locked_at: datetime | None


class UserPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [_USER_EXAMPLE], "next_cursor": None}]})

    items: list[UserInfo]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


def _info(user: User) -> UserInfo:
    return UserInfo(
        name=user.name, role=user.role.value, active=user.active, locked=user.locked, failed_pins=user.failed_pins,
        created_at=user.created_at, locked_at=user.locked_at,
    )


def _lock_state(user: User) -> dict[str, Any]:
    return {"locked": user.locked, "failed_pins": user.failed_pins}


@router.get("", response_model=UserPage)
async def list_users(request: Request, _: AdminCaller, limit: Limit = 50, cursor: Cursor = None) -> UserPage:
    """Every user, oldest first."""
    after = decode_cursor(cursor, int) or 0
    rows = await asyncio.to_thread(auth_state(request).access.list_users, after_id=after, limit=limit + 1)
    page = rows[:limit]
    return UserPage(
        items=[_info(u) for u in page], next_cursor=encode_cursor(page[-1].id) if len(rows) > limit else None
    )


@router.post("/{name}/unlock", response_model=UserInfo, responses=documented(404))
async def unlock(
    request: Request, who: AdminCaller, audit: Audit,
    name: str = Path(min_length=1, max_length=64, examples=["zhang-san"], description="The user's name."),
) -> UserInfo:
    """Clear a PIN lock-out and the count of wrong PINs."""
    state = auth_state(request)
    try:
        before, after = await asyncio.to_thread(state.access.unlock_user, name)
    except NotFound as exc:
        raise NotFoundProblem(str(exc)) from exc
    await audit(who, "user.unlock", target=name, before=_lock_state(before), after=_lock_state(after))
    return _info(after)
