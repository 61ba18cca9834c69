"""The EPCIS events of what the store holds: the query route's ``EpcisEventSource`` in SQL.

Owns ``StoreEventSource``, which builds, each time it is asked, from the rows themselves:

* an ObjectEvent ADD ``commissioning`` per coded carton, at its close;
* a TransformationEvent per closed lot with coded cartons, at the lot's close: the grower's lot
  (its received kilograms, else the kilograms graded), as the class of the product's
  ``[trace] intake_gtins`` GTIN and the lot, became those cartons (no intake GTIN for the
  product: no TransformationEvent);
* sensor ObjectEvents ``sensor_reporting`` for every stay of a lot in a cold room: the room's
  minute temperature rows cut into ``interval`` pieces (min, max, mean weighted by samples; an
  ``ALARM_CONDITION`` when any minute was outside the room's band), for the lot's classes;
* an AggregationEvent ADD ``packing`` per carton put on a pallet (parent: the pallet's SSCC),
  at its ``added_at``, and a DELETE ``unpacking`` per carton taken off, at its ``removed_at``;
* an ObjectEvent OBSERVE ``shipping`` (``in_transit``) per shipped pallet, at its ``shipped_at``.

Read point and business location are the packing center's GLN (``[trace] packing_center_gln``),
a cold room's with the room as GLN extension (254). Events are the ``grading.trace.epcis``
builders', so their IDs are the canonical event hashes: the same rows give the same events.
Blocking: the route calls it off the loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from grading.coldchain.history import minute_of
from grading.schema import (
    as_utc,
    cartons,
    coldroom_readings,
    fruit,
    lot_residence,
    lots,
    pallet_cartons,
    pallets,
)
from grading.trace.codes import TraceConfig
from grading.trace.epcis import (
    CartonRef,
    Event,
    LotInput,
    Place,
    SensorSummary,
    aggregation_event,
    commissioning_event,
    lot_class,
    sensor_event,
    shipping_event,
    transformation_event,
)


class StoreEventSource:
    def __init__(
        self, engine: Engine, trace: TraceConfig, *, interval: timedelta = timedelta(minutes=15),
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._engine = engine
        self._trace = trace
        self._interval = interval
        self._wall_clock = wall_clock
        self._center = Place(trace.packing_center_gln)

    def events(self) -> Sequence[Event]:
        with self._engine.connect() as conn:
            coded = conn.execute(
                select(cartons.c.lot_id, cartons.c.gtin, cartons.c.serial, cartons.c.closed_at)
                .where(cartons.c.serial.is_not(None), cartons.c.closed_at.is_not(None))
                .order_by(cartons.c.id)
            ).all()
            lot_rows = {int(r["id"]): r for r in conn.execute(select(lots)).mappings()}
            graded_g = dict(conn.execute(
                select(fruit.c.lot_id, func.coalesce(func.sum(fruit.c.weight_g), 0.0)).group_by(fruit.c.lot_id)
            ).all())
            stays = conn.execute(select(lot_residence).order_by(lot_residence.c.entered_at, lot_residence.c.id)).mappings().all()
            now = self._wall_clock()
            minutes = {
                int(s["id"]): conn.execute(
                    select(coldroom_readings).where(
                        coldroom_readings.c.room == s["room"], coldroom_readings.c.quantity == "temperature",
                        coldroom_readings.c.minute_at >= minute_of(as_utc(s["entered_at"])),
                        coldroom_readings.c.minute_at < (s["left_at"] or now),
                    ).order_by(coldroom_readings.c.minute_at)
                ).mappings().all()
                for s in stays
            }
            memberships = conn.execute(
                select(pallets.c.sscc, cartons.c.gtin, cartons.c.serial, pallet_cartons.c.added_at,
                       pallet_cartons.c.removed_at)
                .join(pallets, pallets.c.id == pallet_cartons.c.pallet_id)
                .join(cartons, cartons.c.id == pallet_cartons.c.carton_id)
                .order_by(pallet_cartons.c.id)
            ).all()
            shipped = conn.execute(
                select(pallets.c.sscc, pallets.c.shipped_at).where(pallets.c.shipped_at.is_not(None)).order_by(pallets.c.id)
            ).all()
        by_lot: dict[int, list[CartonRef]] = {}
        out: list[Event] = []
        for lot_id, gtin, serial, closed_at in coded:
            ref = CartonRef(gtin, serial)
            by_lot.setdefault(int(lot_id), []).append(ref)
            out.append(commissioning_event([ref], as_utc(closed_at), read_point=self._center))
        for lot_id, refs in by_lot.items():
            lot = lot_rows[lot_id]
            intake = self._trace.intake_gtins.get(lot["product"])
            if lot["ended_at"] is None or intake is None:
                continue
            kg = lot["received_weight_kg"] or round(float(graded_g.get(lot_id, 0.0)) / 1000.0, 3)
            if kg > 0:
                out.append(transformation_event(
                    [LotInput(lot_class(intake, lot["code"]), kg)], refs, as_utc(lot["ended_at"]),
                    read_point=self._center, biz_location=self._center,
                ))
        for stay in stays:
            lot = lot_rows[int(stay["lot_id"])]
            classes = sorted({lot_class(r.gtin, lot["code"]) for r in by_lot.get(int(stay["lot_id"]), [])})
            intake = self._trace.intake_gtins.get(lot["product"])
            if intake is not None:
                classes.insert(0, lot_class(intake, lot["code"]))
            room = Place(self._trace.packing_center_gln, str(stay["room"]))
            for summary in self._summaries(str(stay["room"]), minutes[int(stay["id"])]):
                out.append(sensor_event([summary], summary.end, room=room, lots=classes))
        for sscc, gtin, serial, added_at, removed_at in memberships:
            ref = CartonRef(gtin, serial)
            out.append(aggregation_event(sscc, [ref], as_utc(added_at), add=True, read_point=self._center))
            if removed_at is not None:
                out.append(aggregation_event(sscc, [ref], as_utc(removed_at), add=False, read_point=self._center))
        for sscc, shipped_at in shipped:
            out.append(shipping_event([sscc], as_utc(shipped_at), read_point=self._center, biz_location=self._center))
        return out

    def _summaries(self, room: str, rows: Sequence[Any]) -> list[SensorSummary]:
        pieces: dict[datetime, list[Any]] = {}
        step = self._interval.total_seconds()
        for r in rows:
            at = as_utc(r["minute_at"])
            start = datetime.fromtimestamp(at.timestamp() // step * step, UTC)
            pieces.setdefault(start, []).append(r)
        out = []
        for start, piece in sorted(pieces.items()):
            samples = sum(max(int(r["samples"]), 1) for r in piece)
            mean = sum(float(r["mean_value"]) * max(int(r["samples"]), 1) for r in piece) / samples
            out.append(SensorSummary(
                # an interval still running ends at its last minute's end, never in the future
                device_id=room, start=start,
                end=min(start + self._interval, max(as_utc(r["minute_at"]) for r in piece) + timedelta(minutes=1)),
                min_value=min(float(r["min_value"]) for r in piece), max_value=max(float(r["max_value"]) for r in piece),
                mean_value=round(mean, 3), alarm=any(float(r["out_of_band_s"]) > 0 for r in piece),
            ))
        return out
