"""Dependencies shared by the routers."""

from __future__ import annotations

from typing import Any

from starlette.requests import HTTPConnection

from api.problems import Unavailable
from grading.runtime import LineRuntime


class LineUnavailable(Unavailable):
    """The line is not (yet) running: starting up, or shutting down."""


def get_handle(conn: HTTPConnection) -> Any:
    """The running line (``api.compose.LineHandle``); 503 while starting or stopping."""
    handle: Any = getattr(conn.app.state, "line", None)
    if handle is None:
        raise LineUnavailable("the line is starting or shutting down")
    return handle


async def get_runtime(conn: HTTPConnection) -> LineRuntime:
    """A dependency; async, so FastAPI calls it on the loop rather than through a worker thread."""
    runtime: LineRuntime = get_handle(conn).runtime
    return runtime
