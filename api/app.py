"""The FastAPI application: routers per feature over a line handle built by the composition root.

Handlers translate HTTP to calls on the runtime and back; no business rules live here. While
the line is still starting, every line endpoint answers 503.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api.routes import coldrooms, health, hmi, line, metrics


class LineUnavailable(Exception):
    """The line is not (yet) running: starting up, or shutting down."""


def create_app(line_factory: Callable[[], AbstractAsyncContextManager[Any]]) -> FastAPI:
    """``line_factory()`` enters into a running line handle (see ``api.compose``)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.line = None
        app.state.final_snapshot = None
        async with line_factory() as handle:
            app.state.line = handle
            yield
            app.state.line = None
        # Taken after the line has shut down and every record is written.
        app.state.final_snapshot = handle.runtime.snapshot()

    app = FastAPI(
        title="gradeline",
        version="0.1.0",
        summary="Fruit grading line: live state, control and metrics.",
        lifespan=lifespan,
    )

    @app.exception_handler(LineUnavailable)
    async def _unavailable(_request: Request, exc: LineUnavailable) -> JSONResponse:
        return JSONResponse(
            status_code=503,
            media_type="application/problem+json",
            content={"type": "about:blank", "title": "Line unavailable", "status": 503, "detail": str(exc)},
        )

    app.include_router(health.router)
    app.include_router(line.router)
    app.include_router(coldrooms.router)
    app.include_router(metrics.router)
    app.include_router(hmi.router)
    return app
