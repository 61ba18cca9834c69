"""Liveness and readiness: public, for load balancers and watchdogs."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from api.auth import PublicCaller

router = APIRouter(prefix="/api/v1", tags=["health"])


class Health(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok", "line": "running"}, {"status": "starting"}]})

    status: str = Field(description="`ok` once the line is up, `starting` before.")
    line: str | None = Field(None, description="The line's state: starting, running or stopped.")


@router.get("/health", response_model=Health, response_model_exclude_none=True)
async def health(request: Request, _: PublicCaller) -> Health:
    handle = getattr(request.app.state, "line", None)
    if handle is None:
        return Health(status="starting")
    return Health(status="ok", line=handle.runtime.state)
