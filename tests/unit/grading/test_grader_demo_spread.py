"""The built-in apple recipe spreads the demo line's simulated apples over every outcome.

Grades the simulator's ground truth (not a vision measurement), so this checks the recipe's
numbers against the demo fruit population, not the pipeline.
"""

from __future__ import annotations

from collections import Counter

from grading.grader import Grader
from grading.measurement import FruitMeasurement
from grading.recipe import load_recipe
from simulators.fruit import CupTruth, generate_cup
from simulators.settings import SimulationSettings


def measurement(cup: CupTruth) -> FruitMeasurement:
    fruit = cup.fruit[0]
    return FruitMeasurement(
        weight_g=cup.weight_g,
        diameter_major_mm=fruit.diameter_major_mm,
        diameter_minor_mm=fruit.diameter_minor_mm,
        area_cm2=0.0,
        colour_fractions=fruit.colour_fractions,
        defect_count=len(fruit.defects),
        defect_area_cm2=sum(d.area_mm2 for d in fruit.defects) / 100.0,
        elongation=fruit.diameter_major_mm / fruit.diameter_minor_mm,
        flags=frozenset({"double"}) if len(cup.fruit) > 1 else frozenset(),
    )


def test_demo_apples_spread_over_extra_class_i_class_ii_and_cull() -> None:
    grader = Grader(load_recipe("apple"))
    settings = SimulationSettings(seed=7)
    cups = [generate_cup("apple", settings, lane, i) for lane in (0, 1) for i in range(120)]
    results = [grader.grade(measurement(c)) for c in cups if c.fruit]
    share = {k: v / len(results) for k, v in Counter(r.quality_class for r in results).items()}
    # Each grade gets a real share of the demo fruit (about 22 / 17 / 24 / 37 % on 1000 apples),
    # and cull is not most of the line.
    for grade in ("extra", "class_i", "class_ii", "cull"):
        assert share.get(grade, 0.0) >= 0.08, share
    assert share["cull"] <= 0.5, share
    # Colour, size and defects each decide some fruit.
    reasons = {r.split(":")[1].split("=")[0] for res in results for r in res.reasons}
    assert {"colour.red", "diameter_major_mm", "defect_area_cm2"} <= reasons
