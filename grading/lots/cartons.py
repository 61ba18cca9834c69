"""Outlets and their cartons.

Each packing outlet has one open carton. The runtime asks ``CartonPacker.carton_for(outlet)``
when it decides a fruit for an outlet; the carton's id goes in the fruit's record, so which
fruit are in which carton is stored with the fruit row itself (``fruit.carton_id``), in the
same commit. A fruit whose decision is not written in time is corrected to late, recirculated
and in no carton, in the store and in its event; so a carton holds exactly the non-late fruit
decided for its outlet while it was open.

Closing a carton (the packer's button, the API, the PLC's carton-full input, or the lot's
close) swaps in a new open carton at once, between two decisions; the closed carton's totals
are then computed from its fruit rows once every fruit decided before the swap is committed
(``finish_carton``), with its compliance (``grading.lots.compliance``).

The packer is also a consumer of the graded-fruit events: it keeps each open carton's fill
(count and grams of committed, non-late fruit) for the HMI, and each outlet's full flag as
set by the API or HMI (the PLC's flags come with its status).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, func, insert, or_, select, update

from grading.config import OutletSettings
from grading.fruit_events import FruitGraded
from grading.lots.compliance import check_carton
from grading.schema import cartons, fruit


@dataclass
class OpenCarton:
    id: int
    lot_id: int
    outlet: int
    quality_class: str
    size_class: str | None
    opened_at: datetime
    fruit_count: int = 0  # committed, non-late fruit so far (from the events)
    fruit_weight_g: float = 0.0


@dataclass(frozen=True, slots=True)
class Carton:
    """A carton as stored."""

    id: int
    lot_id: int
    outlet: int
    quality_class: str
    size_class: str | None
    opened_at: datetime
    closed_at: datetime | None
    closed_by: str | None
    fruit_count: int | None
    fruit_weight_g: float | None
    scale_weight_g: float | None
    off_grade_count: int | None
    compliant: bool | None
    issues: list[str] | None = field(default=None)
    # its GS1 identity (grading.trace.carton_codes); None while open or when uncoded
    gtin: str | None = None
    serial: str | None = None
    pack_date: date | None = None
    element_string: str | None = None
    digital_link: str | None = None
    carried_to_lot_id: int | None = None  # kept open across a lot switch into this lot ([lots] carry-over)

    @property
    def net_weight_g(self) -> float | None:
        """The carton scale's reading where there is one, else the sum of its fruit."""
        return self.scale_weight_g if self.scale_weight_g is not None else self.fruit_weight_g


def carton_from_row(row: Mapping[Any, Any]) -> Carton:
    return Carton(**{name: row[name] for name in Carton.__dataclass_fields__})


def packing_outlets(outlets: Sequence[OutletSettings]) -> list[OutletSettings]:
    return [o for o in outlets if o.role == "pack"]


def carton_class(outlet: OutletSettings) -> tuple[str, str | None]:
    """The quality and size class an outlet's cartons are packed as: its first listed quality
    class ("" when it takes any), and its size class when it takes exactly one."""
    quality = outlet.quality_classes[0] if outlet.quality_classes else ""
    size = outlet.size_classes[0] if len(outlet.size_classes) == 1 else None
    return quality, size


def open_cartons(
    engine: Engine, lot_id: int, outlets: Sequence[OutletSettings], *, at: datetime
) -> list[OpenCarton]:
    """Insert one open carton per outlet in ``outlets`` for ``lot_id``, committed before any
    fruit can refer to them."""
    opened = []
    with engine.begin() as conn:
        for outlet in outlets:
            quality, size = carton_class(outlet)
            carton_id = conn.execute(
                insert(cartons).values(
                    uid=str(uuid.uuid4()), lot_id=lot_id, outlet=outlet.number, quality_class=quality, size_class=size, opened_at=at
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            opened.append(OpenCarton(int(carton_id), lot_id, outlet.number, quality, size, at))
    return opened


def open_cartons_after(
    engine: Engine, old_id: int, lot_id: int, outlet: OutletSettings, *, at: datetime
) -> OpenCarton:
    """Mark carton ``old_id`` closed at ``at`` and open the outlet's next one, in one
    transaction (one open carton per outlet); ``finish_carton`` fills in the old one's totals."""
    quality, size = carton_class(outlet)
    with engine.begin() as conn:
        conn.execute(update(cartons).where(cartons.c.id == old_id, cartons.c.closed_at.is_(None)).values(closed_at=at))
        carton_id = conn.execute(
            insert(cartons).values(
                uid=str(uuid.uuid4()), lot_id=lot_id, outlet=outlet.number, quality_class=quality, size_class=size,
                opened_at=at,
            )
        ).inserted_primary_key[0]  # type: ignore[index]
    return OpenCarton(int(carton_id), lot_id, outlet.number, quality, size, at)


def carry_cartons(engine: Engine, carton_ids: Sequence[int], lot_id: int) -> None:
    """Mark open cartons as carried into ``lot_id`` (kept open across a lot switch): a restart
    resumes them with that lot's cartons."""
    with engine.begin() as conn:
        conn.execute(
            update(cartons).where(cartons.c.id.in_(list(carton_ids)), cartons.c.closed_at.is_(None))
            .values(carried_to_lot_id=lot_id)
        )


def resume_open_cartons(engine: Engine, lot_id: int) -> list[OpenCarton]:
    """The lot's cartons still open (after a restart), with their fill from their fruit rows;
    a carton carried into the lot from the one before is one of them."""
    query = (
        select(
            cartons.c.id, cartons.c.lot_id, cartons.c.outlet, cartons.c.quality_class, cartons.c.size_class,
            cartons.c.opened_at, func.count(fruit.c.id), func.coalesce(func.sum(fruit.c.weight_g), 0.0),
        )
        .select_from(cartons.outerjoin(fruit, fruit.c.carton_id == cartons.c.id))
        .where(or_(cartons.c.lot_id == lot_id, cartons.c.carried_to_lot_id == lot_id), cartons.c.closed_at.is_(None))
        .group_by(cartons.c.id)
    )
    with engine.connect() as conn:
        return [OpenCarton(int(r[0]), r[1], r[2], r[3], r[4], r[5], int(r[6]), float(r[7])) for r in conn.execute(query)]


def finish_carton(
    engine: Engine,
    carton_id: int,
    *,
    closed_at: datetime,
    closed_by: str,
    class_order: Sequence[str],
    scale_weight_g: float | None = None,
    max_weight_spread_g: float | None = None,
) -> Carton:
    """Close ``carton_id`` with its totals and compliance, computed from its fruit rows in SQL.

    Call once every fruit decided into it is committed (``LineRuntime.settled`` and the
    writer's flush): the rows are then final.
    """
    with engine.begin() as conn:
        row = conn.execute(select(cartons).where(cartons.c.id == carton_id)).mappings().one()
        by_class = {
            str(cls): int(n)
            for cls, n in conn.execute(
                select(fruit.c.quality_class, func.count())
                .where(fruit.c.carton_id == carton_id)
                .group_by(fruit.c.quality_class)
            )
        }
        weight_g, lightest, heaviest = conn.execute(
            select(func.sum(fruit.c.weight_g), func.min(fruit.c.weight_g), func.max(fruit.c.weight_g))
            .where(fruit.c.carton_id == carton_id)
        ).one()
        spread = None if lightest is None or heaviest is None else float(heaviest) - float(lightest)
        result = check_carton(
            row["quality_class"], by_class, class_order,
            weight_spread_g=spread, max_weight_spread_g=max_weight_spread_g,
        )
        conn.execute(
            update(cartons).where(cartons.c.id == carton_id).values(
                closed_at=closed_at, closed_by=closed_by, fruit_count=result.fruit_count,
                fruit_weight_g=float(weight_g or 0.0), scale_weight_g=scale_weight_g,
                off_grade_count=result.off_grade_count, compliant=result.compliant, issues=list(result.issues),
            )
        )
        return carton_from_row(conn.execute(select(cartons).where(cartons.c.id == carton_id)).mappings().one())


def get_carton(engine: Engine, carton_id: int) -> Carton | None:
    with engine.connect() as conn:
        row = conn.execute(select(cartons).where(cartons.c.id == carton_id)).mappings().first()
    return None if row is None else carton_from_row(row)


def carton_fruit_uids(engine: Engine, carton_id: int) -> list[str]:
    with engine.connect() as conn:
        return [str(u) for u in conn.execute(select(fruit.c.uid).where(fruit.c.carton_id == carton_id).order_by(fruit.c.id)).scalars()]


def list_cartons(
    engine: Engine,
    *,
    lot_id: int | None = None,
    outlet: int | None = None,
    compliant: bool | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> list[Carton]:
    query = select(cartons).order_by(cartons.c.id.desc()).limit(limit)
    if lot_id is not None:
        query = query.where(cartons.c.lot_id == lot_id)
    if outlet is not None:
        query = query.where(cartons.c.outlet == outlet)
    if compliant is not None:
        query = query.where(cartons.c.compliant.is_(compliant))
    if after_id is not None:
        query = query.where(cartons.c.id < after_id)
    with engine.connect() as conn:
        return [carton_from_row(row) for row in conn.execute(query).mappings()]


def count_out_of_tolerance(engine: Engine) -> dict[str, int]:
    """Closed cartons out of tolerance, by quality class (for /metrics)."""
    query = (
        select(cartons.c.quality_class, func.count())
        .where(cartons.c.compliant.is_(False))
        .group_by(cartons.c.quality_class)
    )
    with engine.connect() as conn:
        return {str(cls): int(n) for cls, n in conn.execute(query)}


class CartonPacker:
    """The open carton of each packing outlet, and the outlets' full flags set by people.

    Loop-owned state: ``carton_for`` is called by the runtime as it decides, ``on_fruit`` by
    the fruit bus, ``replace`` only between two decisions (``LineRuntime.switch_lot`` or
    ``LineRuntime.between_decisions``).
    """

    def __init__(self, outlets: Sequence[OutletSettings], wall_clock: Callable[[], datetime]) -> None:
        self.outlets = tuple(outlets)
        self.packing = packing_outlets(outlets)
        self._wall_clock = wall_clock
        self._open: dict[int, OpenCarton] = {}
        self._by_id: dict[int, OpenCarton] = {}
        self.full_by_hand: dict[int, bool] = {o.number: False for o in self.outlets}

    def carton_for(self, outlet: int) -> int | None:
        carton = self._open.get(outlet)
        return None if carton is None else carton.id

    def open_carton(self, outlet: int) -> OpenCarton | None:
        return self._open.get(outlet)

    def open_cartons(self) -> list[OpenCarton]:
        return [self._open[n] for n in sorted(self._open)]

    def replace(self, new: Sequence[OpenCarton], *, outlets: Sequence[int] | None = None) -> list[OpenCarton]:
        """Close the open cartons of ``outlets`` (all, when None) and open ``new``; returns
        the cartons taken off (their fill as counted so far)."""
        numbers = set(self._open) if outlets is None else set(outlets)
        closed = [self._open.pop(n) for n in sorted(numbers) if n in self._open]
        for carton in closed:
            self._by_id.pop(carton.id, None)
        for carton in new:
            self._open[carton.outlet] = carton
            self._by_id[carton.id] = carton
        return closed

    def on_fruit(self, event: FruitGraded) -> None:
        record = event.record
        if record.carton_id is None or record.late:
            return
        carton = self._by_id.get(record.carton_id)
        if carton is not None:  # else: a carton already closed (its totals come from the rows)
            carton.fruit_count += 1
            carton.fruit_weight_g += record.measurement.weight_g or 0.0

    def outlet_full(self, plc_flags: Sequence[bool]) -> tuple[bool, ...]:
        """The full flag of each outlet number 1..n: the PLC's input or a person's mark."""
        n = max([len(plc_flags), *(o.number for o in self.outlets)], default=0)
        return tuple(
            (i < len(plc_flags) and plc_flags[i]) or self.full_by_hand.get(i + 1, False) for i in range(n)
        )
