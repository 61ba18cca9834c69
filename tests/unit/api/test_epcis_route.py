"""``GET /api/v1/epcis/events``: the REST binding's filters and paging over the app, answering
EPCIS query documents that GS1's schema accepts."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from grading.access import Role
from grading.trace.epcis import InMemoryEventSource, carton_epc, validation_errors
from tests.unit.api.conftest import Api
from tests.unit.trace.test_epcis import GTIN, SCHEMA_PATH, T0, demo_events


def _events(body: dict[str, Any]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = body["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    return events


def test_filters_paging_and_schema(api: Api) -> None:
    stored = demo_events()
    api.app.state.epcis_events = InMemoryEventSource(stored)
    headers = api.bearer(Role.integrator)
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))

    everything = api.client.get("/api/v1/epcis/events", headers=headers)
    assert everything.status_code == 200, everything.text
    assert validation_errors(everything.json(), schema) == []
    assert len(_events(everything.json())) == len(stored) and "link" not in everything.headers

    sensors = api.client.get("/api/v1/epcis/events", headers=headers, params={"EQ_bizStep": "sensor_reporting"})
    assert [e["bizStep"] for e in _events(sensors.json())] == ["sensor_reporting"] * 3

    one = api.client.get("/api/v1/epcis/events", headers=headers, params={"MATCH_epc": carton_epc(GTIN, "1")})
    assert [e["type"] for e in _events(one.json())] == ["ObjectEvent", "AggregationEvent", "AggregationEvent"]

    window = api.client.get("/api/v1/epcis/events", headers=headers, params={
        "GE_eventTime": (T0 + timedelta(minutes=5)).isoformat(), "LT_eventTime": (T0 + timedelta(minutes=30)).isoformat()})
    assert [e["bizStep"] for e in _events(window.json())] == ["packing", "unpacking", "sensor_reporting"]

    seen: list[str] = []
    params: dict[str, str] = {"perPage": "3"}
    for _ in range(10):
        page = api.client.get("/api/v1/epcis/events", headers=headers, params=params)
        assert page.status_code == 200
        seen += [e["eventID"] for e in _events(page.json())]
        link = page.headers.get("link")
        if link is None:
            break
        assert link.endswith('>; rel="next"')
        query = parse_qs(urlsplit(link[1:link.index(">")]).query)
        params = {k: v[0] for k, v in query.items()}
    assert sorted(seen) == sorted(e["eventID"] for e in stored) and len(seen) == len(set(seen))


def test_bad_parameters_are_problems(api: Api) -> None:
    headers = api.bearer(Role.integrator)
    bad = api.client.get("/api/v1/epcis/events", headers=headers, params={"nextPageToken": "nope!"})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["errors"][0]["field"] == "query.nextPageToken"
    naive = api.client.get("/api/v1/epcis/events", headers=headers, params={"GE_eventTime": "2025-09-15T10:00:00"})
    assert naive.status_code == 422 and naive.json()["errors"][0]["field"] == "query.GE_eventTime"
    assert api.client.get("/api/v1/epcis/events", headers=headers, params={"perPage": "0"}).status_code == 422
    assert api.client.get("/api/v1/epcis/events").status_code == 401
    empty = api.client.get("/api/v1/epcis/events", headers=headers)  # no event source: an empty document
    assert empty.status_code == 200 and _events(empty.json()) == []
