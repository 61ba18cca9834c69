"""Dependencies shared by the routers."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from grading.runtime import LineRuntime


def get_handle(request: Request) -> Any:
    """The running line (``api.compose.LineHandle``); 503 while starting or stopping."""
    from api.app import LineUnavailable

    handle: Any = getattr(request.app.state, "line", None)
    if handle is None:
        raise LineUnavailable("the line is starting or shutting down")
    return handle


def get_runtime(request: Request) -> LineRuntime:
    runtime: LineRuntime = get_handle(request).runtime
    return runtime
