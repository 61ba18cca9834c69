"""The operator HMI and the API's own reference, every file served by the app itself (no CDN).

``/`` is the HMI's page, ``/assets/...`` its scripts, styles and message catalogue (from
``api/static``) and Swagger UI's files (from the ``swagger-ui-bundle-v2`` package);
``/openapi.json`` and ``/docs`` describe the API. All public: they hold no line data.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from swagger_ui_bundle import swagger_ui_path

from api.auth import PublicCaller
from api.problems import NotFoundProblem

router = APIRouter(include_in_schema=False)
_STATIC = Path(__file__).resolve().parent.parent / "static"
_SWAGGER = Path(str(swagger_ui_path))
_SWAGGER_FILES = {"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"}
_TYPES = {".js": "text/javascript", ".json": "application/json", ".css": "text/css", ".svg": "image/svg+xml"}

# The HMI runs only its own scripts and may not be framed (a framed start/stop button is a
# click-jacking target on the plant network).
_HMI_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",
}


@router.get("/", response_class=HTMLResponse)
async def index(_: PublicCaller) -> HTMLResponse:
    return HTMLResponse((_STATIC / "index.html").read_text(encoding="utf-8"), headers=_HMI_HEADERS)


@router.get("/assets/{name:path}")
async def asset(name: str, _: PublicCaller) -> FileResponse:
    if name.startswith("swagger/") and name.removeprefix("swagger/") in _SWAGGER_FILES:
        path = _SWAGGER / name.removeprefix("swagger/")
    else:
        path = (_STATIC / name).resolve()
        if not path.is_relative_to(_STATIC) or not path.is_file() or path.name == "index.html":
            raise NotFoundProblem(f"no asset {name!r}")
    media_type = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


@router.get("/openapi.json")
async def openapi(request: Request, _: PublicCaller) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs", response_class=HTMLResponse)
async def docs(_: PublicCaller) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json", title="gradeline API",
        swagger_js_url="/assets/swagger/swagger-ui-bundle.js", swagger_css_url="/assets/swagger/swagger-ui.css",
        swagger_favicon_url="/assets/swagger/favicon-32x32.png",
    )
