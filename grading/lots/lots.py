"""Lots in the store: start, close, switch, find and list.

One lot is open per line at a time; the database enforces it (a partial unique index on
``lots.line`` where ``ended_at`` is null), so two callers racing to start a lot cannot both win.
Starting a lot while another is open on the line is a switch: the open one is closed and the
new one opened in one transaction (``start_lot(..., switch=True)``). Where the switch falls
among the fruit is the runtime's business (``LineRuntime.switch_lot``): at a cup boundary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine, and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from grading.lots.receiving import (
    IncomingCertificate,
    checked,
    clean_trace_code,
    insert_certificates,
)
from grading.schema import lots
from grading.store import Lot, lot_from_row


class LotError(Exception):
    """A lot operation the state of the line's lots does not allow (HTTP 409)."""


class LotNotFound(LotError):
    """No lot with that id (HTTP 404)."""


@dataclass(frozen=True, slots=True)
class LotDetails:
    """What a person enters to start a lot (the line and recipe come from the line)."""

    code: str
    grower: str
    grower_id: str = ""
    product: str = ""
    variety: str = ""
    origin_village: str = ""
    origin_plot: str = ""
    harvest_date: date | None = None
    received_weight_kg: float | None = None
    platform_trace_code: str | None = None  # the platform's 追溯码, when it came with the fruit
    certificates: tuple[IncomingCertificate, ...] = ()  # the grower's 合格证, recorded with the lot


def open_lot_of(engine: Engine, line: str) -> Lot | None:
    """The lot open on ``line``, if any."""
    with engine.connect() as conn:
        row = conn.execute(select(lots).where(lots.c.line == line, lots.c.ended_at.is_(None))).mappings().first()
    return None if row is None else lot_from_row(row)


def get_lot(engine: Engine, lot_id: int) -> Lot:
    with engine.connect() as conn:
        row = conn.execute(select(lots).where(lots.c.id == lot_id)).mappings().first()
    if row is None:
        raise LotNotFound(f"no lot {lot_id}")
    return lot_from_row(row)


def start_lot(
    engine: Engine,
    details: LotDetails,
    *,
    line: str,
    recipe_name: str,
    recipe_hash: str | None,
    at: datetime,
    by: str,
    switch: bool = False,
) -> tuple[Lot, Lot | None]:
    """Open a lot on ``line``; returns it and the lot it replaced (closed at ``at``), if any.

    Without ``switch`` an open lot on the line is an error. A lot code is unique. The incoming
    certificates in ``details`` are stored in the same transaction (``ReceivingError`` for a
    value that cannot be stored, before anything is written).
    """
    trace_code = clean_trace_code(details.platform_trace_code)
    received = [checked(c, f"certificates[{i}]") for i, c in enumerate(details.certificates)]
    try:
        with engine.begin() as conn:
            current = conn.execute(
                select(lots).where(lots.c.line == line, lots.c.ended_at.is_(None))
            ).mappings().first()
            if current is not None and not switch:
                raise LotError(f"lot {current['code']} is open on {line}: close it first, or switch")
            if conn.execute(select(lots.c.id).where(lots.c.code == details.code)).first() is not None:
                raise LotError(f"lot code {details.code!r} is taken")
            if current is not None:
                conn.execute(update(lots).where(lots.c.id == current["id"]).values(ended_at=at, closed_by=by))
            lot_id = conn.execute(
                insert(lots).values(
                    code=details.code, grower=details.grower, grower_id=details.grower_id, variety=details.variety,
                    product=details.product, recipe=recipe_name, recipe_hash=recipe_hash, line=line,
                    origin_village=details.origin_village, origin_plot=details.origin_plot,
                    harvest_date=details.harvest_date, received_weight_kg=details.received_weight_kg,
                    started_at=at, started_by=by, platform_trace_code=trace_code,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            insert_certificates(conn, int(lot_id), received, at=at, by=by)
            row = conn.execute(select(lots).where(lots.c.id == lot_id)).mappings().one()
            closed = None
            if current is not None:
                closed = lot_from_row(conn.execute(select(lots).where(lots.c.id == current["id"])).mappings().one())
    except IntegrityError as exc:  # another caller opened a lot on this line (or took the code) first
        raise LotError(f"another lot was started on {line} at the same time") from exc
    return lot_from_row(row), closed


def close_lot(engine: Engine, lot_id: int, *, at: datetime, by: str) -> Lot:
    """Close an open lot; closing a closed lot is an error."""
    with engine.begin() as conn:
        done = conn.execute(
            update(lots).where(lots.c.id == lot_id, lots.c.ended_at.is_(None)).values(ended_at=at, closed_by=by)
        ).rowcount
        row = conn.execute(select(lots).where(lots.c.id == lot_id)).mappings().first()
    if row is None:
        raise LotNotFound(f"no lot {lot_id}")
    if not done:
        raise LotError(f"lot {row['code']} is already closed")
    return lot_from_row(row)


def set_lot_ended_at(engine: Engine, lot_id: int, at: datetime) -> None:
    """Move a closed lot's end to the moment the line actually switched away from it."""
    with engine.begin() as conn:
        conn.execute(update(lots).where(lots.c.id == lot_id, lots.c.ended_at.is_not(None)).values(ended_at=at))


def list_lots(
    engine: Engine,
    *,
    grower: str | None = None,
    product: str | None = None,
    on: date | None = None,
    line: str | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> Sequence[Lot]:
    """Lots newest first; ``grower`` matches the grower's name or ID, ``on`` a lot started on
    that UTC day; ``after_id`` pages on (lots older than it)."""
    query = select(lots).order_by(lots.c.id.desc()).limit(limit)
    if grower is not None:
        query = query.where(or_(lots.c.grower == grower, lots.c.grower_id == grower))
    if product is not None:
        query = query.where(lots.c.product == product)
    if on is not None:
        start = datetime(on.year, on.month, on.day, tzinfo=UTC)
        query = query.where(and_(lots.c.started_at >= start, lots.c.started_at < start + timedelta(days=1)))
    if line is not None:
        query = query.where(lots.c.line == line)
    if after_id is not None:
        query = query.where(lots.c.id < after_id)
    with engine.connect() as conn:
        return [lot_from_row(row) for row in conn.execute(query).mappings()]
