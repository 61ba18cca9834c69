"""Live line state and start/stop of intake."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from api.routes.deps import get_runtime
from grading.runtime import LineRuntime

router = APIRouter(prefix="/api/v1/line", tags=["line"])
Runtime = Annotated[LineRuntime, Depends(get_runtime)]


@router.get("")
async def line_state(runtime: Runtime) -> dict[str, Any]:
    """State, lot, totals, rate and counts per quality class, size class, outlet and lane."""
    return runtime.snapshot()


@router.post("/start")
async def start(runtime: Runtime) -> dict[str, Any]:
    runtime.start_intake()
    return runtime.snapshot()


@router.post("/stop")
async def stop(runtime: Runtime) -> dict[str, Any]:
    """Stop intake; answers once no decision is in progress, so the totals are final."""
    await runtime.stop_intake()
    return runtime.snapshot()
