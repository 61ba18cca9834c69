"""``GET /metrics``: Prometheus exposition, answered directly (no redirect).

Readable without a token from ``api.metrics_public_networks`` (loopback by default, where a
local Prometheus scrapes); from anywhere else it needs an integrator token or better.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client.exposition import choose_encoder

from api.auth import MetricsCaller
from api.routes.deps import get_handle

router = APIRouter(tags=["metrics"])


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, _: MetricsCaller) -> Response:
    handle = get_handle(request)
    # Negotiates text 0.0.4 / 1.0.0 or OpenMetrics from the scraper's Accept header.
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encoder(handle.registry), headers={"Content-Type": content_type})
