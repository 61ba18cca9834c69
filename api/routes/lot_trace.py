"""A lot's trace view: ``GET /api/v1/lots/{id}/trace``, from the grower to its cartons and cold rooms.

A thin handler over ``grading.trace.lot_trace`` (the record and how it is built). Read like the
lot itself (integrator): it carries the grower's full name, as ``GET /api/v1/lots/{id}`` does,
with the name labels and the consumer page show beside it.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from api.auth import IntegratorCaller
from api.problems import NotFoundProblem, documented
from api.routes.deps import get_handle
from grading.lots.lots import LotNotFound
from grading.trace.codes import PrivacyLevel
from grading.trace.lot_trace import LotTrace, lot_trace

router = APIRouter(prefix="/api/v1/lots", tags=["lots"])
LotId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Lot id.")]


@router.get("/{lot_id}/trace", response_model=LotTrace, responses=documented(404))
async def trace(
    request: Request, lot_id: LotId, _: IntegratorCaller,
    cartons: Annotated[int, Query(ge=0, le=5000, description="At most this many cartons, newest first.")] = 1000,
) -> LotTrace:
    """The lot's trace: grower, lot, pack-out summary, its closed cartons with their codes, and its
    stays in cold rooms with their temperatures."""
    handle = get_handle(request)
    trace_config = handle.config.trace
    privacy = trace_config.grower_privacy if trace_config is not None else PrivacyLevel.masked
    service = getattr(handle, "coldchain_service", None)
    if service is not None:
        await service.flush()  # the last minute's readings, as the cold-chain history route does
    try:
        return await asyncio.to_thread(
            lot_trace, handle.engine, lot_id, privacy=privacy, class_order=list(handle.recipe.quality_class_ids()),
            carton_limit=cartons,
        )
    except LotNotFound as exc:
        raise NotFoundProblem(str(exc)) from exc
