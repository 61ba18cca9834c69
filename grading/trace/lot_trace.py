"""A lot's trace, for the packing center's own staff: from the grower to its cartons and the
cold rooms it stayed in, as one typed record.

Owns ``LotTrace`` and ``lot_trace`` (blocking SQL; call it off the event loop). The record is
built from the store in parts, each a model and a builder of its own:

* ``grower``: the grower's full name and ID, and how labels and the consumer page show them
  under ``[trace] grower_privacy`` (``public_name``). The trace is for staff (the HMI and API
  callers, who already read the full name on ``GET /api/v1/lots/{id}``), so it carries the full
  name; the privacy setting governs only what leaves the packing center;
* ``lot``: code, product, variety, origin village and plot, harvest date, received kg, recipe
  version, started and closed (when and by whom);
* ``packout``: fruit and kg graded, yield, fruit per quality class, cartons closed and out of
  tolerance (``grading.lots.packout``);
* ``cartons``: the lot's closed cartons, newest first, with their GS1 codes;
* ``cold_stays``: every stay of the lot (or a pallet of it) in a cold room, with the room's
  temperature over the stay (``grading.coldchain.history``);
* ``pallets``: the pallets holding its cartons (SSCC, how many of its cartons, shipped, the
  certificate of a mixed pallet; ``grading.trace.pallets``);
* ``incoming_certificates``: the growers' 合格证 received with the lot (``grading.lots.receiving``),
  and ``center_certificates``: the packing center's own certificates for cartons and pallets
  that mix this lot with another (``grading.trace.certificates``). The lot's platform 追溯码 is
  in ``lot``.

A further part is a model (or the domain's own record), a builder
called in ``lot_trace`` and one field of ``LotTrace`` with an empty default, so older readers
of the JSON keep working. Class ids are the recipe's (``extra``, ``class_i``, ...): the HMI
names them in the operator's language. Nothing here speaks HTTP.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, func, or_, select

from grading.coldchain.history import ColdchainStore
from grading.lots.cartons import Carton, list_cartons
from grading.lots.lots import get_lot
from grading.lots.packout import lot_packout
from grading.lots.receiving import IncomingCertificate, lot_certificates
from grading.schema import as_utc, center_certificates
from grading.schema import cartons as cartons_table
from grading.store import Lot
from grading.trace.certificates import CenterCertificate, certificate_from_row
from grading.trace.codes import PrivacyLevel, present_grower
from grading.trace.gs1 import GS1Error, hri, parse_unbracketed
from grading.trace.pallets import Pallet, pallets_of_lot


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TraceGrower(_Part):
    name: str = Field(description="Full name, as received.")
    grower_id: str = Field(description="E.g. the cooperative's member number; \"\" if none.")
    public_name: str | None = Field(description="As labels and the consumer page show it ([trace] grower_privacy).")


class TraceLotInfo(_Part):
    id: int
    code: str = Field(description="The lot code, AI (10) on its cartons.")
    line: str
    product: str
    variety: str
    origin_village: str
    origin_plot: str
    harvest_date: date | None
    received_weight_kg: float | None
    recipe: str
    recipe_hash: str | None = Field(description="The exact recipe version it was graded by.")
    started_at: datetime | None
    started_by: str
    closed_at: datetime | None = Field(description="null while it is open.")
    closed_by: str | None
    platform_trace_code: str | None = Field(None, description="The national platform's 追溯码 (opaque); null: none yet.")


class TraceClassCount(_Part):
    quality_class: str = Field(description="Recipe class id, or cull / recheck.")
    fruit: int
    weight_kg: float
    fruit_percent: float


class TracePackout(_Part):
    fruit: int = Field(description="Every fruit graded in the lot.")
    weight_kg: float = Field(description="Sum of the weighed fruit.")
    yield_percent: float | None = Field(description="Weighed kg / received kg.")
    quality_classes: list[TraceClassCount]
    cartons_closed: int
    cartons_out_of_tolerance: int


class TraceCarton(_Part):
    id: int
    outlet: int
    quality_class: str
    size_class: str | None
    closed_at: datetime | None
    fruit_count: int | None
    net_weight_g: float | None
    compliant: bool | None
    gtin: str | None = Field(description="null: closed uncoded (no [trace] then, or no fruit).")
    serial: str | None
    pack_date: date | None
    hri: str | None = Field(description="The element string in bracketed form.")
    digital_link: str | None


class TraceColdStay(_Part):
    room: str
    pallet: str = Field(description="\"\" when the whole lot moved.")
    entered_at: datetime
    left_at: datetime | None = Field(description="null while it is still in the room.")
    duration_s: float
    temperature_min_c: float | None
    temperature_max_c: float | None
    temperature_mean_c: float | None = Field(description="Time-weighted over the stay.")
    minutes_out_of_band: float


class TracePallet(_Part):
    id: int
    sscc: str = Field(description="SSCC-18, AI (00).")
    cartons_of_lot: int = Field(description="Cartons of this lot on it (a partial carton carried into it counts).")
    carton_count: int = Field(description="All its cartons.")
    lots: list[str] = Field(description="Every lot on it: more than one means it ships with the center's certificate.")
    created_at: datetime
    shipped_at: datetime | None = Field(description="null while it is being built.")
    destination: str | None
    certificate_number: str | None = Field(description="The center's 合格证 of a mixed pallet, once shipped.")


class LotTrace(_Part):
    """One lot from the grower to its cartons and cold rooms."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "grower": {"name": "张三", "grower_id": "MZ-0417", "public_name": "张*"},
        "lot": {"id": 12, "code": "2026-1202-003", "line": "line-1", "product": "apple", "variety": "红富士",
                "origin_village": "石屏县宝秀镇", "origin_plot": "3号地", "harvest_date": "2026-12-01",
                "received_weight_kg": 1250.0, "recipe": "apple", "recipe_hash": "9f2c41d0...",
                "started_at": "2026-12-02T07:58:11Z", "started_by": "user:李娜",
                "closed_at": "2026-12-02T11:02:40Z", "closed_by": "user:李娜"},
        "packout": {"fruit": 5120, "weight_kg": 1034.2, "yield_percent": 82.74, "cartons_closed": 96,
                    "cartons_out_of_tolerance": 1,
                    "quality_classes": [{"quality_class": "extra", "fruit": 1800, "weight_kg": 412.5,
                                         "fruit_percent": 35.16}]},
        "cartons": [{"id": 87, "outlet": 1, "quality_class": "extra", "size_class": None,
                     "closed_at": "2026-12-02T08:01:00Z", "fruit_count": 48, "net_weight_g": 9876.5,
                     "compliant": True, "gtin": "19521234000010", "serial": "line-1.87", "pack_date": "2026-12-02",
                     "hri": "(01)19521234000010(3103)009876(13)261202(10)2026-1202-003(21)line-1.87",
                     "digital_link": "http://127.0.0.1:8080/01/19521234000010/10/2026-1202-003/21/line-1.87"}],
        "cartons_total": 96,
        "cold_stays": [{"room": "room-1", "pallet": "", "entered_at": "2026-12-02T11:10:00Z", "left_at": None,
                        "duration_s": 3600.0, "temperature_min_c": 0.4, "temperature_max_c": 3.1,
                        "temperature_mean_c": 1.2, "minutes_out_of_band": 0.0}],
    }]})

    grower: TraceGrower
    lot: TraceLotInfo
    packout: TracePackout
    cartons: list[TraceCarton] = Field(description="Closed cartons, newest first, at most the limit asked for.")
    cartons_total: int = Field(description="Closed cartons of the lot, all of them.")
    cold_stays: list[TraceColdStay] = Field(description="Oldest first.")
    pallets: list[TracePallet] = Field(default_factory=list, description="Pallets holding its cartons, oldest first.")
    incoming_certificates: list[IncomingCertificate] = Field(
        default_factory=list, description="Growers' 合格证 received with the lot, in the order recorded.")
    center_certificates: list[CenterCertificate] = Field(
        default_factory=list,
        description="The packing center's certificates for subjects that mix this lot with others, oldest first.")



def _grower(lot: Lot, privacy: PrivacyLevel) -> TraceGrower:
    return TraceGrower(name=lot.grower, grower_id=lot.grower_id, public_name=present_grower(lot.grower, privacy))


def _lot(lot: Lot) -> TraceLotInfo:
    return TraceLotInfo(
        id=lot.id, code=lot.code, line=lot.line, product=lot.product, variety=lot.variety,
        origin_village=lot.origin_village, origin_plot=lot.origin_plot, harvest_date=lot.harvest_date,
        received_weight_kg=lot.received_weight_kg, recipe=lot.recipe, recipe_hash=lot.recipe_hash,
        started_at=as_utc(lot.started_at), started_by=lot.started_by, closed_at=as_utc(lot.ended_at),
        closed_by=lot.closed_by, platform_trace_code=lot.platform_trace_code,
    )


def _packout(engine: Engine, lot: Lot, class_order: list[str]) -> TracePackout:
    report = lot_packout(engine, lot.id).as_dict(lot, class_order)
    return TracePackout(
        fruit=report["fruit"], weight_kg=report["weight_kg"], yield_percent=report["yield_percent"],
        quality_classes=[
            TraceClassCount(quality_class=c["quality_class"], fruit=c["fruit"], weight_kg=c["weight_kg"],
                            fruit_percent=c["fruit_percent"])
            for c in report["quality_classes"]
        ],
        cartons_closed=sum(c["closed"] for c in report["cartons"]),
        cartons_out_of_tolerance=sum(c["out_of_tolerance"] for c in report["cartons"]),
    )


def _carton(carton: Carton) -> TraceCarton:
    printed = None
    if carton.element_string is not None:
        try:
            printed = hri(parse_unbracketed(carton.element_string))
        except GS1Error:  # a stored code always parses; a damaged row still shows its other fields
            printed = None
    return TraceCarton(
        id=carton.id, outlet=carton.outlet, quality_class=carton.quality_class, size_class=carton.size_class,
        closed_at=as_utc(carton.closed_at), fruit_count=carton.fruit_count, net_weight_g=carton.net_weight_g,
        compliant=carton.compliant, gtin=carton.gtin, serial=carton.serial, pack_date=carton.pack_date,
        hri=printed, digital_link=carton.digital_link,
    )


def _cartons(engine: Engine, lot_id: int, limit: int) -> tuple[list[TraceCarton], int]:
    # list_cartons pages newest first over every carton; the open ones (one per outlet) are skipped
    closed: list[TraceCarton] = []
    after: int | None = None
    while len(closed) < limit:
        page = list_cartons(engine, lot_id=lot_id, after_id=after, limit=min(500, limit + 16))
        closed += [_carton(c) for c in page if c.closed_at is not None]
        if len(page) < min(500, limit + 16):
            break
        after = page[-1].id
    with engine.connect() as conn:
        total = conn.execute(
            select(func.count()).select_from(cartons_table)
            .where(cartons_table.c.lot_id == lot_id, cartons_table.c.closed_at.is_not(None))
        ).scalar_one()
    return closed[:limit], int(total)


def _cold_stays(engine: Engine, lot_id: int, wall_clock: Callable[[], datetime]) -> list[TraceColdStay]:
    return [
        TraceColdStay(
            room=s.room, pallet=s.pallet, entered_at=s.entered_at, left_at=s.left_at, duration_s=round(s.duration_s, 1),
            temperature_min_c=s.temperature_min_c, temperature_max_c=s.temperature_max_c,
            temperature_mean_c=None if s.temperature_mean_c is None else round(s.temperature_mean_c, 3),
            minutes_out_of_band=round(s.minutes_out_of_band, 2),
        )
        for s in ColdchainStore(engine, wall_clock).lot_history(lot_id)
    ]


def _pallet(pallet: Pallet, lot: Lot, carried: set[int]) -> TracePallet:
    return TracePallet(
        id=pallet.id, sscc=pallet.sscc, carton_count=pallet.carton_count, lots=list(pallet.lots),
        cartons_of_lot=sum(1 for c in pallet.cartons if c.lot_code == lot.code or c.carton_id in carried),
        created_at=pallet.created_at, shipped_at=pallet.shipped_at, destination=pallet.destination,
        certificate_number=pallet.certificate.number if pallet.certificate else None,
    )


def _center_certificates(engine: Engine, lot_id: int, pallets: list[Pallet]) -> list[CenterCertificate]:
    # a mixed carton belongs to the lot it was opened for and names the lot it was carried into
    mixed = select(cartons_table.c.uid).where(
        or_(cartons_table.c.lot_id == lot_id, cartons_table.c.carried_to_lot_id == lot_id)
    )
    with engine.connect() as conn:
        rows = conn.execute(
            select(center_certificates)
            .where(center_certificates.c.subject_kind == "carton", center_certificates.c.subject_uid.in_(mixed))
            .order_by(center_certificates.c.id)
        ).mappings().all()
    found = [certificate_from_row(r) for r in rows] + [p.certificate for p in pallets if p.certificate is not None]
    return sorted(found, key=lambda c: c.issued_at)


def lot_trace(
    engine: Engine, lot_id: int, *, privacy: PrivacyLevel, class_order: list[str], carton_limit: int = 1000,
    wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> LotTrace:
    """The lot's trace; raises ``grading.lots.lots.LotNotFound`` for an unknown id.

    ``privacy`` is the line's ``[trace] grower_privacy`` (``masked`` on a line without one);
    ``class_order`` the recipe's quality class ids, in grade order; ``wall_clock`` ends a stay
    that is still going."""
    lot = get_lot(engine, lot_id)
    cartons, total = _cartons(engine, lot_id, carton_limit)
    pallets = pallets_of_lot(engine, lot_id)
    with engine.connect() as conn:
        carried = set(conn.execute(
            select(cartons_table.c.id).where(cartons_table.c.carried_to_lot_id == lot_id)
        ).scalars())
    return LotTrace(
        grower=_grower(lot, privacy), lot=_lot(lot), packout=_packout(engine, lot, class_order),
        cartons=cartons, cartons_total=total, cold_stays=_cold_stays(engine, lot_id, wall_clock),
        pallets=[_pallet(p, lot, carried) for p in pallets],
        incoming_certificates=lot_certificates(engine, lot_id),
        center_certificates=_center_certificates(engine, lot_id, pallets),
    )


__all__ = ["LotTrace", "lot_trace"]
