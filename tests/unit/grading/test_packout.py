"""A lot's pack-out adds up exactly to its fruit rows, on SQLite and PostgreSQL.

The rows are made here (random classes, sizes, weights at a scale's 0.1 g, late and
recirculated fruit, fruit without a weight, a second lot that must not count); the expected
figures are computed in Python from the rows read back, independently of the SQL."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import UTC, datetime

from sqlalchemy import insert, select

from grading.grader import GradeResult
from grading.lots import lots as lot_store
from grading.lots.lots import LotDetails
from grading.lots.packout import lot_packout, packout_csv
from grading.measurement import FruitMeasurement
from grading.records import FruitRecord
from grading.schema import fruit
from grading.store import create_store_engine, fruit_row, migrate

CLASSES = ["extra", "class_i", "class_ii", "cull", "recheck"]
SIZES = ["70-75", "75-80", "80-85", None]


def _record(rng: random.Random, lot_id: int, cup: int) -> FruitRecord:
    weight = None if rng.random() < 0.03 else round(rng.uniform(120.0, 320.0), 1)
    late = rng.random() < 0.02
    outlet = 0 if late or rng.random() < 0.03 else rng.randint(1, 5)
    return FruitRecord(
        uid=str(uuid.uuid4()), lot_id=lot_id, lane=cup % 4, cup_index=cup, graded_at=datetime.now(UTC),
        measurement=FruitMeasurement(weight, 80.0, 78.0, 50.0, {"red": 0.9}, 0, 0.0),
        views=6, grade=GradeResult(rng.choice(CLASSES), rng.choice(SIZES), ()), outlet=outlet, late=late,
        decision_latency_ms=20.0,
    )


def test_packout_adds_up_to_the_lots_fruit_rows(database_url: str) -> None:
    engine = create_store_engine(database_url)
    migrate(engine)
    at = datetime.now(UTC)
    lot, _ = lot_store.start_lot(engine, LotDetails("P1", "张三", received_weight_kg=700.0), line="t",
                                 recipe_name="apple", recipe_hash=None, at=at, by="t")
    other, _ = lot_store.start_lot(engine, LotDetails("P2", "李四"), line="t", recipe_name="apple",
                                   recipe_hash=None, at=at, by="t", switch=True)
    rng = random.Random(7)
    with engine.begin() as conn:
        conn.execute(insert(fruit), [fruit_row(_record(rng, lot.id, i)) for i in range(3000)])
        conn.execute(insert(fruit), [fruit_row(_record(rng, other.id, i)) for i in range(500)])
    with engine.connect() as conn:
        rows = list(conn.execute(select(fruit).where(fruit.c.lot_id == lot.id)).mappings())
    report = lot_packout(engine, lot.id).as_dict(lot, ["extra", "class_i", "class_ii"])

    mg = [round(r["weight_g"] * 1000) for r in rows if r["weight_g"] is not None]
    assert report["fruit"] == len(rows) == 3000
    assert round(report["weight_kg"] * 1e6) == sum(mg)
    assert sum(c["fruit"] for c in report["cells"]) == len(rows)
    assert sum(round(c["weight_kg"] * 1e6) for c in report["cells"]) == sum(mg)
    expected = Counter((r["quality_class"], r["size_class"]) for r in rows)
    assert {(c["quality_class"], c["size_class"]): c["fruit"] for c in report["cells"]} == dict(expected)
    assert report["late"]["fruit"] == sum(1 for r in rows if r["late"])
    assert report["recirculated"]["fruit"] == sum(1 for r in rows if r["outlet"] == 0 and not r["late"])
    assert report["rejects"]["fruit"] == sum(1 for r in rows if r["quality_class"] == "cull")
    assert report["recheck"]["fruit"] == sum(1 for r in rows if r["quality_class"] == "recheck")
    assert abs(sum(c["fruit_percent"] for c in report["quality_classes"]) - 100.0) < 0.05
    assert report["lot"]["code"] == "P1" and report["yield_percent"] == round(100 * sum(mg) / 1e6 / 700.0, 2)
    text = packout_csv(report)
    assert text.splitlines()[-1].startswith(f"total,,3000,{sum(mg) / 1e6:.6f}")
    engine.dispose()
