"""The packing center's own 承诺达标合格证, for a carton or pallet whose fruit come from more than
one grower lot.

The 2025 Measures (农业农村部令2025年第4号) ask for a new certificate when produce of different
producers is mixed or repacked (docs/traceability.md, "Certificates"). Owns the
``center_certificates`` table and ``issue_center_certificate``, which is generic over the
subject: a carton (``grading.trace.carton_codes`` calls it when a mixed carton closes) or a
pallet. A certificate's number comes from the line's durable counter ``certificate:<line id>``
(``grading.trace.serials.reserve``: committed before the number is used, so a crash skips a
number and never gives one twice) and carries the line's id, like carton serials, so two lines
never give the same number. Issuing is idempotent per subject: a second call returns the
certificate already issued.

``reserve_certificate_number`` and ``insert_center_certificate`` are the two halves, for a
caller that must commit the certificate with what it certifies (a pallet's shipping,
``grading.trace.pallets``).

Also ``carton_lots``: the lots a carton's fruit come from (its fruit rows' distinct lots, in
the order their first fruit went in), which the label and the consumer page show.

Blocking (database): call off the event loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, Engine, func, insert, select
from sqlalchemy.exc import IntegrityError

from grading.schema import as_utc, center_certificates, fruit, lots
from grading.trace.serials import reserve

SubjectKind = Literal["carton", "pallet"]
NUMBER_MAX_LENGTH = 40


@dataclass(frozen=True, slots=True)
class CenterCertificate:
    """A certificate the packing center issued (its fields as printed)."""

    number: str
    subject_kind: str
    subject_uid: str
    lot_codes: tuple[str, ...]
    product_name: str
    quantity: str
    origin: str
    issuer: str
    contact: str
    issued_at: datetime
    issued_by: str
    line_id: str


def certificate_from_row(row: Mapping[Any, Any]) -> CenterCertificate:
    values = {name: row[name] for name in CenterCertificate.__dataclass_fields__}
    values["lot_codes"] = tuple(values["lot_codes"] or ())
    values["issued_at"] = as_utc(values["issued_at"])
    return CenterCertificate(**values)


def certificate_number(line_id: str, value: int) -> str:
    """``<line id>.Z<n>``: the line's id inside (Z for 证), so no two lines give the same number."""
    number = f"{line_id}.Z{value}"
    if len(number) > NUMBER_MAX_LENGTH:
        raise RuntimeError(f"certificate number {number!r} is longer than {NUMBER_MAX_LENGTH} characters")
    return number


def center_certificate_of(engine: Engine | Connection, subject_kind: str, subject_uid: str) -> CenterCertificate | None:
    query = select(center_certificates).where(
        center_certificates.c.subject_kind == subject_kind, center_certificates.c.subject_uid == subject_uid
    )
    if isinstance(engine, Connection):
        row = engine.execute(query).mappings().first()
    else:
        with engine.connect() as conn:
            row = conn.execute(query).mappings().first()
    return None if row is None else certificate_from_row(row)


def reserve_certificate_number(engine: Engine, line_id: str) -> str:
    """The next certificate number of the line, committed before it is used anywhere (a number
    reserved and then not used is skipped, never given again)."""
    (value,) = reserve(engine, f"certificate:{line_id}")
    return certificate_number(line_id, value)


def insert_center_certificate(
    conn: Connection,
    *,
    number: str,
    line_id: str,
    subject_kind: SubjectKind,
    subject_uid: str,
    lot_ids: Sequence[int],
    quantity: str,
    at: datetime,
    by: str,
    issuer: str,
    contact: str = "",
    product_name: str = "",
    origin: str = "",
) -> None:
    """Store a certificate under a reserved ``number`` in the caller's transaction, so it commits
    with what it certifies (a pallet's shipping). ``lot_ids``: at least two distinct, in order."""
    distinct = list(dict.fromkeys(lot_ids))
    if len(distinct) < 2:
        raise ValueError("a packing center certificate is for fruit of more than one lot")
    codes = dict(conn.execute(select(lots.c.id, lots.c.code).where(lots.c.id.in_(distinct))).all())
    missing = [i for i in distinct if i not in codes]
    if missing:
        raise ValueError(f"no lot {', '.join(map(str, missing))}")
    conn.execute(insert(center_certificates).values(
        number=number, subject_kind=subject_kind, subject_uid=subject_uid,
        lot_codes=[codes[i] for i in distinct], product_name=product_name, quantity=quantity, origin=origin,
        issuer=issuer, contact=contact, issued_at=at, issued_by=by, line_id=line_id,
    ))


def issue_center_certificate(
    engine: Engine,
    *,
    line_id: str,
    subject_kind: SubjectKind,
    subject_uid: str,
    lot_ids: Sequence[int],
    quantity: str,
    at: datetime,
    by: str,
    issuer: str,
    contact: str = "",
    product_name: str = "",
    origin: str = "",
) -> CenterCertificate:
    """Issue (and store, committed) the center's certificate for a subject of mixed lots.

    ``lot_ids``: the contributing grower lots, in the order to print them (at least two distinct).
    Returns the certificate already issued for the subject, if there is one.
    """
    if len(set(lot_ids)) < 2:
        raise ValueError("a packing center certificate is for fruit of more than one lot")
    found = center_certificate_of(engine, subject_kind, subject_uid)
    if found is not None:
        return found
    number = reserve_certificate_number(engine, line_id)  # durable before the number is used anywhere
    try:
        with engine.begin() as conn:
            insert_center_certificate(
                conn, number=number, line_id=line_id, subject_kind=subject_kind, subject_uid=subject_uid,
                lot_ids=lot_ids, quantity=quantity, at=at, by=by, issuer=issuer, contact=contact,
                product_name=product_name, origin=origin,
            )
    except IntegrityError:  # issued for this subject meanwhile: that one stands, this number is skipped
        found = center_certificate_of(engine, subject_kind, subject_uid)
        if found is None:
            raise
        return found
    result = center_certificate_of(engine, subject_kind, subject_uid)
    assert result is not None
    return result


def carton_lots(conn: Connection, carton_id: int) -> list[Mapping[Any, Any]]:
    """The lot rows of a carton's fruit, in the order each lot's first fruit went in."""
    first = (
        select(fruit.c.lot_id, func.min(fruit.c.id).label("first_id"))
        .where(fruit.c.carton_id == carton_id).group_by(fruit.c.lot_id).subquery()
    )
    return list(conn.execute(
        select(lots).select_from(lots.join(first, first.c.lot_id == lots.c.id)).order_by(first.c.first_id)
    ).mappings().all())


def joined(values: Sequence[str | None]) -> str:
    """Distinct non-empty values, in order, joined by 、 (several lots' origins or 追溯码)."""
    return "、".join(dict.fromkeys(v for v in values if v))
