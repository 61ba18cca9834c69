"""``GET /metrics``: Prometheus exposition, answered directly (no redirect)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client.exposition import choose_encoder

router = APIRouter(tags=["metrics"])


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    handle = getattr(request.app.state, "line", None)
    if handle is None:
        return Response("# line starting\n", status_code=503, media_type="text/plain")
    # Negotiates text 0.0.4 / 1.0.0 or OpenMetrics from the scraper's Accept header.
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encoder(handle.registry), headers={"Content-Type": content_type})
