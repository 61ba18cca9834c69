"""Exports for upload to a traceability platform: lots, cartons and certificates as CSV or JSON.

Owns the exported layout: one typed record per row kind (``LotRecord``, ``CartonRecord``,
``CertificateRecord``), whose fields, in order, are the columns of the CSV and the keys of the
JSON objects (docs/traceability.md, "Exports", documents each). The CLI (``gradeline trace
export``) and the API (``GET /api/v1/exports/{kind}``) both write through ``export_chunks``, so
the two give the same bytes for the same rows.

Rows are read in id order, ``CHUNK_ROWS`` at a time, each chunk in its own short read, so an
export of a season streams without holding it in memory or a transaction open.

Layout rules (stable: a change is a new column, never a renamed or retyped one):

* times are ISO 8601 in UTC with the offset written (``2026-12-02T07:58:11+00:00``), to the
  second; dates are ``YYYY-MM-DD``; units are in the column names (``_g``, ``_kg``);
* CSV: UTF-8 without a byte order mark, a header row, RFC 4180 quoting, CRLF line ends; an
  absent value is an empty cell; booleans ``true``/``false``; a list (lot codes) is a JSON array;
* JSON: one array of objects; an absent value is ``null``; a list is an array.

The window: ``since`` inclusive, ``until`` exclusive, on each kind's own time (a lot's start, a
carton's close, a certificate's receipt or issue). Only closed cartons are exported.
Blocking (database): call off the event loop.
"""

from __future__ import annotations

import csv
import dataclasses
import heapq
import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

from sqlalchemy import Engine, func, select

from grading.schema import as_utc, cartons, center_certificates, fruit, incoming_certificates, lots
from grading.trace.gs1 import GS1Error, parse_unbracketed

ExportKind = Literal["lots", "cartons", "certificates"]
ExportFormat = Literal["csv", "json"]
EXPORT_KINDS: tuple[str, ...] = ("lots", "cartons", "certificates")
CHUNK_ROWS = 500


class ExportError(ValueError):
    """A bad export request (an unknown kind or format, a time that cannot be read)."""


@dataclass(frozen=True, slots=True)
class LotRecord:
    """One grower lot as received and graded."""

    lot_code: str
    line: str
    grower: str
    grower_id: str
    product: str
    variety: str
    origin_village: str
    origin_plot: str
    harvest_date: date | None
    received_weight_kg: float | None
    platform_trace_code: str | None
    recipe: str
    recipe_hash: str | None
    started_at: datetime | None
    ended_at: datetime | None
    started_by: str
    closed_by: str | None
    certificates_received: int


@dataclass(frozen=True, slots=True)
class CartonRecord:
    """One closed carton, with the lots its fruit came from and its GS1 identity."""

    carton_uid: str
    lot_code: str
    lot_codes: list[str]
    platform_trace_codes: list[str]
    outlet: int
    quality_class: str
    size_class: str | None
    opened_at: datetime | None
    closed_at: datetime | None
    closed_by: str | None
    fruit_count: int | None
    fruit_weight_g: float | None
    scale_weight_g: float | None
    net_weight_g: int | None
    compliant: bool | None
    gtin: str | None
    serial: str | None
    pack_date: date | None
    gs1_hri: str | None
    digital_link: str | None
    certificate_number: str | None


@dataclass(frozen=True, slots=True)
class CertificateRecord:
    """One 承诺达标合格证: received with a lot (``incoming``) or issued by the packing center (``center``)."""

    kind: str
    number: str | None
    lot_codes: list[str]
    subject_kind: str | None
    subject_uid: str | None
    issuer: str
    contact: str | None
    product_name: str | None
    quantity: str | None
    origin: str | None
    issued_on: date | None
    issued_at: datetime | None
    form: str
    recorded_at: datetime | None
    recorded_by: str
    note: str | None


RECORD_TYPES: dict[str, type[Any]] = {"lots": LotRecord, "cartons": CartonRecord, "certificates": CertificateRecord}


def columns(kind: str) -> list[str]:
    return [f.name for f in dataclasses.fields(RECORD_TYPES[kind])]


def parse_bound(text: str | None, name: str) -> datetime | None:
    """``YYYY-MM-DD`` (00:00 UTC that day) or an ISO 8601 time with its offset."""
    if text is None or text == "":
        return None
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        at = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ExportError(f"{name}: not a date (YYYY-MM-DD) or a time with offset (ISO 8601)") from exc
    if at.tzinfo is None:
        raise ExportError(f"{name}: a time needs its offset (e.g. +08:00)")
    return at.astimezone(UTC)



def _window(column: Any, since: datetime | None, until: datetime | None) -> list[Any]:
    where = []
    if since is not None:
        where.append(column >= since)
    if until is not None:
        where.append(column < until)
    return where


def _chunks(engine: Engine, table: Any, where: Sequence[Any]) -> Iterator[Sequence[Mapping[Any, Any]]]:
    after = 0
    while True:
        with engine.connect() as conn:
            rows = list(conn.execute(
                select(table).where(table.c.id > after, *where).order_by(table.c.id).limit(CHUNK_ROWS)
            ).mappings())
        if not rows:
            return
        yield rows
        after = int(rows[-1]["id"])


def lot_records(engine: Engine, since: datetime | None = None, until: datetime | None = None) -> Iterator[LotRecord]:
    for rows in _chunks(engine, lots, _window(lots.c.started_at, since, until)):
        ids = [r["id"] for r in rows]
        with engine.connect() as conn:
            received: dict[int, int] = dict(conn.execute(
                select(incoming_certificates.c.lot_id, func.count())
                .where(incoming_certificates.c.lot_id.in_(ids)).group_by(incoming_certificates.c.lot_id)
            ).all())
        for r in rows:
            yield LotRecord(
                lot_code=r["code"], line=r["line"], grower=r["grower"], grower_id=r["grower_id"], product=r["product"],
                variety=r["variety"], origin_village=r["origin_village"], origin_plot=r["origin_plot"],
                harvest_date=r["harvest_date"], received_weight_kg=r["received_weight_kg"],
                platform_trace_code=r["platform_trace_code"], recipe=r["recipe"], recipe_hash=r["recipe_hash"],
                started_at=as_utc(r["started_at"]), ended_at=as_utc(r["ended_at"]), started_by=r["started_by"],
                closed_by=r["closed_by"], certificates_received=int(received.get(r["id"], 0)),
            )


def _code_elements(element_string: str | None) -> tuple[str | None, int | None]:
    """The HRI and the net weight (AI 3103, g) of a stored element string."""
    if not element_string:
        return None, None
    try:
        elements = parse_unbracketed(element_string)
    except GS1Error:
        return None, None
    weight = next((int(e.value) for e in elements if e.ai == "3103"), None)
    return "".join(f"({e.ai}){e.value}" for e in elements), weight


def carton_records(
    engine: Engine, since: datetime | None = None, until: datetime | None = None
) -> Iterator[CartonRecord]:
    where = [cartons.c.closed_at.is_not(None), *_window(cartons.c.closed_at, since, until)]
    for rows in _chunks(engine, cartons, where):
        ids = [r["id"] for r in rows]
        with engine.connect() as conn:
            # each carton's lots in the order their first fruit went in
            firsts = conn.execute(
                select(fruit.c.carton_id, fruit.c.lot_id, func.min(fruit.c.id).label("first"))
                .where(fruit.c.carton_id.in_(ids)).group_by(fruit.c.carton_id, fruit.c.lot_id)
            ).all()
            lot_ids = {r["lot_id"] for r in rows} | {f[1] for f in firsts}
            lot_rows = {
                lot_row[0]: (lot_row[1], lot_row[2])
                for lot_row in conn.execute(
                    select(lots.c.id, lots.c.code, lots.c.platform_trace_code).where(lots.c.id.in_(lot_ids))
                ).all()
            }
            numbers = dict(conn.execute(
                select(center_certificates.c.subject_uid, center_certificates.c.number).where(
                    center_certificates.c.subject_kind == "carton",
                    center_certificates.c.subject_uid.in_([r["uid"] for r in rows]),
                )
            ).all())
        of_carton: dict[int, list[tuple[int, int]]] = {}
        for carton_id, lot_id, first in firsts:
            of_carton.setdefault(int(carton_id), []).append((int(first), int(lot_id)))
        for r in rows:
            contributing = [lot_id for _first, lot_id in sorted(of_carton.get(int(r["id"]), []))] or [r["lot_id"]]
            hri, weight = _code_elements(r["element_string"])
            if weight is None and r["closed_at"] is not None and r["fruit_weight_g"] is not None:
                weight = round(r["scale_weight_g"] if r["scale_weight_g"] is not None else r["fruit_weight_g"])
            yield CartonRecord(
                carton_uid=r["uid"], lot_code=lot_rows[r["lot_id"]][0],
                lot_codes=[lot_rows[i][0] for i in contributing],
                platform_trace_codes=list(dict.fromkeys(lot_rows[i][1] for i in contributing if lot_rows[i][1])),
                outlet=r["outlet"], quality_class=r["quality_class"], size_class=r["size_class"],
                opened_at=as_utc(r["opened_at"]), closed_at=as_utc(r["closed_at"]), closed_by=r["closed_by"],
                fruit_count=r["fruit_count"], fruit_weight_g=r["fruit_weight_g"], scale_weight_g=r["scale_weight_g"],
                net_weight_g=weight, compliant=r["compliant"], gtin=r["gtin"], serial=r["serial"],
                pack_date=r["pack_date"], gs1_hri=hri, digital_link=r["digital_link"],
                certificate_number=numbers.get(r["uid"]),
            )


def _incoming(engine: Engine, since: datetime | None, until: datetime | None) -> Iterator[CertificateRecord]:
    for rows in _chunks(engine, incoming_certificates, _window(incoming_certificates.c.received_at, since, until)):
        with engine.connect() as conn:
            codes = dict(conn.execute(
                select(lots.c.id, lots.c.code).where(lots.c.id.in_({r["lot_id"] for r in rows}))
            ).all())
        for r in rows:
            yield CertificateRecord(
                kind="incoming", number=r["number"] or None, lot_codes=[codes[r["lot_id"]]], subject_kind=None,
                subject_uid=None, issuer=r["issuer"], contact=r["contact"] or None,
                product_name=r["product_name"] or None, quantity=r["quantity"] or None, origin=r["origin"] or None,
                issued_on=r["issued_on"], issued_at=None, form=r["form"], recorded_at=as_utc(r["received_at"]),
                recorded_by=r["received_by"], note=r["note"] or None,
            )


def _center(engine: Engine, since: datetime | None, until: datetime | None) -> Iterator[CertificateRecord]:
    for rows in _chunks(engine, center_certificates, _window(center_certificates.c.issued_at, since, until)):
        for r in rows:
            at = as_utc(r["issued_at"])
            yield CertificateRecord(
                kind="center", number=r["number"], lot_codes=list(r["lot_codes"]), subject_kind=r["subject_kind"],
                subject_uid=r["subject_uid"], issuer=r["issuer"], contact=r["contact"] or None,
                product_name=r["product_name"] or None, quantity=r["quantity"] or None, origin=r["origin"] or None,
                issued_on=None, issued_at=at, form="label", recorded_at=at, recorded_by=r["issued_by"], note=None,
            )


def certificate_records(
    engine: Engine, since: datetime | None = None, until: datetime | None = None
) -> Iterator[CertificateRecord]:
    """Incoming and center certificates in one stream, by the time they were recorded."""
    epoch = datetime.min.replace(tzinfo=UTC)
    return heapq.merge(
        _incoming(engine, since, until), _center(engine, since, until), key=lambda c: c.recorded_at or epoch
    )


def records(engine: Engine, kind: str, since: datetime | None = None, until: datetime | None = None) -> Iterator[Any]:
    if kind == "lots":
        return lot_records(engine, since, until)
    if kind == "cartons":
        return carton_records(engine, since, until)
    if kind == "certificates":
        return certificate_records(engine, since, until)
    raise ExportError(f"unknown export {kind!r}: one of {', '.join(EXPORT_KINDS)}")


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return json.dumps(value, ensure_ascii=False)
    return str(_json_value(value))


def as_json(record: Any) -> dict[str, Any]:
    return {f.name: _json_value(getattr(record, f.name)) for f in dataclasses.fields(record)}


def csv_chunks(kind: str, rows: Iterable[Any]) -> Iterator[str]:
    """The CSV text: the header, then the rows, a few hundred to a chunk."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # RFC 4180: minimal quoting, CRLF
    writer.writerow(columns(kind))
    for n, record in enumerate(rows, 1):
        writer.writerow([_csv_value(getattr(record, name)) for name in columns(kind)])
        if n % CHUNK_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def json_chunks(rows: Iterable[Any]) -> Iterator[str]:
    """The JSON text: one array, one object per line."""
    yield "["
    for n, record in enumerate(rows):
        yield ("\n" if n == 0 else ",\n") + json.dumps(as_json(record), ensure_ascii=False)
    yield "\n]\n"


def export_chunks(
    engine: Engine, kind: str, fmt: str, *, since: datetime | None = None, until: datetime | None = None
) -> Iterator[str]:
    """The export of ``kind`` in ``fmt`` as text chunks (encode as UTF-8)."""
    if kind not in EXPORT_KINDS:
        raise ExportError(f"unknown export {kind!r}: one of {', '.join(EXPORT_KINDS)}")
    if fmt not in ("csv", "json"):
        raise ExportError(f"unknown format {fmt!r}: csv or json")
    rows = records(engine, kind, since, until)
    return csv_chunks(kind, rows) if fmt == "csv" else json_chunks(rows)
