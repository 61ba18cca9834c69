"""What-if re-grade of a hand-made lot: its own recipe version reproduces its pack-out exactly;
a recipe whose Extra needs 75 mm instead of 70 mm moves exactly the Extra fruit of 70-75 mm to
Class I, and nothing else. The fruit and which of them must move are set here by hand."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import insert

from grading.grader import Grader
from grading.lots import lots as lot_store
from grading.lots.lots import LotDetails
from grading.lots.recipes import recipe_source, validate_recipe_text
from grading.lots.settlement import load_price_table, settlement
from grading.lots.whatif import regrade_lot, whatif_report
from grading.measurement import FruitMeasurement
from grading.records import FruitRecord
from grading.schema import fruit
from grading.store import create_store_engine, fruit_row, migrate

# (diameter mm, red share, defect cm², fruit): a hand-made lot
HAND_MADE = [(72.0, 0.9, 0.0, 10), (78.0, 0.9, 0.0, 12), (66.0, 0.9, 0.0, 5), (73.0, 0.4, 0.0, 4), (82.0, 0.9, 0.8, 3)]
MOVES_UNDER_75MM_EXTRA = {72.0}  # Extra at 72 mm: below 75 mm -> Class I; 73 mm with 40 % red was Class I already


def test_whatif_reproduces_and_changes_exactly_the_expected_fruit(database_url: str) -> None:
    engine = create_store_engine(database_url)
    migrate(engine)
    _, text = recipe_source("apple")
    apple = validate_recipe_text(text)
    strict = validate_recipe_text(text.replace(
        "[[quality_classes.rules]]\nmeasure = \"diameter_major_mm\"\nmin = 70.0",
        "[[quality_classes.rules]]\nmeasure = \"diameter_major_mm\"\nmin = 75.0", 1))
    assert [r.min for r in strict.quality_classes[0].rules if r.measure == "diameter_major_mm"] == [75.0]
    at = datetime.now(UTC)
    lot, _ = lot_store.start_lot(engine, LotDetails("W1", "张三"), line="t", recipe_name="apple", recipe_hash=None,
                                 at=at, by="t")
    grader = Grader(apple)
    records, must_move = [], set()
    cup = 0
    for diameter, red, defect, n in HAND_MADE:
        for _ in range(n):
            m = FruitMeasurement(150.0 + cup * 0.5, diameter, diameter - 2, 40.0, {"red": red, "green": 1 - red},
                                 1 if defect else 0, defect)
            grade = grader.grade(m)
            record = FruitRecord(str(uuid.uuid4()), lot.id, 0, cup, at, m, 6, grade, 1, False, 10.0)
            records.append(record)
            if diameter in MOVES_UNDER_75MM_EXTRA:
                assert grade.quality_class == "extra"
                must_move.add(record.uid)
            cup += 1
    with engine.begin() as conn:
        conn.execute(insert(fruit), [fruit_row(r) for r in records])
    lot_store.close_lot(engine, lot.id, at=at, by="t")
    prices = load_price_table()
    order = apple.quality_class_ids()

    same = whatif_report(regrade_lot(engine, lot.id, apple), prices, order)
    assert same["changed_fruit"] == 0 and same["value_difference_cny"] == 0
    assert same["whatif"] == same["actual"]  # to the milligram and the fen

    other = whatif_report(regrade_lot(engine, lot.id, strict), prices, order)
    assert set(other["changed_uids"]) == must_move
    assert [(c["from_quality"], c["to_quality"], c["fruit"]) for c in other["changes"]] == [("extra", "class_i", 10)]
    kg_moved = sum(r.measurement.weight_g for r in records if r.uid in must_move) / 1000  # type: ignore[misc]
    assert other["value_difference_cny"] == round(-(8.0 - 6.0) * kg_moved, 2)
    assert other["whatif"]["fruit"] == other["actual"]["fruit"] == sum(n for *_, n in HAND_MADE)

    bill = settlement(regrade_lot(engine, lot.id, apple).actual, prices)
    assert bill["gross_cny"] == same["actual"]["value_cny"]
    per_kg = next(d for d in bill["deductions"] if d["kind"] == "per_kg")
    assert per_kg["amount_cny"] == round(0.30 * bill["weight_kg"], 2)
    assert bill["payable_cny"] == round(bill["gross_cny"] - sum(d["amount_cny"] for d in bill["deductions"]), 2)
    engine.dispose()
