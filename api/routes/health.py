"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

router = APIRouter(prefix="/api/v1", tags=["health"])


@router.get("/health")
async def health(request: Request) -> dict[str, Any]:
    handle = getattr(request.app.state, "line", None)
    if handle is None:
        return {"status": "starting"}
    return {"status": "ok", "line": handle.runtime.state}
