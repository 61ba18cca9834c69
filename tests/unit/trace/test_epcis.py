"""EPCIS 2.0 events: every kind validates against GS1's JSON schema with 0 errors, event IDs
equal the canonical hashes of GS1's reference hash generator (epcis-event-hash-generator, an
independent implementation), and the REST query filters select what they should."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from epcis_event_hash_generator import hash_generator, json_to_py

from grading.trace.epcis import (
    CartonRef,
    EpcisError,
    EventQuery,
    LotInput,
    Place,
    SensorSummary,
    aggregation_event,
    carton_epc,
    commissioning_event,
    document,
    event_hash,
    lot_class,
    pallet_epc,
    query_document,
    query_events,
    sensor_event,
    shipping_event,
    transformation_event,
    validation_errors,
)

REPO = Path(__file__).resolve().parents[3]
# CI has shared/ beside the clone; a worktree under wt/ has it one level further up
_SCHEMA_CANDIDATES = [p / "shared" / "standards" / "epcis" / "EPCIS-JSON-Schema.json" for p in (REPO.parent, REPO.parent.parent)]
SCHEMA_PATH = next((p for p in _SCHEMA_CANDIDATES if p.is_file()), _SCHEMA_CANDIDATES[0])

CST = timezone(timedelta(hours=8))
T0 = datetime(2025, 9, 15, 9, 0, tzinfo=CST)
GTIN = "16901234567899"
CENTER = Place("6901234000016")
COLD_ROOM = Place("6901234000016", "COLD1")
CARTONS = [CartonRef(GTIN, str(n)) for n in range(1, 7)]
SSCC = "069012340000000016"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    assert SCHEMA_PATH.is_file(), f"EPCIS schema missing at {SCHEMA_PATH} (shared/standards)"
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return loaded


def demo_events() -> list[dict[str, Any]]:
    lot = lot_class("06901234000013", "YN2509A")
    readings = [
        SensorSummary("cold1-t1", T0 + timedelta(minutes=15 * i), T0 + timedelta(minutes=15 * (i + 1)),
                      3.1 + i / 10, 4.0 + i / 10, 3.55 + i / 10, alarm=i == 2)
        for i in range(3)
    ]
    return [
        transformation_event([LotInput(lot, 412.5), LotInput(lot_class("06901234000013", "YN2509B"), 88.0)],
                             CARTONS, T0, read_point=CENTER, biz_location=CENTER),
        commissioning_event(CARTONS, T0 + timedelta(seconds=1), read_point=CENTER),
        aggregation_event(SSCC, CARTONS, T0 + timedelta(minutes=5), add=True, read_point=CENTER),
        aggregation_event(SSCC, CARTONS[:1], T0 + timedelta(minutes=6), add=False, read_point=CENTER),
        *[sensor_event([r], r.end, room=COLD_ROOM, lots=[lot]) for r in readings],
        shipping_event([SSCC], T0 + timedelta(hours=2), read_point=CENTER, biz_location=CENTER),
    ]


def test_demo_documents_validate_with_zero_errors(schema: dict[str, Any]) -> None:
    events = demo_events()
    assert {e["type"] for e in events} == {"ObjectEvent", "TransformationEvent", "AggregationEvent"}
    assert any("sensorElementList" in e for e in events)
    for doc in (document(events, T0 + timedelta(hours=3)), query_document(events, T0 + timedelta(hours=3))):
        assert validation_errors(doc, schema) == []


@pytest.mark.parametrize("breakage", ["no_offset", "urn_bizstep", "bad_uom"])
def test_the_schema_check_catches_broken_events(schema: dict[str, Any], breakage: str) -> None:
    event = commissioning_event(CARTONS, T0, read_point=CENTER)
    if breakage == "no_offset":
        del event["eventTimeZoneOffset"]
    elif breakage == "urn_bizstep":
        event["bizStep"] = "urn:epcglobal:cbv:bizstep:packing"
    else:
        event = transformation_event([LotInput("https://id.gs1.org/01/06901234000013/10/A", 1.0)], CARTONS, T0,
                                     read_point=CENTER)
        event["inputQuantityList"][0]["uom"] = "kilogram"
    assert validation_errors(document([event], T0), schema)


def test_event_ids_are_the_reference_canonical_hashes() -> None:
    events = demo_events()
    without_ids = [{k: v for k, v in e.items() if k != "eventID"} for e in events]
    parsed = json_to_py.event_list_from_epcis_document_str(json.dumps(document(without_ids, T0)))
    reference = hash_generator.epcis_hashes_from_events(parsed)
    assert [e["eventID"] for e in events] == reference
    assert len(set(reference)) == len(reference)
    assert all(r.startswith("ni:///sha-256;") and r.endswith("?ver=CBV2.0") for r in reference)


def test_hash_ignores_list_order_and_the_time_zone_the_time_is_written_in() -> None:
    a = commissioning_event(CARTONS, T0, read_point=CENTER)
    b = commissioning_event(list(reversed(CARTONS)), T0, read_point=CENTER)
    assert a["eventID"] == b["eventID"]
    c = dict(a, eventTime=T0.astimezone(UTC).isoformat())
    assert event_hash({k: v for k, v in c.items() if k != "eventID"}) == a["eventID"]
    assert commissioning_event(CARTONS[:5], T0, read_point=CENTER)["eventID"] != a["eventID"]


def test_builders_refuse_empty_and_naive_inputs() -> None:
    with pytest.raises(EpcisError, match="epcList"):
        commissioning_event([], T0, read_point=CENTER)
    with pytest.raises(EpcisError, match="time zone"):
        commissioning_event(CARTONS, datetime(2025, 9, 15, 9, 0), read_point=CENTER)


def _ids(events: list[dict[str, Any]]) -> list[str]:
    return [e["eventID"] for e in events]


def test_query_filters() -> None:
    events = demo_events()
    by_step = query_events(events, EventQuery(eq_biz_step=("sensor_reporting",), per_page=100)).events
    assert len(by_step) == 3 and all(e["bizStep"] == "sensor_reporting" for e in by_step)
    both = query_events(events, EventQuery(eq_biz_step=("packing", "https://ref.gs1.org/cbv/BizStep-shipping"))).events
    assert [e["bizStep"] for e in both] == ["packing", "shipping"]
    one_carton = query_events(events, EventQuery(match_epc=(carton_epc(GTIN, "1"),))).events
    assert [e["type"] for e in one_carton] == ["ObjectEvent", "AggregationEvent", "AggregationEvent"]  # epcList, childEPCs
    six = query_events(events, EventQuery(match_epc=(carton_epc(GTIN, "6"),))).events
    assert len(six) == 2  # not taken off the pallet
    wildcard = query_events(events, EventQuery(match_epc=(f"https://id.gs1.org/01/{GTIN}/21/*",))).events
    assert len(wildcard) == 3
    pallet = query_events(events, EventQuery(match_epc=(pallet_epc(SSCC),))).events
    assert [e["bizStep"] for e in pallet] == ["shipping"]  # parentID is MATCH_parentID's, not MATCH_epc's
    window = query_events(events, EventQuery(ge_event_time=T0 + timedelta(minutes=5), lt_event_time=T0 + timedelta(minutes=30))).events
    assert [e["bizStep"] for e in window] == ["packing", "unpacking", "sensor_reporting"]
    exactly = query_events(events, EventQuery(ge_event_time=T0, lt_event_time=T0)).events
    assert exactly == []  # GE inclusive, LT exclusive


def test_paging_visits_every_event_once_in_time_order() -> None:
    events = demo_events()
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = query_events(list(reversed(events)), EventQuery(per_page=3, next_page_token=token))
        seen.extend(_ids(page.events))
        pages += 1
        token = page.next_page_token
        if token is None:
            break
    assert pages == 3 and sorted(seen) == sorted(_ids(events)) and len(seen) == len(set(seen))
    times = [next(e["eventTime"] for e in events if e["eventID"] == i) for i in seen]
    assert [datetime.fromisoformat(t) for t in times] == sorted(datetime.fromisoformat(t) for t in times)
    with pytest.raises(EpcisError, match="nextPageToken"):
        query_events(events, EventQuery(next_page_token="garbage!"))
    with pytest.raises(EpcisError, match="perPage"):
        EventQuery(per_page=0)
