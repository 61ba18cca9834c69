"""The audit log, newest first, for supervisors and above."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from api.auth import SupervisorCaller, auth_state
from api.paging import Cursor, Limit, decode_cursor, encode_cursor

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])

_ENTRY_EXAMPLE: dict[str, Any] = {
    "id": 4182, "at": "2026-12-02T09:14:03+00:00", "actor_kind": "token", "actor": "mes-bridge", "role": "supervisor",
    "action": "line.stop", "target": "line-1", "outcome": "ok", "client_address": "10.0.0.20",
    "before": {"state": "running"}, "after": {"state": "stopped"}, "detail": "",
}


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_ENTRY_EXAMPLE]})

    id: int
    at: datetime
    actor_kind: str = Field(description="user (HMI login), token, public (e.g. a failed login) or cli (on the line PC).")
    actor: str = Field(description="User or token name; for a public caller, what it typed.")
    role: str | None
    action: str = Field(description="What was done: line.start, line.stop, auth.login, user.unlock, ...")
    target: str | None = Field(description="What it was done to.")
    outcome: str = Field(description="ok or refused.")
    client_address: str = Field(description="Where from; `local` for the command line.")
    before: Any = Field(description="For changes: the value before.")
    after: Any = Field(description="For changes: the value after.")
    detail: str


class AuditPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [_ENTRY_EXAMPLE], "next_cursor": "NDE4Mg"}]})

    items: list[AuditEntryOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for older entries; null on the last page.")


@router.get("", response_model=AuditPage)
async def audit_log(request: Request, _: SupervisorCaller, limit: Limit = 50, cursor: Cursor = None) -> AuditPage:
    """Who did what, when and from where; newest first."""
    before_id = decode_cursor(cursor, int)
    entries = await asyncio.to_thread(auth_state(request).audit.page, limit + 1, before_id)
    page = entries[:limit]
    return AuditPage(
        items=[AuditEntryOut.model_validate(e, from_attributes=True) for e in page],
        next_cursor=encode_cursor(page[-1].id) if len(entries) > limit else None,
    )
