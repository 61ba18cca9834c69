"""Pallets: their SSCC, building them from coded cartons (aggregation), taking cartons off, shipping.

Owns the ``pallets`` and ``pallet_cartons`` rows. A pallet gets its SSCC when it is created:
the ``[trace]`` extension digit and company prefix, then a serial reference from the line's
durable counter (``LineSerials.sscc_reference``: the line's digit first, committed before the
SSCC is stored or printed, so none is ever given twice), then the check digit.

Aggregation rules (docs/traceability.md, "Pallets"):

* only a closed, coded carton (one with a serial) can go on a pallet, found by its id or by a
  scanned code in any form ``grading.trace.gs1.parse`` reads (element string, scanner output
  with a symbology identifier, bracketed HRI, Digital Link URI), matched on GTIN and serial;
* a carton is on at most one pallet at a time (the database's partial unique index says so
  too); taking it off keeps the membership row with ``removed_at``, so history is kept;
* a shipped pallet changes no more, and an empty pallet is not shipped;
* a pallet of more than one grower lot ships with the packing center's own 合格证
  (``grading.trace.certificates``), committed with the shipping.

Errors are typed (``PalletNotFound``, ``PalletConflict``, ``PalletInputError``) so the API can
answer 404, 409 and 422. ``pallet_label_of`` maps a pallet onto its SSCC label
(``grading.trace.labels.PalletLabel``). Time and actor are passed in. Blocking (database): call off the loop.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, func, insert, select, union, update
from sqlalchemy.exc import IntegrityError

from grading.schema import as_utc, cartons, center_certificates, lots, pallet_cartons, pallets
from grading.store import _write_transaction
from grading.trace.certificates import (
    CenterCertificate,
    certificate_from_row,
    insert_center_certificate,
    joined,
    reserve_certificate_number,
)
from grading.trace.codes import TraceConfig, sscc
from grading.trace.gs1 import GS1Error, parse
from grading.trace.labels import PalletLabel
from grading.trace.serials import LineSerials

if TYPE_CHECKING:
    from grading.recipe import Recipe


class PalletError(Exception):
    """A pallet operation refused; the message says why."""


class PalletNotFound(PalletError):
    """No such pallet, or no such carton (404)."""


class PalletConflict(PalletError):
    """The operation contradicts the pallet's or carton's state (409): shipped, empty, elsewhere."""


class PalletInputError(PalletError):
    """The request cannot be acted on as given (422): an unreadable code, an uncoded carton."""


@dataclass(frozen=True)
class PalletCarton:
    """A carton currently on a pallet, with what the pallet label and list show of it."""

    carton_id: int
    gtin: str
    serial: str
    lot_code: str
    quality_class: str
    size_class: str | None
    net_weight_g: int
    fruit_count: int | None
    added_at: datetime
    added_by: str


@dataclass(frozen=True)
class Pallet:
    id: int
    uid: str
    sscc: str
    line: str
    created_at: datetime
    created_by: str
    shipped_at: datetime | None
    shipped_by: str | None
    destination: str | None
    cartons: tuple[PalletCarton, ...]
    lots: tuple[str, ...] = ()  # the grower lots of the cartons now on it (a carried carton's both), sorted
    certificate: CenterCertificate | None = None  # the center's own, for a pallet of mixed lots, issued at shipping

    @property
    def carton_count(self) -> int:
        return len(self.cartons)

    @property
    def net_weight_g(self) -> int:
        return sum(c.net_weight_g for c in self.cartons)


@dataclass(frozen=True)
class PalletCertifier:
    """Who issues the certificate of a pallet of mixed lots, from the line's ``[trace]``."""

    line_id: str
    issuer: str  # 承诺主体: [trace] packing_center
    contact: str = ""
    product_name: str = ""
    origin: str = ""  # when the lots name no origin village



def _net_weight_g(row: Any) -> int:
    # the weight the carton's code carries: the scale's reading, else its fruit's (CartonCoder)
    weight = row["scale_weight_g"] if row["scale_weight_g"] is not None else row["fruit_weight_g"]
    return round(weight or 0.0)


def _current_cartons(conn: Connection, pallet_ids: Sequence[int]) -> dict[int, list[PalletCarton]]:
    rows = conn.execute(
        select(
            pallet_cartons.c.pallet_id, pallet_cartons.c.added_at, pallet_cartons.c.added_by, cartons, lots.c.code.label("lot_code"),
        )
        .join(cartons, cartons.c.id == pallet_cartons.c.carton_id)
        .join(lots, lots.c.id == cartons.c.lot_id)
        .where(pallet_cartons.c.pallet_id.in_(pallet_ids), pallet_cartons.c.removed_at.is_(None))
        .order_by(pallet_cartons.c.id)
    ).mappings().all()
    out: dict[int, list[PalletCarton]] = {}
    for r in rows:
        out.setdefault(int(r["pallet_id"]), []).append(PalletCarton(
            carton_id=int(r["id"]), gtin=r["gtin"], serial=r["serial"], lot_code=r["lot_code"],
            quality_class=r["quality_class"], size_class=r["size_class"], net_weight_g=_net_weight_g(r),
            fruit_count=r["fruit_count"], added_at=as_utc(r["added_at"]) or r["added_at"], added_by=r["added_by"],
        ))
    return out


def _lots_on(conn: Connection, pallet_ids: Sequence[int]) -> dict[int, list[Any]]:
    """Per pallet, the lot rows of the cartons now on it: each carton's own lot and, for a
    partial carton carried across a lot switch, the lot it was topped up from; by code."""
    on = (
        select(pallet_cartons.c.pallet_id, cartons.c.lot_id.label("lot_id"))
        .join(cartons, cartons.c.id == pallet_cartons.c.carton_id)
        .where(pallet_cartons.c.pallet_id.in_(pallet_ids), pallet_cartons.c.removed_at.is_(None))
    )
    carried = (
        select(pallet_cartons.c.pallet_id, cartons.c.carried_to_lot_id.label("lot_id"))
        .join(cartons, cartons.c.id == pallet_cartons.c.carton_id)
        .where(pallet_cartons.c.pallet_id.in_(pallet_ids), pallet_cartons.c.removed_at.is_(None),
               cartons.c.carried_to_lot_id.is_not(None))
    )
    both = union(on, carried).subquery()
    rows = conn.execute(
        select(both.c.pallet_id, lots).join(lots, lots.c.id == both.c.lot_id).order_by(lots.c.code)
    ).mappings().all()
    out: dict[int, list[Any]] = {}
    for r in rows:
        out.setdefault(int(r["pallet_id"]), []).append(r)
    return out


def _pallets(conn: Connection, rows: Sequence[Any]) -> list[Pallet]:
    ids = [int(r["id"]) for r in rows]
    members = _current_cartons(conn, ids) if rows else {}
    lots_on = _lots_on(conn, ids) if rows else {}
    certified = {
        c["subject_uid"]: certificate_from_row(c)
        for c in conn.execute(select(center_certificates).where(
            center_certificates.c.subject_kind == "pallet", center_certificates.c.subject_uid.in_([r["uid"] for r in rows])
        )).mappings()
    } if rows else {}
    return [
        Pallet(
            id=int(r["id"]), uid=r["uid"], sscc=r["sscc"], line=r["line"], created_at=as_utc(r["created_at"]) or r["created_at"],
            created_by=r["created_by"], shipped_at=as_utc(r["shipped_at"]), shipped_by=r["shipped_by"],
            destination=r["destination"], cartons=tuple(members.get(int(r["id"]), ())),
            lots=tuple(str(lot["code"]) for lot in lots_on.get(int(r["id"]), ())), certificate=certified.get(r["uid"]),
        )
        for r in rows
    ]


def _load(conn: Connection, pallet_id: int) -> Pallet:
    row = conn.execute(select(pallets).where(pallets.c.id == pallet_id)).mappings().first()
    if row is None:
        raise PalletNotFound(f"no pallet {pallet_id}")
    return _pallets(conn, [row])[0]


def get_pallet(engine: Engine, pallet_id: int) -> Pallet | None:
    with engine.connect() as conn:
        try:
            return _load(conn, pallet_id)
        except PalletNotFound:
            return None


def list_pallets(
    engine: Engine, *, line: str | None = None, shipped: bool | None = None, after_id: int | None = None, limit: int = 50,
) -> list[Pallet]:
    """Pallets, newest first (by id), ``after_id`` for the next page."""
    query = select(pallets).order_by(pallets.c.id.desc()).limit(limit)
    if line is not None:
        query = query.where(pallets.c.line == line)
    if shipped is not None:
        query = query.where(pallets.c.shipped_at.is_not(None) if shipped else pallets.c.shipped_at.is_(None))
    if after_id is not None:
        query = query.where(pallets.c.id < after_id)
    with engine.connect() as conn:
        return _pallets(conn, conn.execute(query).mappings().all())


def pallets_of_lot(engine: Engine, lot_id: int) -> list[Pallet]:
    """The pallets that hold (now, or when they shipped) a carton of ``lot_id``, oldest first:
    a carton of the lot, or a partial carton carried into it."""
    holding = (
        select(pallet_cartons.c.pallet_id)
        .join(cartons, cartons.c.id == pallet_cartons.c.carton_id)
        .where(pallet_cartons.c.removed_at.is_(None),
               (cartons.c.lot_id == lot_id) | (cartons.c.carried_to_lot_id == lot_id))
    )
    with engine.connect() as conn:
        rows = conn.execute(select(pallets).where(pallets.c.id.in_(holding)).order_by(pallets.c.id)).mappings().all()
        return _pallets(conn, rows)


def new_sscc(trace: TraceConfig, serials: LineSerials) -> str:
    """The next SSCC of the line: durable counter first, so it is never given twice."""
    width = 16 - len(trace.company_prefix)
    return sscc(
        extension_digit=trace.sscc_extension_digit, company_prefix=trace.company_prefix,
        serial_reference=serials.sscc_reference(width),
    )


def create_pallet(
    engine: Engine, trace: TraceConfig, serials: LineSerials, *, line: str, at: datetime, by: str,
    destination: str | None = None,
) -> Pallet:
    code = new_sscc(trace, serials)
    with engine.begin() as conn:
        pallet_id = conn.execute(
            insert(pallets).values(
                uid=str(uuid.uuid4()), sscc=code, line=line, created_at=at, created_by=by, destination=destination,
            ).returning(pallets.c.id)
        ).scalar_one()
        return _load(conn, int(pallet_id))


def carton_for_code(engine: Engine, code: str) -> int:
    """The id of the coded carton a scanned code names (GTIN + serial). Raises
    ``PalletInputError`` for a code that does not parse or names no carton serial, and
    ``PalletNotFound`` when no carton has that GTIN and serial."""
    try:
        parsed = parse(code.strip("\r\n"))
    except GS1Error as exc:
        raise PalletInputError(f"not a readable GS1 code: {exc}") from exc
    gtin, serial = parsed.get("01"), parsed.get("21")
    if gtin is None or serial is None:
        raise PalletInputError("the code carries no GTIN (01) and serial (21): it is not a carton's code")
    with engine.connect() as conn:
        found = conn.execute(
            select(cartons.c.id).where(cartons.c.gtin == gtin, cartons.c.serial == serial)
        ).scalar()
    if found is None:
        raise PalletNotFound(f"no carton with GTIN {gtin} and serial {serial}")
    return int(found)


def _lock_open(conn: Connection, pallet_id: int) -> Any:
    # FOR UPDATE on PostgreSQL (SQLite already holds the write lock: BEGIN IMMEDIATE), so a
    # ship and an add cannot pass each other
    row = conn.execute(select(pallets).where(pallets.c.id == pallet_id).with_for_update()).mappings().first()
    if row is None:
        raise PalletNotFound(f"no pallet {pallet_id}")
    if row["shipped_at"] is not None:
        raise PalletConflict(f"pallet {row['sscc']} has shipped: its cartons no longer change")
    return row


def add_carton(
    engine: Engine, pallet_id: int, *, at: datetime, by: str, carton_id: int | None = None, code: str | None = None,
) -> Pallet:
    """Put a closed, coded carton (by id or scanned code) on an open pallet."""
    if (carton_id is None) == (code is None):
        raise PalletInputError("give either a carton id or a scanned code")
    if code is not None:
        carton_id = carton_for_code(engine, code)
    try:
        with _write_transaction(engine) as conn:
            _lock_open(conn, pallet_id)
            carton = conn.execute(select(cartons).where(cartons.c.id == carton_id)).mappings().first()
            if carton is None:
                raise PalletNotFound(f"no carton {carton_id}")
            if carton["closed_at"] is None or carton["serial"] is None:
                raise PalletInputError(f"carton {carton_id} is not closed and coded: only coded cartons go on a pallet")
            current = conn.execute(
                select(pallet_cartons.c.pallet_id, pallets.c.sscc)
                .join(pallets, pallets.c.id == pallet_cartons.c.pallet_id)
                .where(pallet_cartons.c.carton_id == carton_id, pallet_cartons.c.removed_at.is_(None))
            ).first()
            if current is not None:
                where = "this pallet" if int(current[0]) == pallet_id else f"pallet {current[1]}"
                raise PalletConflict(f"carton {carton_id} is on {where} already")
            conn.execute(insert(pallet_cartons).values(
                uid=str(uuid.uuid4()), pallet_id=pallet_id, carton_id=carton_id, added_at=at, added_by=by,
            ))
    except IntegrityError as exc:  # another request put it on a pallet between the check and the insert
        raise PalletConflict(f"carton {carton_id} is on a pallet already") from exc
    with engine.connect() as conn:
        return _load(conn, pallet_id)


def remove_carton(engine: Engine, pallet_id: int, carton_id: int, *, at: datetime, by: str) -> Pallet:
    """Take a carton off an open pallet (its membership row is kept, ``removed_at`` set)."""
    with _write_transaction(engine) as conn:
        _lock_open(conn, pallet_id)
        done = conn.execute(
            update(pallet_cartons).where(
                pallet_cartons.c.pallet_id == pallet_id, pallet_cartons.c.carton_id == carton_id,
                pallet_cartons.c.removed_at.is_(None),
            ).values(removed_at=at, removed_by=by)
        ).rowcount
        if not done:
            raise PalletNotFound(f"carton {carton_id} is not on pallet {pallet_id}")
        return _load(conn, pallet_id)


def certifier_of(trace: TraceConfig, line_id: str, product: str) -> PalletCertifier:
    """The line's issuer of mixed-lot pallets' certificates: the packing center of ``[trace]``."""
    return PalletCertifier(
        line_id=line_id, issuer=trace.packing_center, contact=trace.contact,
        product_name=trace.product_names.get(product, product), origin=trace.origin,
    )


def ship_pallet(
    engine: Engine, pallet_id: int, *, at: datetime, by: str, destination: str | None = None,
    certifier: PalletCertifier | None = None,
) -> Pallet:
    """Mark a pallet shipped (it then changes no more); an empty pallet is refused.

    A pallet whose cartons come from more than one grower lot leaves with the packing center's
    own 合格证 (the 2025 Measures: mixed produce gets a new certificate), issued by ``certifier``
    and committed in the same transaction as the shipping, so a shipped mixed pallet always has
    one. Its number is reserved (committed) first: a crash skips it, never reuses it. Without a
    certifier that has an issuer, a mixed pallet is refused."""
    number: str | None = None
    for _attempt in range(3):
        with engine.connect() as conn:
            mixed = len(_lots_on(conn, [pallet_id]).get(pallet_id, ())) > 1
        if mixed and (certifier is None or not certifier.issuer):
            raise PalletConflict(
                f"pallet {pallet_id} holds fruit of more than one lot: it ships with the packing center's own "
                "合格证, and [trace] packing_center (its 承诺主体) is not set"
            )
        if mixed and number is None and certifier is not None:
            number = reserve_certificate_number(engine, certifier.line_id)
        with _write_transaction(engine) as conn:
            row = _lock_open(conn, pallet_id)
            count = conn.execute(
                select(func.count()).select_from(pallet_cartons).where(
                    pallet_cartons.c.pallet_id == pallet_id, pallet_cartons.c.removed_at.is_(None)
                )
            ).scalar_one()
            if not count:
                raise PalletConflict(f"pallet {row['sscc']} is empty: nothing to ship")
            contributing = _lots_on(conn, [pallet_id]).get(pallet_id, [])
            if len(contributing) > 1:
                if number is None or certifier is None:
                    continue  # it became mixed since the look above: reserve a number, then again
                pallet = _load(conn, pallet_id)
                insert_center_certificate(
                    conn, number=number, line_id=certifier.line_id, subject_kind="pallet", subject_uid=row["uid"],
                    lot_ids=[int(lot["id"]) for lot in contributing],
                    quantity=f"{count} 箱 / {pallet.net_weight_g / 1000:.3f} kg", at=at, by=by, issuer=certifier.issuer,
                    contact=certifier.contact, product_name=certifier.product_name,
                    origin=joined([lot["origin_village"] for lot in contributing]) or certifier.origin,
                )
            values: dict[str, Any] = {"shipped_at": at, "shipped_by": by}
            if destination is not None:
                values["destination"] = destination
            conn.execute(update(pallets).where(pallets.c.id == pallet_id).values(**values))
            return _load(conn, pallet_id)
    raise PalletConflict(f"pallet {pallet_id} kept changing while it was being shipped: try again")


def pallet_lots(engine: Engine, pallet_id: int) -> list[str]:
    """The distinct grower lot codes of the cartons now on the pallet, sorted (a carried
    carton's both lots)."""
    with engine.connect() as conn:
        return [str(lot["code"]) for lot in _lots_on(conn, [pallet_id]).get(pallet_id, ())]


def loose_cartons(engine: Engine, *, line: str, limit: int = 50) -> list[dict[str, Any]]:
    """The line's closed, coded cartons on no pallet, newest first: what the HMI offers to click on."""
    on_pallet = select(pallet_cartons.c.carton_id).where(pallet_cartons.c.removed_at.is_(None))
    query = (
        select(cartons, lots.c.code.label("lot_code"))
        .join(lots, lots.c.id == cartons.c.lot_id)
        .where(
            lots.c.line == line, cartons.c.serial.is_not(None), cartons.c.closed_at.is_not(None),
            cartons.c.id.not_in(on_pallet),
        )
        .order_by(cartons.c.id.desc()).limit(limit)
    )
    with engine.connect() as conn:
        return [
            {
                "carton_id": int(r["id"]), "gtin": r["gtin"], "serial": r["serial"], "lot": r["lot_code"],
                "quality_class": r["quality_class"], "size_class": r["size_class"], "net_weight_g": _net_weight_g(r),
                "fruit_count": r["fruit_count"], "closed_at": as_utc(r["closed_at"]),
            }
            for r in conn.execute(query).mappings()
        ]


def pallet_label_of(pallet: Pallet, trace: TraceConfig, recipe: Recipe) -> PalletLabel:
    """A pallet's SSCC label: what is on it, by product, class and size (the recipe's Chinese
    class names, the configured product name), with its lots and, once shipped, the ship date
    and (mixed lots) the center's certificate number."""
    product = trace.product_names.get(recipe.product, recipe.product)
    sizes = {s.id: s.name or s.id for s in recipe.size_classes}
    kinds: dict[tuple[str, str | None], int] = {}
    for carton in pallet.cartons:
        key = (carton.quality_class, carton.size_class)
        kinds[key] = kinds.get(key, 0) + 1
    contents = []
    for (quality, size), count in kinds.items():
        try:
            quality_name = recipe.quality_class(quality).name_zh
        except KeyError:
            quality_name = quality
        size_name = sizes.get(size, size) if size else "混装"
        contents.append(f"{product} {quality_name} {size_name} × {count} 箱")
    return PalletLabel(
        sscc=pallet.sscc, packing_center=trace.packing_center, carton_count=pallet.carton_count,
        net_weight_g=pallet.net_weight_g, contents=tuple(contents), lots=pallet.lots, created_at=pallet.created_at,
        shipped_at=pallet.shipped_at, destination=pallet.destination,
        certificate_number=pallet.certificate.number if pallet.certificate else None,
    )
