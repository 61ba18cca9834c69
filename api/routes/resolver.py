"""The built-in GS1 Digital Link resolver: ``GET /01/{gtin}[/10/{lot}][/21/{serial}][?...]``.

Public (consumers scan it). Any syntactically valid Digital Link form of a known GTIN, lot or
carton answers with the consumer page (HTML, zh-CN), or the same view as JSON for
``Accept: application/json``, or an RFC 9264 linkset for ``linkType=all`` (or ``Accept:
application/linkset+json``). Anything malformed or unknown answers 404 with one page that
says nothing about why. The view comes through ``app.state.trace_lookup`` (a
``grading.trace.resolver.TraceLookup``, set by the composition root); without one, every code
is unknown. Not in the OpenAPI document (it is not part of ``/api/v1``); see docs/api.md.
"""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from api.auth import PublicCaller
from api.consumer_page import consumer_page, not_found_page, page_headers
from grading.trace.resolver import ConsumerView, TraceLookup, linkset, resolve

router = APIRouter(include_in_schema=False)


def _wants(request: Request, media_type: str) -> bool:
    accept = request.headers.get("accept", "")
    return any(part.split(";")[0].strip().lower() == media_type for part in accept.split(","))


def _not_found(request: Request) -> Response:
    if _wants(request, "application/json") and not _wants(request, "text/html"):
        return JSONResponse(
            {"type": "about:blank", "title": "Not Found", "status": 404, "detail": "no such code"},
            status_code=404, media_type="application/problem+json",
        )
    return HTMLResponse(not_found_page(), status_code=404, headers=page_headers())


def _request_uri(request: Request) -> str:
    # The raw path keeps the percent-encoding the code was written with. The domain does not
    # name the carton, so a fixed one stands in: a Host header the URI grammar dislikes (a
    # proxy's "line_1:8080") must not turn a valid code into a 404.
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string") or b""
    uri = f"https://resolver.invalid{raw_path.decode('latin-1')}"
    return uri + (f"?{query.decode('latin-1')}" if query else "")


def _find(request: Request, uri: str) -> tuple[ConsumerView, str] | None:
    lookup: TraceLookup | None = getattr(request.app.state, "trace_lookup", None)
    if lookup is None:
        return None
    found = resolve(lookup, uri)
    if found is None:
        return None
    view, link = found
    canonical = "".join(f"/{e.ai}/{quote(e.value, safe='-._~')}" for e in (link.primary_key, *link.qualifiers))
    return view, canonical


@router.get("/01/{rest:path}")
async def resolve_gtin(request: Request, rest: str, _: PublicCaller) -> Response:
    uri = _request_uri(request)
    found = await asyncio.to_thread(_find, request, uri)  # a store-backed lookup reads the database
    if found is None:
        return _not_found(request)
    view, canonical = found
    base = f"{request.url.scheme}://{request.headers.get('host') or 'localhost'}"
    page_url = base + canonical
    json_url = page_url + "?format=json"
    link_header = f'<{page_url}?linkType=all>; rel="linkset"; type="application/linkset+json"'
    if request.query_params.get("linkType") == "all" or _wants(request, "application/linkset+json"):
        return JSONResponse(linkset(page_url, page_url, json_url), media_type="application/linkset+json",
                            headers={"Link": link_header})
    if request.query_params.get("format") == "json" or (
        _wants(request, "application/json") and not _wants(request, "text/html")
    ):
        return JSONResponse(view.model_dump(mode="json"), headers={"Link": link_header, "Vary": "Accept"})
    return HTMLResponse(consumer_page(view), headers={**page_headers(), "Link": link_header, "Vary": "Accept"})
