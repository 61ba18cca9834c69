"""What-if re-grade: a closed lot's stored per-fruit measurements through another recipe (or the
same one with edited limits), and both pack-outs side by side with their value difference.

Each fruit row is turned back into the ``FruitMeasurement`` it was graded from (every field the
grader reads is a column of the row) and graded again; lateness and recirculation stay as they
were (they are about the line, not the grade). The re-graded pack-out is built by the same
``build_packout`` from the same kind of groups as the lot's own, so with the lot's own recipe
version it reproduces the lot's pack-out exactly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from grading.grader import Grader
from grading.lots.packout import FruitGroup, Packout, build_packout, lot_packout
from grading.lots.settlement import PriceTable, packout_value_cny
from grading.measurement import FruitMeasurement
from grading.recipe import Recipe
from grading.schema import fruit

_BATCH = 5000


def _measurement(row: Any) -> FruitMeasurement:
    return FruitMeasurement(
        weight_g=row.weight_g,
        diameter_major_mm=row.diameter_major_mm if row.diameter_major_mm is not None else float("nan"),
        diameter_minor_mm=row.diameter_minor_mm if row.diameter_minor_mm is not None else float("nan"),
        area_cm2=row.area_cm2 if row.area_cm2 is not None else float("nan"),
        colour_fractions={k: (v if v is not None else float("nan")) for k, v in (row.colour_fractions or {}).items()},
        defect_count=row.defect_count,
        defect_area_cm2=row.defect_area_cm2 if row.defect_area_cm2 is not None else float("nan"),
        elongation=row.elongation if row.elongation is not None else float("nan"),
        volume_cm3=row.volume_cm3,
        quality_score=row.quality_score,
        flags=frozenset(row.flags or ()),
    )


def _rows(engine: Engine, lot_id: int) -> Iterator[Any]:
    columns = [fruit.c[name] for name in (
        "id", "uid", "weight_g", "diameter_major_mm", "diameter_minor_mm", "area_cm2", "colour_fractions",
        "defect_count", "defect_area_cm2", "elongation", "volume_cm3", "quality_score", "flags", "quality_class",
        "size_class", "late", "outlet",
    )]
    after = 0
    while True:
        with engine.connect() as conn:
            batch = conn.execute(
                select(*columns).where(fruit.c.lot_id == lot_id, fruit.c.id > after).order_by(fruit.c.id).limit(_BATCH)
            ).all()
        if not batch:
            return
        yield from batch
        after = batch[-1].id


@dataclass
class WhatIf:
    actual: Packout
    regraded: Packout
    changes: Counter[tuple[str, str | None, str, str | None]]
    changed_uids: list[str]


def regrade_lot(engine: Engine, lot_id: int, recipe: Recipe) -> WhatIf:
    grader = Grader(recipe)
    groups: Counter[tuple[str, str | None, bool, bool]] = Counter()
    weights: Counter[tuple[str, str | None, bool, bool]] = Counter()
    weighed: Counter[tuple[str, str | None, bool, bool]] = Counter()
    changes: Counter[tuple[str, str | None, str, str | None]] = Counter()
    changed: list[str] = []
    for row in _rows(engine, lot_id):
        grade = grader.grade(_measurement(row))
        key = (grade.quality_class, grade.size_class, bool(row.late), row.outlet == 0)
        groups[key] += 1
        if row.weight_g is not None:
            weights[key] += round(row.weight_g * 1000)
            weighed[key] += 1
        if (grade.quality_class, grade.size_class) != (row.quality_class, row.size_class):
            changes[(row.quality_class, row.size_class, grade.quality_class, grade.size_class)] += 1
            changed.append(row.uid)
    regraded = build_packout(
        FruitGroup(q, s, late, rec, n, weights[(q, s, late, rec)], weighed[(q, s, late, rec)])
        for (q, s, late, rec), n in groups.items()
    )
    return WhatIf(lot_packout(engine, lot_id), regraded, changes, changed)


def whatif_report(result: WhatIf, prices: PriceTable, class_order: list[str], changed_limit: int = 1000) -> dict[str, Any]:
    # Cartons are physical: a re-grade does not repack them, so neither side lists them.
    result.actual.cartons = []
    actual_value = packout_value_cny(result.actual, prices)
    regraded_value = packout_value_cny(result.regraded, prices)
    return {
        "actual": result.actual.as_dict(None, class_order) | {"value_cny": actual_value},
        "whatif": result.regraded.as_dict(None, class_order) | {"value_cny": regraded_value},
        "value_difference_cny": round(regraded_value - actual_value, 2),
        "changed_fruit": len(result.changed_uids),
        "changes": [
            {"from_quality": a, "from_size": b, "to_quality": c, "to_size": d, "fruit": n}
            for (a, b, c, d), n in sorted(result.changes.items(), key=lambda kv: (-kv[1], str(kv[0])))
        ],
        "changed_uids": result.changed_uids[:changed_limit],
    }
