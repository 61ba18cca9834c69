"""EPCIS 2.0 query interface (subset of the REST binding): ``GET /api/v1/epcis/events``.

Answers an EPCISQueryDocument of the captured events that match ``EQ_bizStep``, ``MATCH_epc``,
``GE_eventTime`` and ``LT_eventTime``, ``perPage`` at a time; when more remain, the answer's
``Link: <...&nextPageToken=...>; rel="next"`` header (the binding's paging) gives the next
page. Events come from ``app.state.epcis_events`` (a ``grading.trace.epcis.EpcisEventSource``,
set by the composition root); without one the document is empty. Filtering is
``grading.trace.epcis.query_events``; this handler only translates.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth import IntegratorCaller
from api.problems import ProblemError
from grading.trace.epcis import (
    EPCIS_CONTEXT,
    EpcisError,
    EpcisEventSource,
    EventQuery,
    query_document,
    query_events,
)

router = APIRouter(prefix="/api/v1/epcis", tags=["traceability"])


class InvalidQueryParameter(ProblemError):
    status = 422
    type = "urn:gradeline:problem:validation"


class EpcisQueryDocument(BaseModel):
    """An EPCIS 2.0 query document (JSON-LD); events as GS1's schema defines them."""

    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={"examples": [{
            "@context": [EPCIS_CONTEXT], "type": "EPCISQueryDocument", "schemaVersion": "2.0",
            "creationDate": "2025-09-15T12:00:00.000+00:00",
            "epcisBody": {"queryResults": {"queryName": "SimpleEventQuery", "resultsBody": {"eventList": [{
                "eventID": "ni:///sha-256;4bc449bab6f4b359e30c9c9b2cc6474ba6facc4a6fffd4fa8cceb8d4fce108a0?ver=CBV2.0",
                "type": "ObjectEvent", "eventTime": "2025-09-15T10:00:00.000+08:00", "eventTimeZoneOffset": "+08:00",
                "epcList": ["https://id.gs1.org/01/16901234567899/21/123"], "action": "ADD",
                "bizStep": "commissioning", "disposition": "active",
                "readPoint": {"id": "https://id.gs1.org/414/6901234000016"},
            }]}}},
        }]},
    )

    context: list[Any] = Field(alias="@context")
    type: str = Field(description="EPCISQueryDocument.")
    schemaVersion: str  # noqa: N815 (the JSON-LD field name)
    creationDate: str  # noqa: N815
    epcisBody: dict[str, Any] = Field(description="queryResults.resultsBody.eventList holds the events.")  # noqa: N815


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")


def _time(name: str, value: str | None) -> datetime | None:
    # strict RFC 3339 with an offset: pydantic's datetime would also take "0.5" (a Unix time)
    if value is None:
        return None
    if not _RFC3339.match(value):
        raise EpcisError(f"{name}: not an RFC 3339 date-time with an offset")
    try:
        return datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError as exc:
        raise EpcisError(f"{name}: {exc}") from exc


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(v for v in (value or "").split(",") if v)


@router.get("/events", response_model=EpcisQueryDocument, response_model_by_alias=True)
async def events(
    request: Request,
    response: Response,
    _: IntegratorCaller,
    eq_biz_step: Annotated[str | None, Query(alias="EQ_bizStep", description="Business steps, comma-separated (bare CBV words or URIs).")] = None,
    match_epc: Annotated[str | None, Query(alias="MATCH_epc", description="EPCs in epcList or childEPCs, comma-separated; a trailing * matches a prefix.")] = None,
    ge_event_time: Annotated[str | None, Query(alias="GE_eventTime", description="Events at or after this RFC 3339 time (with its offset).", json_schema_extra={"format": "date-time"})] = None,
    lt_event_time: Annotated[str | None, Query(alias="LT_eventTime", description="Events before this RFC 3339 time (with its offset).", json_schema_extra={"format": "date-time"})] = None,
    per_page: Annotated[int, Query(alias="perPage", ge=1, le=1000, description="Events per page.")] = 30,
    next_page_token: Annotated[str | None, Query(alias="nextPageToken", description="From the previous page's Link header.")] = None,
) -> dict[str, Any]:
    """Captured EPCIS events matching the filters, in event-time order, one page."""
    source: EpcisEventSource | None = getattr(request.app.state, "epcis_events", None)
    stored = await asyncio.to_thread(source.events) if source is not None else []  # a store source reads SQL
    try:
        query = EventQuery(
            eq_biz_step=_list(eq_biz_step), match_epc=_list(match_epc),
            ge_event_time=_time("GE_eventTime", ge_event_time), lt_event_time=_time("LT_eventTime", lt_event_time),
            per_page=per_page, next_page_token=next_page_token,
        )
        page = query_events(stored, query)
    except EpcisError as exc:
        field = str(exc).split(":", 1)[0]
        raise InvalidQueryParameter(str(exc), errors=[{"field": f"query.{field}", "message": str(exc)}]) from exc
    if page.next_page_token is not None:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "nextPageToken"]
        params.append(("nextPageToken", page.next_page_token))
        response.headers["Link"] = f'<{request.url.path}?{urlencode(params)}>; rel="next"'
    return query_document(page.events, datetime.now(UTC))
