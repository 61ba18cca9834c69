"""Exports for upload: ``GET /api/v1/exports/{lots,cartons,certificates}?format=csv|json``.

Thin handler over ``grading.trace.exports``, which owns the layout (docs/traceability.md,
"Exports") and reads the rows a chunk at a time; the response streams those chunks (the
blocking reads run in the thread pool, as Starlette iterates a plain iterator there).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import ConfigDict, RootModel

from api.auth import IntegratorCaller
from api.problems import InvalidParameter, documented
from api.routes.deps import get_handle
from grading.trace.exports import ExportError, export_chunks, parse_bound

router = APIRouter(prefix="/api/v1/exports", tags=["traceability"])

_MEDIA = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


class ExportOut(RootModel[list[dict[str, Any]]]):
    """``format=json``: one array of objects, keys as documented (docs/traceability.md, Exports)."""

    model_config = ConfigDict(json_schema_extra={"examples": [[{
        "kind": "incoming", "number": None, "lot_codes": ["YN-A"], "subject_kind": None, "subject_uid": None,
        "issuer": "张三", "contact": None, "product_name": "苹果", "quantity": "1250 kg", "origin": "石屏县宝秀镇",
        "issued_on": "2026-12-01", "issued_at": None, "form": "handwritten", "recorded_at": "2026-12-02T08:00:00+00:00",
        "recorded_by": "user:李娜", "note": None,
    }]]})


@router.get(
    "/{kind}",
    response_model=ExportOut,
    responses={**documented(422), 200: {"content": {"text/csv": {}}}},
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
