"""The FastAPI application: routers per feature over a line handle built by the composition root.

Handlers translate HTTP to calls on the runtime and the domain, and back; no business rules
live here. Every route declares its audience (``api.auth``), checked when the app is built and
again at start-up; every error is problem+json (``api.problems``). While the line is still
starting, every line endpoint answers 503.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI

from api.auth import build_auth_state, secure_routes
from api.live import LiveHub
from api.problems import install_problem_handlers, problem_openapi
from api.routes import (
    alarms,
    audit,
    auth,
    coldrooms,
    epcis,
    exports,
    health,
    hmi,
    labels,
    line,
    live,
    lot_coldchain,
    lot_trace,
    lots,
    metrics,
    outlets,
    pallets,
    recipes,
    resolver,
    users,
)
from api.routes.deps import LineUnavailable

__all__ = ["LineUnavailable", "create_app"]

DESCRIPTION = """\
Live state and control of one fruit grading line, for the line's own HMI and for integrators.

Authenticate with `Authorization: Bearer <token>` (`gradeline token create`). Every error is
RFC 9457 `application/problem+json`; lists page with `limit` and `cursor`. The live feed is a
WebSocket at `/api/v1/live`. See docs/api.md.
"""


def create_app(
    line_factory: Callable[[], AbstractAsyncContextManager[Any]],
    *,
    live_interval_s: float = 0.5,
    live_recheck_s: float = 10.0,
    freeze_gc: bool = False,
) -> FastAPI:
    """``line_factory()`` enters into a running line handle (see ``api.compose``).

    ``freeze_gc``: once the line is up, move every object that exists to the garbage
    collector's permanent generation. Without it a full collection walks every object the
    start-up left behind (compiled kernels, schemas, the ORM) and holds the GIL, and with it the
    loop that serves the API and runs the line, for up to a few hundred milliseconds. For the
    process that serves one line (``gradeline run``); not for tests that build many apps.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        secure_routes(app)  # again: a router may have been added after create_app
        app.state.line = None
        app.state.auth = None
        app.state.live = None
        app.state.final_snapshot = None
        async with line_factory() as handle:
            app.state.auth = build_auth_state(handle.engine, handle.config)
            hub = LiveHub(handle.runtime.snapshot, interval_s=live_interval_s, recheck_s=live_recheck_s)
            hub.add_source("coldrooms", lambda: {"items": coldrooms.room_rows(handle)})
            hub.add_source("alarms", lambda: {"items": alarms.alarm_rows(handle)})
            if getattr(handle, "packer", None) is not None:
                hub.add_source("outlets", lambda: {"items": outlets.outlet_rows(handle)})
                hub.add_source("lot", lambda: lots.live_lot(handle))
            hub.start()
            app.state.live = hub
            app.state.line = handle
            if getattr(handle, "trace_lookup", None) is not None:  # else: whatever a test or demo set
                app.state.trace_lookup = handle.trace_lookup
            if getattr(handle, "epcis_events", None) is not None:
                app.state.epcis_events = handle.epcis_events
            if freeze_gc:
                gc.collect()
                gc.freeze()
            try:
                yield
            finally:
                app.state.line = None
                app.state.live = None
                await hub.close()
                app.state.auth = None
        # Taken after the line has shut down and every record is written.
        app.state.final_snapshot = handle.runtime.snapshot()

    app = FastAPI(
        title="gradeline",
        version="0.1.0",
        summary="Fruit grading line: live state, control, audit and metrics.",
        description=DESCRIPTION,
        lifespan=lifespan,
        # served by api.routes.hmi as declared public routes, with Swagger UI's files from the app itself
        docs_url=None, redoc_url=None, openapi_url=None,
    )
    install_problem_handlers(app)
    for router in (
        health, line, lots, outlets, recipes, coldrooms, alarms, lot_coldchain, auth, users, audit, live, metrics,
        labels, pallets, epcis, lot_trace, exports, hmi, resolver,
    ):
        app.include_router(router.router)
    app.openapi = problem_openapi(app)  # type: ignore[method-assign]
    secure_routes(app)
    return app
