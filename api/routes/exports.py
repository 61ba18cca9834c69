"""Exports for upload: ``GET /api/v1/exports/{lots,cartons,certificates}?format=csv|json``.

Thin handler over ``grading.trace.exports``, which owns the layout (docs/traceability.md,
"Exports") and reads the rows a chunk at a time; the response streams those chunks (the
blocking reads run in the thread pool, as Starlette iterates a plain iterator there).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse

from api.auth import IntegratorCaller
from api.problems import InvalidParameter, documented
from api.routes.deps import get_handle
from grading.trace.exports import ExportError, export_chunks, parse_bound

router = APIRouter(prefix="/api/v1/exports", tags=["traceability"])

_MEDIA = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


@router.get(
    "/{kind}",
    responses={**documented(422), 200: {"content": {"text/csv": {}, "application/json": {}}}},
    response_class=StreamingResponse,
)
async def export(
    request: Request,
    _: IntegratorCaller,
    kind: Annotated[Literal["lots", "cartons", "certificates"], Path(description="What to export.")],
    format: Annotated[Literal["csv", "json"], Query(description="csv (UTF-8, no BOM) or json (one array).")] = "csv",
    since: Annotated[str | None, Query(max_length=40, description="From (inclusive): YYYY-MM-DD (00:00 UTC) or ISO 8601 with offset.")] = None,
    until: Annotated[str | None, Query(max_length=40, description="Up to (exclusive), like since.")] = None,
) -> StreamingResponse:
    """Lots (by start), closed cartons (by close) or certificates, incoming and the packing
    center's (by receipt or issue), in the documented layout, streamed."""
    handle = get_handle(request)
    try:
        start = parse_bound(since, "since")
        end = parse_bound(until, "until")
    except ExportError as exc:
        raise InvalidParameter(f"query.{str(exc).split(':')[0]}", str(exc).split(": ", 1)[1]) from exc
    chunks = (c.encode("utf-8") for c in export_chunks(handle.engine, kind, format, since=start, until=end))
    return StreamingResponse(
        chunks, media_type=_MEDIA[format],
        headers={"Content-Disposition": f'attachment; filename="{kind}.{format}"'},
    )
