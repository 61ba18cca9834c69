"""What arrives with a lot at receiving: the platform's 追溯码 and each grower's 合格证.

Owns ``lots.platform_trace_code`` and the ``incoming_certificates`` table.

* The 追溯码 is issued by the national traceability platform (国家农产品质量安全追溯管理信息平台)
  and its structure is not public, so it is kept opaque: stored as given after trimming, never
  computed or checked beyond what printing it needs (no control characters, at most
  ``TRACE_CODE_MAX_LENGTH`` characters). It may be given at lot start or later, since the
  platform often issues it after the fruit came in.
* An incoming 承诺达标合格证 is recorded as the grower handed it over (paper, electronic or
  handwritten): its fields are what was written on it, free text, because growers' certificates
  vary; ``issued_on`` is its 开具时间 as a date.

Nothing here speaks HTTP; blocking (database): call off the event loop.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import Connection, Engine, insert, select, update

from grading.schema import as_utc, incoming_certificates, lots

TRACE_CODE_MAX_LENGTH = 128
CertificateForm = Literal["paper", "electronic", "handwritten"]
CERTIFICATE_FORMS: tuple[str, ...] = ("paper", "electronic", "handwritten")


class ReceivingError(ValueError):
    """A value received with a lot that cannot be stored (HTTP 422, naming ``field``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def clean_text(value: str, field: str, max_length: int) -> str:
    """``value`` trimmed; refused when it holds a control character or is too long."""
    text = value.strip()
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in text):
        raise ReceivingError(field, "must not contain control characters")
    if len(text) > max_length:
        raise ReceivingError(field, f"at most {max_length} characters (got {len(text)})")
    return text


def clean_trace_code(value: str | None, field: str = "platform_trace_code") -> str | None:
    """The 追溯码 as stored: trimmed; None when absent or blank."""
    if value is None:
        return None
    return clean_text(value, field, TRACE_CODE_MAX_LENGTH) or None


@dataclass(frozen=True, slots=True)
class IncomingCertificate:
    """A grower's 承诺达标合格证 as received (the fields of the 2025 Measures, as written on it)."""

    issuer: str  # 承诺主体 (name)
    form: CertificateForm = "paper"
    number: str = ""  # as printed, if it has one
    contact: str = ""  # 联系方式
    product_name: str = ""  # 产品名称
    quantity: str = ""  # 数量 (weight and/or count, as written)
    origin: str = ""  # 产地
    issued_on: date | None = None  # 开具时间
    note: str = ""
    # filled in when stored
    id: int | None = None
    uid: str = ""
    lot_id: int | None = None
    received_at: datetime | None = None
    received_by: str = ""


_LIMITS = {"issuer": 100, "number": 64, "contact": 100, "product_name": 64, "quantity": 64, "origin": 200, "note": 2000}


def checked(certificate: IncomingCertificate, field: str = "certificate") -> IncomingCertificate:
    """``certificate`` with its texts trimmed; ``ReceivingError`` naming ``field.<name>``."""
    from dataclasses import replace

    values: dict[str, Any] = {
        name: clean_text(getattr(certificate, name), f"{field}.{name}", limit) for name, limit in _LIMITS.items()
    }
    if not values["issuer"]:
        raise ReceivingError(f"{field}.issuer", "the 承诺主体 (issuer) is required")
    if certificate.form not in CERTIFICATE_FORMS:
        raise ReceivingError(f"{field}.form", f"one of {', '.join(CERTIFICATE_FORMS)}")
    return replace(certificate, **values)


def certificate_from_row(row: Mapping[Any, Any]) -> IncomingCertificate:
    values = {name: row[name] for name in IncomingCertificate.__dataclass_fields__}
    values["received_at"] = as_utc(values["received_at"])
    return IncomingCertificate(**values)


def insert_certificates(
    conn: Connection, lot_id: int, certificates: Sequence[IncomingCertificate], *, at: datetime, by: str
) -> list[int]:
    """Insert checked ``certificates`` for ``lot_id`` in the caller's transaction."""
    ids = []
    for cert in certificates:
        ids.append(int(conn.execute(
            insert(incoming_certificates).values(
                uid=str(uuid.uuid4()), lot_id=lot_id, number=cert.number, issuer=cert.issuer, contact=cert.contact,
                product_name=cert.product_name, quantity=cert.quantity, origin=cert.origin,
                issued_on=cert.issued_on, form=cert.form, received_at=at, received_by=by, note=cert.note,
            )
        ).inserted_primary_key[0]))  # type: ignore[index]
    return ids


def record_certificate(
    engine: Engine, lot_id: int, certificate: IncomingCertificate, *, at: datetime, by: str
) -> IncomingCertificate:
    """Store a certificate received for ``lot_id`` (the lot must exist: ``LotNotFound``)."""
    from grading.lots.lots import LotNotFound

    cert = checked(certificate)
    with engine.begin() as conn:
        if conn.execute(select(lots.c.id).where(lots.c.id == lot_id)).first() is None:
            raise LotNotFound(f"no lot {lot_id}")
        (cert_id,) = insert_certificates(conn, lot_id, [cert], at=at, by=by)
        row = conn.execute(select(incoming_certificates).where(incoming_certificates.c.id == cert_id)).mappings().one()
    return certificate_from_row(row)


def lot_certificates(engine: Engine, lot_id: int) -> list[IncomingCertificate]:
    """The certificates received for ``lot_id``, in the order they were recorded."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(incoming_certificates).where(incoming_certificates.c.lot_id == lot_id)
            .order_by(incoming_certificates.c.id)
        ).mappings().all()
    return [certificate_from_row(r) for r in rows]


def set_platform_trace_code(engine: Engine, lot_id: int, code: str | None) -> tuple[str | None, str | None]:
    """Set (or, with None or blank, clear) a lot's 追溯码; returns (before, after)."""
    from grading.lots.lots import LotNotFound

    value = clean_trace_code(code)
    with engine.begin() as conn:
        before = conn.execute(select(lots.c.id, lots.c.platform_trace_code).where(lots.c.id == lot_id)).first()
        if before is None:
            raise LotNotFound(f"no lot {lot_id}")
        conn.execute(update(lots).where(lots.c.id == lot_id).values(platform_trace_code=value))
    return before[1], value
