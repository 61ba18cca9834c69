"""EPCIS 2.0 JSON-LD: the events of a packing line, their canonical hash IDs, documents, query.

Owns the five event builders the line needs (carton commissioning, the grower lot's
transformation into cartons, pallet aggregation on and off, cold-room sensor reports, pallet
shipping), the canonical event hash (GS1 CBV 2.0 / EPCIS 2.0 event hash: a pre-hash string of
the event's fields in the standard's order, values in canonical form, SHA-256, written
``ni:///sha-256;<hex>?ver=CBV2.0``), the EPCIS document around a list of events, validation
against GS1's JSON schema (the caller passes the schema; see docs/traceability.md), and the
REST binding's query filters as a pure function over stored events.

Identifiers are canonical GS1 Digital Link URIs on ``id.gs1.org`` (``/01/{gtin}/21/{serial}``
for a carton, ``/00/{sscc}`` for a pallet, ``/414/{gln}`` for a place, ``/01/{gtin}/10/{lot}``
for a lot as a class), so the hash needs no URN conversion. Vocabulary is written as bare CBV
words (the schema refuses URNs) and expanded to ``https://ref.gs1.org/cbv/...`` for the hash.
Events carry no ``ilmd`` or user extensions: product, class and size travel in the GTIN.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
GS1_ID = "https://id.gs1.org"
CBV = "https://ref.gs1.org/cbv/"
GS1_VOC = "https://gs1.org/voc/"

Event = dict[str, Any]


class EpcisError(ValueError):
    """An event that cannot be built, or a query that cannot be run; says which field."""


# --- inputs the line feeds -------------------------------------------------------------------


@dataclass(frozen=True)
class CartonRef:
    gtin: str
    serial: str

    @property
    def epc(self) -> str:
        return carton_epc(self.gtin, self.serial)


@dataclass(frozen=True)
class Place:
    """Where an event happened: the read point and business location (GLNs, with an optional
    GLN extension (254) for a room or dock)."""

    gln: str
    extension: str | None = None

    @property
    def uri(self) -> str:
        return f"{GS1_ID}/414/{self.gln}" + (f"/254/{_segment(self.extension)}" if self.extension else "")


@dataclass(frozen=True)
class LotInput:
    """A grower lot going into grading: its class URI and how much of it, in kilograms."""

    epc_class: str
    weight_kg: float


@dataclass(frozen=True)
class SensorSummary:
    """One sensor's readings over an interval (e.g. 15 min in a cold room)."""

    device_id: str
    start: datetime
    end: datetime
    min_value: float
    max_value: float
    mean_value: float
    measurement: str = "Temperature"
    uom: str = "CEL"
    alarm: bool = False


def _segment(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="-._~")


def carton_epc(gtin: str, serial: str) -> str:
    return f"{GS1_ID}/01/{gtin}/21/{_segment(serial)}"


def pallet_epc(sscc: str) -> str:
    return f"{GS1_ID}/00/{sscc}"


def lot_class(gtin: str, lot: str) -> str:
    return f"{GS1_ID}/01/{gtin}/10/{_segment(lot)}"


# --- the event hash --------------------------------------------------------------------------

# The standard's field order for the pre-hash string (EPCIS 2.0 section on event hashes);
# a tuple after a name is the order of its children. Only the fields gradeline emits need to be
# here, but the whole common list is kept so an added field lands in the right place.
_QUANTITY = ("epcClass", "quantity", "uom")
_METADATA = ("time", "startTime", "endTime", "deviceID", "deviceMetadata", "rawData", "dataProcessingMethod", "bizRules")
_REPORT = ("type", "exception", "deviceID", "deviceMetadata", "rawData", "dataProcessingMethod", "time",
           "microorganism", "chemicalSubstance", "value", "component", "stringValue", "booleanValue",
           "hexBinaryValue", "uriValue", "minValue", "maxValue", "meanValue", "sDev", "percRank", "percValue",
           "uom", "coordinateReferenceSystem")
_ORDER: tuple[tuple[str, str], ...] = (
    ("eventTime", "time"), ("eventTimeZoneOffset", "text"), ("certificationInfo", "text"), ("parentID", "id"),
    ("epcList", "epcs"), ("inputEPCList", "epcs"), ("childEPCs", "epcs"), ("quantityList", "quantities"),
    ("childQuantityList", "quantities"), ("inputQuantityList", "quantities"), ("outputEPCList", "epcs"),
    ("outputQuantityList", "quantities"), ("action", "text"), ("transformationID", "id"), ("bizStep", "bizstep"),
    ("disposition", "disp"), ("readPoint", "place"), ("bizLocation", "place"), ("sensorElementList", "sensors"),
)
_UNSUPPORTED = {"persistentDisposition", "bizTransactionList", "sourceList", "destinationList", "ilmd"}


def _utc_ms(text: str) -> str:
    at = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    at = at.replace(microsecond=round(at.microsecond, -3) if at.microsecond < 999500 else 999000)
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _number(value: float | int) -> str:
    number = float(value)
    return str(int(number)) if number == int(number) else repr(number)


def _vocab(kind: str, word: str) -> str:
    return word if word.startswith(("http://", "https://")) else f"{CBV}{kind}-{word}"


def _sensor_pre_hash(element: Mapping[str, Any]) -> str:
    parts = []
    metadata = element.get("sensorMetadata")
    if metadata:
        inner = "".join(
            f"{k}={_utc_ms(metadata[k]) if 'time' in k.lower() else metadata[k]}" for k in _METADATA if k in metadata
        )
        parts.append("sensorMetadata" + inner)
    reports = []
    for report in element.get("sensorReport", []):
        fields = []
        for k in _REPORT:
            if k not in report:
                continue
            value = report[k]
            if k == "type":
                value = value if value.startswith("http") else GS1_VOC + value.removeprefix("gs1:")
            elif k == "exception":
                value = GS1_VOC + value
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                value = _number(value)
            elif "time" in k.lower():
                value = _utc_ms(value)
            fields.append(f"{k}={value}")
        reports.append("sensorReport" + "".join(fields))
    return "sensorElement" + "".join(parts) + "".join(sorted(reports))


def pre_hash(event: Mapping[str, Any]) -> str:
    """The canonical pre-hash string of an event built here."""
    unsupported = _UNSUPPORTED & set(event)
    if unsupported:
        raise EpcisError(f"event hash: fields {sorted(unsupported)} are not supported by this implementation")
    out = [f"eventType={event['type']}"]
    for name, kind in _ORDER:
        if name not in event:
            continue
        value = event[name]
        if kind == "time":
            out.append(f"{name}={_utc_ms(value)}")
        elif kind in ("text", "id"):
            out.append(f"{name}={value}")
        elif kind == "bizstep":
            out.append(f"{name}={_vocab('BizStep', value)}")
        elif kind == "disp":
            out.append(f"{name}={_vocab('Disp', value)}")
        elif kind == "place":
            out.append(f"{name}id={value['id']}")
        elif kind == "epcs":
            if value:
                out.append(name + "".join(sorted(f"epc={epc}" for epc in value)))
        elif kind == "quantities":
            if value:
                items = sorted(
                    "quantityElement" + "".join(
                        f"{k}={_number(q[k]) if k == 'quantity' else q[k]}" for k in _QUANTITY if k in q
                    )
                    for q in value
                )
                out.append(name + "".join(items))
        elif kind == "sensors":
            out.append(name + "".join(sorted(_sensor_pre_hash(e) for e in value)))
    return "".join(out)


def event_hash(event: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(pre_hash(event).encode("utf-8")).hexdigest()
    return f"ni:///sha-256;{digest}?ver=CBV2.0"


# --- builders --------------------------------------------------------------------------------


def _common(kind: str, at: datetime) -> Event:
    offset = at.utcoffset()
    if offset is None:
        raise EpcisError("eventTime: needs a time zone (the line's clock gives aware datetimes)")
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return {
        "type": kind,
        "eventTime": at.isoformat(timespec="milliseconds"),
        "eventTimeZoneOffset": f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}",
    }


def _finish(event: Event, read_point: Place | None, biz_location: Place | None) -> Event:
    if read_point is not None:
        event["readPoint"] = {"id": read_point.uri}
    if biz_location is not None:
        event["bizLocation"] = {"id": biz_location.uri}
    return {"eventID": event_hash(event), **event}


def commissioning_event(cartons: Sequence[CartonRef], at: datetime, *, read_point: Place,
                        biz_location: Place | None = None) -> Event:
    """ObjectEvent ADD: these cartons now exist (labelled at the packing station)."""
    if not cartons:
        raise EpcisError("epcList: no cartons")
    event = _common("ObjectEvent", at) | {
        "epcList": [c.epc for c in cartons], "action": "ADD", "bizStep": "commissioning", "disposition": "active",
    }
    return _finish(event, read_point, biz_location)


def transformation_event(inputs: Sequence[LotInput], cartons: Sequence[CartonRef], at: datetime, *,
                         read_point: Place, biz_location: Place | None = None) -> Event:
    """TransformationEvent: grower lots (kg) graded into serialised cartons."""
    if not inputs or not cartons:
        raise EpcisError("inputQuantityList/outputEPCList: a transformation needs inputs and outputs")
    event = _common("TransformationEvent", at) | {
        "inputQuantityList": [{"epcClass": i.epc_class, "quantity": i.weight_kg, "uom": "KGM"} for i in inputs],
        "outputEPCList": [c.epc for c in cartons],
        "bizStep": "commissioning", "disposition": "active",
    }
    return _finish(event, read_point, biz_location)


def aggregation_event(sscc: str, cartons: Sequence[CartonRef], at: datetime, *, add: bool, read_point: Place,
                      biz_location: Place | None = None) -> Event:
    """AggregationEvent: cartons onto the pallet (ADD, packing) or off it (DELETE, unpacking)."""
    if not cartons:
        raise EpcisError("childEPCs: no cartons")
    event = _common("AggregationEvent", at) | {
        "parentID": pallet_epc(sscc), "childEPCs": [c.epc for c in cartons],
        "action": "ADD" if add else "DELETE",
        "bizStep": "packing" if add else "unpacking",
        "disposition": "container_closed" if add else "container_open",
    }
    return _finish(event, read_point, biz_location)


def sensor_event(readings: Sequence[SensorSummary], at: datetime, *, room: Place, lots: Sequence[str] = ()) -> Event:
    """ObjectEvent OBSERVE with a sensorElementList: a cold room's readings over an interval, for
    the lots (class URIs) stored there."""
    if not readings:
        raise EpcisError("sensorElementList: no readings")
    elements = []
    for r in readings:
        report: dict[str, Any] = {
            "type": r.measurement, "deviceID": r.device_id, "minValue": r.min_value, "maxValue": r.max_value,
            "meanValue": r.mean_value, "uom": r.uom,
        }
        if r.alarm:
            report["exception"] = "ALARM_CONDITION"
        elements.append({
            "sensorMetadata": {"startTime": r.start.isoformat(timespec="milliseconds"),
                               "endTime": r.end.isoformat(timespec="milliseconds")},
            "sensorReport": [report],
        })
    event = _common("ObjectEvent", at) | {"epcList": [], "action": "OBSERVE", "bizStep": "sensor_reporting"}
    if lots:
        event["quantityList"] = [{"epcClass": lot} for lot in lots]
    event["sensorElementList"] = elements
    return _finish(event, room, room)


def shipping_event(ssccs: Sequence[str], at: datetime, *, read_point: Place, biz_location: Place | None = None) -> Event:
    """ObjectEvent OBSERVE: pallets leave the packing center (shipping, in transit)."""
    if not ssccs:
        raise EpcisError("epcList: no pallets")
    event = _common("ObjectEvent", at) | {
        "epcList": [pallet_epc(s) for s in ssccs], "action": "OBSERVE", "bizStep": "shipping",
        "disposition": "in_transit",
    }
    return _finish(event, read_point, biz_location)


def document(events: Sequence[Event], created: datetime) -> dict[str, Any]:
    """An EPCISDocument holding ``events``."""
    return {
        "@context": [EPCIS_CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": created.isoformat(timespec="milliseconds"),
        "epcisBody": {"eventList": list(events)},
    }


def query_document(events: Sequence[Event], created: datetime, query_name: str = "SimpleEventQuery") -> dict[str, Any]:
    """An EPCISQueryDocument, what ``GET /events`` answers."""
    return {
        "@context": [EPCIS_CONTEXT],
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": created.isoformat(timespec="milliseconds"),
        "epcisBody": {"queryResults": {"queryName": query_name, "resultsBody": {"eventList": list(events)}}},
    }


def validation_errors(doc: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """Every way ``doc`` breaks the EPCIS JSON schema (draft-07), as "path: message"."""
    from jsonschema import Draft7Validator, FormatChecker

    validator = Draft7Validator(schema, format_checker=FormatChecker())
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(doc)]


# --- query -----------------------------------------------------------------------------------


class EpcisEventSource(Protocol):
    """Where the EPCIS query route reads captured events (the store, once cartons exist)."""

    def events(self) -> Sequence[Event]:
        ...


class InMemoryEventSource:
    """Events kept in a list, for tests and demos."""

    def __init__(self, events: Sequence[Event] = ()) -> None:
        self._events: list[Event] = list(events)

    def add(self, event: Event) -> None:
        self._events.append(event)

    def events(self) -> Sequence[Event]:
        return list(self._events)


@dataclass(frozen=True)
class EventQuery:
    """The REST binding's ``/events`` parameters gradeline supports."""

    eq_biz_step: tuple[str, ...] = ()
    match_epc: tuple[str, ...] = ()
    ge_event_time: datetime | None = None
    lt_event_time: datetime | None = None
    per_page: int = 30
    next_page_token: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.per_page <= 1000:
            raise EpcisError("perPage: must be 1 to 1000")
        for name, rest_name in (("ge_event_time", "GE_eventTime"), ("lt_event_time", "LT_eventTime")):
            value = getattr(self, name)
            if value is not None and value.utcoffset() is None:
                raise EpcisError(f"{rest_name}: needs a time zone")


@dataclass(frozen=True)
class EventPage:
    events: list[Event]
    next_page_token: str | None


def _event_at(event: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(str(event["eventTime"]).replace("Z", "+00:00"))


def _epc_matches(pattern: str, epc: str) -> bool:
    # EPCIS patterns: a trailing "*" matches any rest (e.g. every serial of one GTIN)
    return epc.startswith(pattern[:-1]) if pattern.endswith("*") else epc == pattern


def _bare(step: str) -> str:
    return step.removeprefix(CBV + "BizStep-").removeprefix("urn:epcglobal:cbv:bizstep:")


def _token(at: datetime, event_id: str) -> str:
    raw = json.dumps({"t": at.astimezone(UTC).isoformat(), "id": event_id}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _untoken(token: str) -> tuple[datetime, str]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return datetime.fromisoformat(raw["t"]), str(raw["id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise EpcisError("nextPageToken: not a token this server issued") from exc


def query_events(events: Sequence[Event], query: EventQuery) -> EventPage:
    """The events matching ``query`` in event-time order (ties by event ID), one page of them."""
    steps = {_bare(s) for s in query.eq_biz_step}
    chosen = []
    for event in events:
        at = _event_at(event)
        if steps and _bare(str(event.get("bizStep", ""))) not in steps:
            continue
        if query.match_epc:
            epcs = [*event.get("epcList", []), *event.get("childEPCs", [])]
            if not any(_epc_matches(p, e) for p in query.match_epc for e in epcs):
                continue
        if query.ge_event_time is not None and at < query.ge_event_time:
            continue
        if query.lt_event_time is not None and at >= query.lt_event_time:
            continue
        chosen.append((at, str(event.get("eventID", "")), event))
    chosen.sort(key=lambda item: (item[0], item[1]))
    if query.next_page_token is not None:
        after = _untoken(query.next_page_token)
        chosen = [item for item in chosen if (item[0], item[1]) > after]
    page = chosen[: query.per_page]
    more = len(chosen) > query.per_page
    return EventPage(
        events=[item[2] for item in page],
        next_page_token=_token(page[-1][0], page[-1][1]) if more and page else None,
    )
