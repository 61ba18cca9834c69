"""Property tests: the grade is monotone in every rule and equals the recipe's plain reading."""

from __future__ import annotations

import math
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from grading.grader import Grader, GradeResult, spheroid_surface_cm2
from grading.measurement import FruitMeasurement
from grading.recipe import Recipe, builtin_recipe_names, load_recipe

RECIPES = {name: load_recipe(name) for name in builtin_recipe_names()}
GRADERS = {name: Grader(recipe) for name, recipe in RECIPES.items()}

# Typical ranges per product, a little wider than real fruit so every threshold is crossed.
RANGES = {
    "apple": {"d": (50.0, 100.0), "w": (80.0, 400.0), "defect": 4.0},
    "cherry": {"d": (14.0, 36.0), "w": (4.0, 18.0), "defect": 0.6},
    "mango": {"d": (60.0, 130.0), "w": (150.0, 1000.0), "defect": 9.0},
    "pomegranate": {"d": (60.0, 110.0), "w": (150.0, 650.0), "defect": 4.0},
    "avocado": {"d": (55.0, 110.0), "w": (100.0, 450.0), "defect": 8.0},
    "dragon_fruit": {"d": (60.0, 120.0), "w": (120.0, 700.0), "defect": 6.0},
    "grape": {"d": (60.0, 200.0), "w": (80.0, 900.0), "defect": 3.0},
    "kiwifruit": {"d": (40.0, 80.0), "w": (55.0, 180.0), "defect": 3.0},
    "longan": {"d": (17.0, 32.0), "w": (4.0, 18.0), "defect": 2.0},
    "loquat": {"d": (30.0, 60.0), "w": (15.0, 75.0), "defect": 1.5},
    "lychee": {"d": (17.0, 38.0), "w": (8.0, 35.0), "defect": 0.8},
    "mandarin": {"d": (40.0, 90.0), "w": (40.0, 300.0), "defect": 3.0},
    "orange": {"d": (48.0, 95.0), "w": (80.0, 400.0), "defect": 3.0},
    "passion_fruit": {"d": (40.0, 75.0), "w": (30.0, 120.0), "defect": 3.0},
    "peach": {"d": (45.0, 100.0), "w": (60.0, 400.0), "defect": 4.0},
    "pear": {"d": (45.0, 100.0), "w": (80.0, 500.0), "defect": 4.0},
    "pepper": {"d": (30.0, 120.0), "w": (40.0, 300.0), "defect": 3.0},
    "persimmon": {"d": (50.0, 100.0), "w": (80.0, 400.0), "defect": 3.0},
    "plum": {"d": (25.0, 65.0), "w": (10.0, 100.0), "defect": 1.5},
    "potato": {"d": (40.0, 120.0), "w": (30.0, 500.0), "defect": 20.0},
    "tomato": {"d": (30.0, 110.0), "w": (30.0, 500.0), "defect": 4.0},
    "walnut": {"d": (22.0, 40.0), "w": (6.0, 25.0), "defect": 5.0},
}
# The recipe's own colour classes (the first three; every built-in declares three).
COLOURS = {name: tuple(c.name for c in recipe.colour_classes[:3]) for name, recipe in RECIPES.items()}


def rank(recipe: Recipe, result: GradeResult) -> int:
    """0 = best class ... len(classes) = cull; recheck is not on this scale."""
    ids = recipe.quality_class_ids()
    return len(ids) if result.quality_class == "cull" else ids.index(result.quality_class)


@st.composite
def fruit(draw: st.DrawFn, product: str) -> FruitMeasurement:
    r = RANGES[product]
    # Round to a 0.25 grid so values land exactly on thresholds often.
    major = round(draw(st.floats(*r["d"])) * 4) / 4
    minor = round(draw(st.floats(0.7, 1.0)) * major * 4) / 4
    weight = round(draw(st.floats(*r["w"])) * 4) / 4
    count = draw(st.integers(0, 3))
    area = 0.0 if count == 0 else round(draw(st.floats(0.0, r["defect"])) * 20) / 20
    shares = [draw(st.integers(0, 20)) for _ in range(3)]
    total = max(sum(shares), 20)
    colours = {name: share / total for name, share in zip(COLOURS[product], shares, strict=True)}
    flags = draw(st.frozensets(st.sampled_from(["misshapen", "stem_missing"]), max_size=1))
    return FruitMeasurement(
        weight_g=weight,
        diameter_major_mm=major,
        diameter_minor_mm=minor,
        area_cm2=math.pi * major * minor / 400.0,
        colour_fractions=colours,
        defect_count=count,
        defect_area_cm2=area,
        elongation=major / minor,
        flags=flags,
    )


def any_product_fruit() -> st.SearchStrategy[tuple[str, FruitMeasurement]]:
    return st.sampled_from(sorted(RECIPES)).flatmap(lambda p: fruit(p).map(lambda m: (p, m)))


def reference_grade(recipe: Recipe, m: FruitMeasurement) -> str:
    """The recipe read literally, without the grader's compiled form."""
    value = m.weight_g if recipe.size_axis == "weight_g" else m.diameter_major_mm
    size = next((s.id for s in recipe.size_classes if s.contains(value)), None)  # type: ignore[arg-type]
    cap = 0
    for flag in m.flags:
        action = recipe.flags.get(flag, "ignore")
        if action in recipe.quality_class_ids():
            cap = max(cap, recipe.quality_class_ids().index(action))
    for index, quality in enumerate(recipe.quality_classes):
        passed = True
        for rule in quality.rules:
            if rule.size_classes and size not in rule.size_classes:
                continue
            if rule.measure.startswith("colour."):
                x = m.colour_fractions.get(rule.measure[7:], 0.0)
            elif rule.measure == "defect_surface_fraction":
                x = m.defect_area_cm2 / spheroid_surface_cm2(m.diameter_major_mm, m.diameter_minor_mm)
            else:
                x = float(getattr(m, rule.measure))
            if (rule.min is not None and x < rule.min) or (rule.max is not None and x > rule.max):
                passed = False
        if passed and index >= cap:
            return quality.id
    return "cull"


@settings(max_examples=300, deadline=None)
@given(any_product_fruit())
def test_grade_matches_the_literal_reading_of_the_recipe(case: tuple[str, FruitMeasurement]) -> None:
    product, m = case
    result = GRADERS[product].grade(m)
    assert result.quality_class == reference_grade(RECIPES[product], m)
    # Reason codes are present exactly when the fruit missed something.
    best = RECIPES[product].quality_class_ids()[0]
    if result.quality_class != best or result.size_class is None:
        assert result.reasons


WORSENING = ["defect_area_cm2", "defect_count", "weight_g", "diameters"]


def worsen(product: str, m: FruitMeasurement, what: str, amount: float) -> FruitMeasurement:
    """``m`` made worse in one respect by ``amount`` (0..1) of that measure's typical range."""
    r = RANGES[product]
    if what == "defect_area_cm2":
        return replace(m, defect_area_cm2=m.defect_area_cm2 + amount * r["defect"], defect_count=max(m.defect_count, 1))
    if what == "defect_count":
        return replace(m, defect_count=m.defect_count + round(amount * 3))
    if what == "weight_g":
        return replace(m, weight_g=max(1.0, m.weight_g - amount * (r["w"][1] - r["w"][0])))  # type: ignore[operator]
    # Smaller fruit of the same shape: both diameters shrink together.
    factor = 1.0 - 0.5 * amount
    return replace(m, diameter_major_mm=m.diameter_major_mm * factor, diameter_minor_mm=m.diameter_minor_mm * factor)


@settings(max_examples=400, deadline=None)
@given(any_product_fruit(), st.sampled_from(WORSENING), st.floats(0.0, 1.0))
def test_worse_measure_never_gives_a_better_class(
    case: tuple[str, FruitMeasurement], what: str, amount: float
) -> None:
    product, m = case
    recipe, grader = RECIPES[product], GRADERS[product]
    before, after = grader.grade(m), grader.grade(worsen(product, m, what, amount))
    assert "recheck" not in (before.quality_class, after.quality_class)
    assert rank(recipe, after) >= rank(recipe, before), (before, after)


# (product, colour) pairs some class of the built-in recipe asks a minimum share of.
COLOUR_MINIMUMS = sorted(
    {
        (name, r.measure.removeprefix("colour."))
        for name, recipe in RECIPES.items()
        for q in recipe.quality_classes
        for r in q.rules
        if r.measure.startswith("colour.") and r.min is not None
    }
)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(COLOUR_MINIMUMS).flatmap(lambda pc: fruit(pc[0]).map(lambda m: (pc, m))), st.floats(0.0, 1.0))
def test_less_of_a_required_colour_never_helps(case: tuple[tuple[str, str], FruitMeasurement], keep: float) -> None:
    (product, colour), m = case
    less = replace(m, colour_fractions={**m.colour_fractions, colour: m.colour_fractions.get(colour, 0.0) * keep})
    recipe, grader = RECIPES[product], GRADERS[product]
    assert rank(recipe, grader.grade(less)) >= rank(recipe, grader.grade(m))


@settings(max_examples=100, deadline=None)
@given(any_product_fruit(), st.sampled_from([None, 0.0, -1.0, math.nan]))
def test_no_valid_weight_is_always_recheck(case: tuple[str, FruitMeasurement], weight: float | None) -> None:
    product, m = case
    result = GRADERS[product].grade(replace(m, weight_g=weight))
    assert result.quality_class == "recheck" and result.size_class is None


@settings(max_examples=100, deadline=None)
@given(any_product_fruit())
def test_double_fruit_is_always_recheck(case: tuple[str, FruitMeasurement]) -> None:
    product, m = case
    result = GRADERS[product].grade(replace(m, flags=m.flags | {"double"}))
    assert result.quality_class == "recheck"
    assert "recheck:flag:double" in result.reasons
