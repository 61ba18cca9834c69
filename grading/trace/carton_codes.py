"""The GS1 identity a carton gets when it closes: GTIN, serial, pack date, net weight.

Owns ``CartonCoder``: for a closed carton of a line with a ``[trace]`` table it takes the
GTIN of the carton's kind (``TraceConfig.gtin_for``), a serial from the line's durable counter
(``LineSerials``: committed before it is used, so a crash skips a serial and never reuses
one), the pack date (the close's local date) and the net weight (the carton scale's reading,
else the sum of its fruit, in whole grams), builds the element string and Digital Link URI
(``codes.carton_code``) and stores them on the carton's row. A carton whose fruit come from
more than one lot (``[lots] carry_over_partial_cartons``) first gets the packing center's own
certificate (``grading.trace.certificates``), committed before the carton is coded, so no label
can show the carton without it. ``carton_label_of`` builds a coded carton's label from its row
and lots. Also ``missing_gtins``, which the composition root uses to refuse a start whose
packing outlets pack a kind with no GTIN.

A carton with no fruit (net weight 0 g) is not coded: there is nothing to label.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import tzinfo

from sqlalchemy import Engine, or_, select, update

from grading.config import OutletSettings
from grading.lots.cartons import Carton, carton_class
from grading.lots.lots import LotError
from grading.recipe import Recipe
from grading.schema import cartons, lots
from grading.trace.certificates import (
    CenterCertificate,
    carton_lots,
    center_certificate_of,
    issue_center_certificate,
    joined,
)
from grading.trace.codes import CartonCode, TraceConfig, carton_code
from grading.trace.gs1 import GS1Error, check_element, parse_unbracketed
from grading.trace.labels import CartonLabel, ComplianceCertificate
from grading.trace.serials import LineSerials

log = logging.getLogger(__name__)

ANY_SIZE = "*"  # the size class in [trace] gtins of an outlet that packs every size


def gtin_key(product: str, quality_class: str, size_class: str | None) -> tuple[str, str, str]:
    return product, quality_class, size_class if size_class is not None else ANY_SIZE


def missing_gtins(trace: TraceConfig, product: str, outlets: Sequence[OutletSettings]) -> list[str]:
    """The carton kinds the packing outlets pack that ``[trace] gtins`` has no GTIN for."""
    missing = []
    for outlet in outlets:
        if outlet.role != "pack":
            continue
        key = gtin_key(product, *carton_class(outlet))
        try:
            trace.gtin_for(*key)
        except KeyError:
            missing.append(f"outlet {outlet.number}: product={key[0]!r} quality_class={key[1]!r} size_class={key[2]!r}")
    return missing


class CartonCoder:
    """Codes closed cartons of one line. Blocking (database): call off the event loop."""

    def __init__(
        self, engine: Engine, trace: TraceConfig, serials: LineSerials, *, product: str, timezone: tzinfo
    ) -> None:
        self._engine = engine
        self._trace = trace
        self._serials = serials
        self._product = product
        self._timezone = timezone

    @staticmethod
    def check_lot_code(code: str) -> None:
        """Refuse (``LotError``) a lot code its cartons' AI (10) could not carry."""
        try:
            check_element("10", code)
        except GS1Error as exc:
            raise LotError(f"lot code {code!r} cannot be printed in the cartons' barcodes: {exc}") from exc

    def code(self, carton: Carton) -> Carton:
        """``carton`` (closed) with its code, stored; unchanged when it has one already or is empty."""
        if carton.serial is not None or carton.closed_at is None:
            return carton
        weight_g = round(carton.net_weight_g or 0.0)
        if weight_g <= 0:
            return carton
        self.certify(carton)  # committed before the code: a coded carton's label always has it
        with self._engine.connect() as conn:
            lot_code = conn.execute(select(lots.c.code).where(lots.c.id == carton.lot_id)).scalar_one()
        gtin = self._trace.gtin_for(*gtin_key(self._product, carton.quality_class, carton.size_class))
        pack_date = carton.closed_at.astimezone(self._timezone).date()
        serial = self._serials.carton_serial()  # durable before it is written anywhere
        code: CartonCode = carton_code(
            gtin=gtin, lot=lot_code, serial=serial, pack_date=pack_date, net_weight_g=weight_g
        )
        values = {
            "gtin": code.gtin, "serial": code.serial, "pack_date": code.pack_date,
            "element_string": code.element_string(), "digital_link": code.digital_link(self._trace.digital_link_base),
        }
        with self._engine.begin() as conn:
            conn.execute(update(cartons).where(cartons.c.id == carton.id, cartons.c.serial.is_(None)).values(**values))
        log.info("carton %d coded %s", carton.id, code.hri())
        return replace(carton, **values)  # type: ignore[arg-type]

    def certify(self, carton: Carton) -> CenterCertificate | None:
        """The packing center's certificate for ``carton`` (closed) when its fruit come from more
        than one lot, issued now if it has none yet; None for a single-lot carton."""
        if carton.closed_at is None:
            return None
        with self._engine.connect() as conn:
            contributing = carton_lots(conn, carton.id)
            uid = conn.execute(select(cartons.c.uid).where(cartons.c.id == carton.id)).scalar_one()
        if len(contributing) < 2:
            return None
        certificate = issue_center_certificate(
            self._engine, line_id=self._serials.line_id, subject_kind="carton", subject_uid=uid,
            lot_ids=[int(lot["id"]) for lot in contributing],
            quantity=quantity_text(round(carton.net_weight_g or 0.0), carton.fruit_count),
            at=carton.closed_at, by=carton.closed_by or "", issuer=self._trace.packing_center,
            contact=self._trace.contact, product_name=self._trace.product_names.get(self._product, self._product),
            origin=joined([lot["origin_village"] for lot in contributing]) or self._trace.origin,
        )
        log.info("carton %d of lots %s: certificate %s", carton.id, ", ".join(certificate.lot_codes), certificate.number)
        return certificate


def quantity_text(weight_g: int, count: int | None) -> str:
    """数量 as the certificate prints it: net kg, and the fruit count when known."""
    return f"{weight_g / 1000:.3f} kg" + (f" / {count} 个" if count else "")


def code_interrupted(engine: Engine, coder: CartonCoder, line: str) -> list[Carton]:
    """Code the cartons a stop interrupted: finished (totals written), not empty, uncoded, of
    the line's open lot or of its last closed one (a close or switch stopped between a carton's
    totals and its code). Older uncoded cartons (packed before ``[trace]``) are left as they are.
    Returns the cartons coded."""
    from grading.lots.cartons import carton_from_row

    with engine.connect() as conn:
        open_lot = conn.execute(select(lots.c.id).where(lots.c.line == line, lots.c.ended_at.is_(None))).scalar()
        last_closed = conn.execute(
            select(lots.c.id).where(lots.c.line == line, lots.c.ended_at.is_not(None))
            .order_by(lots.c.ended_at.desc(), lots.c.id.desc()).limit(1)
        ).scalar()
        lot_ids = [i for i in (open_lot, last_closed) if i is not None]
        rows = conn.execute(
            select(cartons).where(
                or_(cartons.c.lot_id.in_(lot_ids), cartons.c.carried_to_lot_id.in_(lot_ids)), cartons.c.closed_at.is_not(None), cartons.c.fruit_count.is_not(None),
                cartons.c.serial.is_(None),
            ).order_by(cartons.c.id)
        ).mappings().all()
    coded = [coder.code(carton_from_row(row)) for row in rows]
    return [c for c in coded if c.serial is not None]


def carton_label_of(engine: Engine, trace: TraceConfig, recipe: Recipe, carton_id: int) -> CartonLabel | None:
    """The label of a coded carton, from its row and its lot's (None: no such carton, or uncoded).

    The code is read back from the stored element string, so a reprint carries exactly what was
    given at close; the names printed are the recipe's Chinese class names and the configured
    product name."""
    with engine.connect() as conn:
        row = conn.execute(select(cartons).where(cartons.c.id == carton_id)).mappings().first()
        if row is None or row["element_string"] is None:
            return None
        lot = conn.execute(select(lots).where(lots.c.id == row["lot_id"])).mappings().one()
        contributing = carton_lots(conn, carton_id) or [lot]
        issued = center_certificate_of(conn, "carton", row["uid"]) if len(contributing) > 1 else None
    values = {e.ai: e.value for e in parse_unbracketed(row["element_string"])}
    code = carton_code(
        gtin=values["01"], lot=values["10"], serial=values["21"], pack_date=row["pack_date"],
        net_weight_g=int(values["3103"]),
    )
    try:
        quality = recipe.quality_class(row["quality_class"]).name_zh
    except KeyError:
        quality = row["quality_class"]
    sizes = {s.id: s.name or s.id for s in recipe.size_classes}
    size = sizes.get(row["size_class"], row["size_class"]) if row["size_class"] else "混装"
    product = trace.product_names.get(recipe.product, recipe.product)
    origin = joined([lot_row["origin_village"] for lot_row in contributing]) or trace.origin
    count = row["fruit_count"]
    if issued is not None:  # mixed lots: the center's own certificate, as issued
        certificate = ComplianceCertificate(
            product_name=issued.product_name, quantity=issued.quantity, origin=issued.origin, issuer=issued.issuer,
            contact=issued.contact, issued_at=issued.issued_at, lots=issued.lot_codes, number=issued.number,
        )
    else:  # one lot: the center's promise for that lot
        certificate = ComplianceCertificate(
            product_name=product, quantity=quantity_text(code.net_weight_g, count), origin=origin,
            issuer=trace.packing_center, contact=trace.contact, issued_at=row["closed_at"],
            lots=tuple(lot_row["code"] for lot_row in contributing),
        )
    # several growers are not printed as one name (privacy masking would run them together):
    # the certificate block lists the lots
    grower = lot["grower"] or None if len(contributing) == 1 else None
    return CartonLabel(
        code=code, digital_link=row["digital_link"], product=product, quality_class=quality, size_class=size,
        origin=origin, grower=grower, grower_privacy=trace.grower_privacy, certificate=certificate,
        fruit_count=count, packing_center=trace.packing_center,
        platform_trace_code=joined([lot_row["platform_trace_code"] for lot_row in contributing]) or None,
    )
