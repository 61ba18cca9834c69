"""A lot's pack-out: count and kg per quality class x size class, with percentages, plus
rejects (cull), recheck, recirculated and late fruit, and cartons per class.

The totals are computed in SQL (``GROUP BY`` over the lot's fruit rows, served from the
``ix_fruit_lot_packout`` index), never by loading rows into Python. Weights are summed as whole
milligrams (each fruit's weight rounded to 1 mg, far below any scale's resolution), so every
figure adds up exactly: the cells sum to the lot's rows in count and in weight, and a what-if
re-grade that changes no fruit gives the same figures to the milligram (``grading.lots.whatif``
builds its report with ``build_packout`` from the same kind of groups).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import BigInteger, Engine, case, cast, func, select

from grading.grader import CULL, RECHECK
from grading.schema import cartons, fruit
from grading.store import Lot


@dataclass(frozen=True, slots=True)
class FruitGroup:
    """Fruit of one lot alike in class, size, lateness and recirculation, summed."""

    quality_class: str
    size_class: str | None
    late: bool
    recirculated: bool  # outlet 0 without being late: no outlet could take it
    fruit: int
    weight_mg: int  # of the weighed fruit
    weighed: int


@dataclass
class Cell:
    quality_class: str
    size_class: str | None
    fruit: int = 0
    weight_mg: int = 0
    weighed: int = 0

    def as_dict(self, total_fruit: int, total_mg: int) -> dict[str, Any]:
        return {
            "quality_class": self.quality_class,
            "size_class": self.size_class,
            "fruit": self.fruit,
            "weight_kg": self.weight_mg / 1e6,
            "weighed_fruit": self.weighed,
            "mean_weight_g": round(self.weight_mg / self.weighed / 1000.0, 1) if self.weighed else None,
            "fruit_percent": round(100.0 * self.fruit / total_fruit, 2) if total_fruit else 0.0,
            "weight_percent": round(100.0 * self.weight_mg / total_mg, 2) if total_mg else 0.0,
        }


@dataclass
class Packout:
    fruit: int
    weight_mg: int
    cells: list[Cell]
    by_quality: dict[str, Cell]
    late: Cell
    recirculated: Cell
    cartons: list[dict[str, Any]] = field(default_factory=list)

    def cell(self, quality_class: str, size_class: str | None) -> Cell:
        for c in self.cells:
            if c.quality_class == quality_class and c.size_class == size_class:
                return c
        return Cell(quality_class, size_class)

    def as_dict(self, lot: Lot | None = None, class_order: Iterable[str] = ()) -> dict[str, Any]:
        order = {cls: i for i, cls in enumerate([*class_order, CULL, RECHECK])}

        def key(c: Cell) -> tuple[int, str, str]:
            return (order.get(c.quality_class, len(order)), c.quality_class, c.size_class or "")

        total, mg = self.fruit, self.weight_mg
        out: dict[str, Any] = {
            "fruit": total,
            "weight_kg": mg / 1e6,
            "cells": [c.as_dict(total, mg) for c in sorted(self.cells, key=key)],
            "quality_classes": [c.as_dict(total, mg) for c in sorted(self.by_quality.values(), key=key)],
            "rejects": self.by_quality.get(CULL, Cell(CULL, None)).as_dict(total, mg),
            "recheck": self.by_quality.get(RECHECK, Cell(RECHECK, None)).as_dict(total, mg),
            "recirculated": self.recirculated.as_dict(total, mg),
            "late": self.late.as_dict(total, mg),
            "cartons": self.cartons,
        }
        if lot is not None:
            out["lot"] = {
                "id": lot.id, "code": lot.code, "grower": lot.grower, "grower_id": lot.grower_id,
                "product": lot.product, "variety": lot.variety, "recipe": lot.recipe, "recipe_hash": lot.recipe_hash,
                "started_at": lot.started_at, "ended_at": lot.ended_at,
                "received_weight_kg": lot.received_weight_kg,
            }
            out["yield_percent"] = (
                round(100.0 * mg / 1e6 / lot.received_weight_kg, 2) if lot.received_weight_kg else None
            )
        return out


def build_packout(groups: Iterable[FruitGroup], carton_rows: Iterable[Mapping[str, Any]] = ()) -> Packout:
    cells: dict[tuple[str, str | None], Cell] = {}
    by_quality: dict[str, Cell] = {}
    late, recirculated = Cell("late", None), Cell("recirculated", None)
    fruit_total = weight_total = 0
    for g in groups:
        targets = [
            cells.setdefault((g.quality_class, g.size_class), Cell(g.quality_class, g.size_class)),
            by_quality.setdefault(g.quality_class, Cell(g.quality_class, None)),
        ]
        if g.late:
            targets.append(late)
        elif g.recirculated:
            targets.append(recirculated)
        for cell in targets:
            cell.fruit += g.fruit
            cell.weight_mg += g.weight_mg
            cell.weighed += g.weighed
        fruit_total += g.fruit
        weight_total += g.weight_mg
    return Packout(
        fruit_total, weight_total, [c for c in cells.values() if c.fruit], by_quality, late, recirculated,
        [dict(row) for row in carton_rows],
    )


_WEIGHT_MG = cast(func.round(fruit.c.weight_g * 1000), BigInteger)


def packout_groups(engine: Engine, lot_id: int) -> list[FruitGroup]:
    """The lot's fruit rows summed by class, size, lateness and recirculation, in SQL."""
    recirculated = case((fruit.c.outlet == 0, 1), else_=0)
    query = (
        select(
            fruit.c.quality_class, fruit.c.size_class, fruit.c.late, recirculated.label("recirculated"),
            func.count(), func.coalesce(func.sum(_WEIGHT_MG), 0), func.count(fruit.c.weight_g),
        )
        .where(fruit.c.lot_id == lot_id)
        .group_by(fruit.c.quality_class, fruit.c.size_class, fruit.c.late, recirculated)
    )
    with engine.connect() as conn:
        return [
            FruitGroup(str(q), s, bool(late), bool(rec), int(n), int(mg), int(weighed))
            for q, s, late, rec, n, mg, weighed in conn.execute(query)
        ]


def carton_summary(engine: Engine, lot_id: int) -> list[dict[str, Any]]:
    """Cartons per quality and size class: how many, closed, fruit in them, out of tolerance."""
    query = (
        select(
            cartons.c.quality_class, cartons.c.size_class, func.count().label("cartons"),
            func.count(cartons.c.closed_at).label("closed"),
            func.coalesce(func.sum(cartons.c.fruit_count), 0).label("fruit"),
            func.coalesce(func.sum(case((cartons.c.compliant.is_(False), 1), else_=0)), 0).label("out_of_tolerance"),
        )
        .where(cartons.c.lot_id == lot_id)
        .group_by(cartons.c.quality_class, cartons.c.size_class)
        .order_by(cartons.c.quality_class, cartons.c.size_class)
    )
    with engine.connect() as conn:
        return [
            {"quality_class": q, "size_class": s, "cartons": int(n), "closed": int(c), "fruit": int(f),
             "out_of_tolerance": int(o)}
            for q, s, n, c, f, o in conn.execute(query)
        ]


def lot_packout(engine: Engine, lot_id: int) -> Packout:
    return build_packout(packout_groups(engine, lot_id), carton_summary(engine, lot_id))


def packout_csv(report: Mapping[str, Any]) -> str:
    """The class x size cells as CSV (one row per cell, then the totals)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["quality_class", "size_class", "fruit", "weight_kg", "fruit_percent", "weight_percent", "mean_weight_g"])
    for c in report["cells"]:
        writer.writerow([c["quality_class"], c["size_class"] or "", c["fruit"], f"{c['weight_kg']:.6f}",
                         c["fruit_percent"], c["weight_percent"], "" if c["mean_weight_g"] is None else c["mean_weight_g"]])
    for name in ("rejects", "recheck", "recirculated", "late"):
        c = report[name]
        writer.writerow([name, "", c["fruit"], f"{c['weight_kg']:.6f}", c["fruit_percent"], c["weight_percent"], ""])
    writer.writerow(["total", "", report["fruit"], f"{report['weight_kg']:.6f}", 100.0 if report["fruit"] else 0.0,
                     100.0 if report["weight_kg"] else 0.0, ""])
    return out.getvalue()
