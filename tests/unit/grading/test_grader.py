"""Grader semantics against hand-computed expectations, at and around every kind of threshold."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from grading.grader import Grader, GradeResult, spheroid_surface_cm2
from grading.measurement import FruitMeasurement
from grading.recipe import load_recipe


def apple(**changes: object) -> FruitMeasurement:
    """A clean Extra apple: 75 mm, 220 g, 70 % red, no defects."""
    base = FruitMeasurement(
        weight_g=220.0,
        diameter_major_mm=75.0,
        diameter_minor_mm=73.0,
        area_cm2=43.0,
        colour_fractions={"red": 0.70, "yellow": 0.20, "green": 0.10},
        defect_count=0,
        defect_area_cm2=0.0,
        elongation=75.0 / 73.0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def apple_grader() -> Grader:
    return Grader(load_recipe("apple"))


def test_clean_apple_is_extra(apple_grader: Grader) -> None:
    assert apple_grader.grade(apple()) == GradeResult("extra", "75-80", ())


# Apple recipe (striped types): min diameter 70 / 65 / 60 mm, red >= 0.50 / 0.33 / 0.20,
# defect area <= 0.5 / 1.0 / 2.5 cm².
@pytest.mark.parametrize(
    ("diameter_mm", "expected", "reasons"),
    [
        (70.0, "extra", ()),  # exactly at the Extra minimum passes (inclusive bound)
        (70.01, "extra", ()),
        (69.99, "class_i", ("extra:diameter_major_mm=69.99<70.00",)),
        (65.0, "class_i", ("extra:diameter_major_mm=65.00<70.00",)),
        (64.99, "class_ii", ("extra:diameter_major_mm=64.99<70.00", "class_i:diameter_major_mm=64.99<65.00")),
        (60.0, "class_ii", ("extra:diameter_major_mm=60.00<70.00", "class_i:diameter_major_mm=60.00<65.00")),
    ],
)
def test_apple_diameter_boundaries(
    apple_grader: Grader, diameter_mm: float, expected: str, reasons: tuple[str, ...]
) -> None:
    result = apple_grader.grade(apple(diameter_major_mm=diameter_mm))
    assert result.quality_class == expected
    assert result.reasons == reasons


def test_apple_below_every_minimum_is_cull_with_every_reason(apple_grader: Grader) -> None:
    result = apple_grader.grade(apple(diameter_major_mm=59.5))
    assert result == GradeResult(
        "cull",
        None,
        (
            "size:diameter_major_mm=59.50:no_size_class",
            "extra:diameter_major_mm=59.50<70.00",
            "class_i:diameter_major_mm=59.50<65.00",
            "class_ii:diameter_major_mm=59.50<60.00",
        ),
    )


@pytest.mark.parametrize(
    ("defect_area_cm2", "expected", "reasons"),
    [
        (0.5, "extra", ()),
        (0.5001, "class_i", ("extra:defect_area_cm2=0.5001>0.5000",)),
        (1.0, "class_i", ("extra:defect_area_cm2=1.00>0.50",)),
        (1.40, "class_ii", ("extra:defect_area_cm2=1.40>0.50", "class_i:defect_area_cm2=1.40>1.00")),
        (2.5, "class_ii", ("extra:defect_area_cm2=2.50>0.50", "class_i:defect_area_cm2=2.50>1.00")),
        (
            2.51,
            "cull",
            (
                "extra:defect_area_cm2=2.51>0.50",
                "class_i:defect_area_cm2=2.51>1.00",
                "class_ii:defect_area_cm2=2.51>2.50",
            ),
        ),
    ],
)
def test_apple_defect_area_boundaries(
    apple_grader: Grader, defect_area_cm2: float, expected: str, reasons: tuple[str, ...]
) -> None:
    result = apple_grader.grade(apple(defect_area_cm2=defect_area_cm2, defect_count=1))
    assert (result.quality_class, result.reasons) == (expected, reasons)


@pytest.mark.parametrize(
    ("red", "expected"),
    [(0.50, "extra"), (0.4999, "class_i"), (0.33, "class_i"), (0.3299, "class_ii"), (0.20, "class_ii"),
     (0.1999, "cull")],
)
def test_apple_colour_boundaries(apple_grader: Grader, red: float, expected: str) -> None:
    result = apple_grader.grade(apple(colour_fractions={"red": red, "yellow": 1.0 - red}))
    assert result.quality_class == expected


def test_missing_colour_class_counts_as_none_of_the_surface(apple_grader: Grader) -> None:
    result = apple_grader.grade(apple(colour_fractions={"yellow": 0.9}))
    assert result.quality_class == "cull"
    assert result.reasons[-1] == "class_ii:colour.red=0.00<0.20"


@pytest.mark.parametrize(
    ("diameter_mm", "size"),
    [(60.0, "60-65"), (64.999, "60-65"), (65.0, "65-70"), (89.99, "85-90"), (90.0, "90+"), (140.0, "90+")],
)
def test_apple_size_bands_are_half_open(apple_grader: Grader, diameter_mm: float, size: str) -> None:
    assert apple_grader.grade(apple(diameter_major_mm=diameter_mm)).size_class == size


@pytest.mark.parametrize("weight", [None, 0.0, -3.0, math.nan, math.inf])
def test_no_valid_weight_is_recheck(apple_grader: Grader, weight: float | None) -> None:
    result = apple_grader.grade(apple(weight_g=weight))
    assert result.quality_class == "recheck"
    assert result.size_class is None
    assert len(result.reasons) == 1 and result.reasons[0].startswith("recheck:")


def test_missing_weight_grades_when_recipe_does_not_need_it() -> None:
    recipe = load_recipe("apple").model_copy(update={"require_weight": False})
    assert Grader(recipe).grade(apple(weight_g=None)).quality_class == "extra"


def test_double_fruit_is_recheck_even_when_otherwise_perfect(apple_grader: Grader) -> None:
    result = apple_grader.grade(apple(flags=frozenset({"double"})))
    assert result == GradeResult("recheck", None, ("recheck:flag:double",))


def test_edge_is_recheck_and_reasons_accumulate(apple_grader: Grader) -> None:
    result = apple_grader.grade(apple(flags=frozenset({"edge"}), weight_g=None))
    assert result == GradeResult("recheck", None, ("recheck:flag:edge", "recheck:no_valid_weight"))


def test_misshapen_caps_at_class_ii(apple_grader: Grader) -> None:
    result = apple_grader.grade(apple(flags=frozenset({"misshapen"})))
    assert result == GradeResult("class_ii", "75-80", ("flag:misshapen->class_ii",))
    # The cap never lifts a fruit: failing Class II is still cull.
    result = apple_grader.grade(apple(flags=frozenset({"misshapen"}), defect_area_cm2=3.0, defect_count=2))
    assert result.quality_class == "cull"


def test_unknown_flag_is_ignored(apple_grader: Grader) -> None:
    assert apple_grader.grade(apple(flags=frozenset({"stem_missing"}))).quality_class == "extra"


def test_flag_cull_action() -> None:
    recipe = load_recipe("apple")
    recipe = recipe.model_copy(update={"flags": {**recipe.flags, "rot": "cull"}})
    result = Grader(recipe).grade(apple(flags=frozenset({"rot"})))
    assert result == GradeResult("cull", "75-80", ("flag:rot->cull",))


def test_nan_measure_is_recheck(apple_grader: Grader) -> None:
    result = apple_grader.grade(apple(defect_area_cm2=math.nan))
    assert result == GradeResult("recheck", None, ("recheck:defect_area_cm2=nan",))


def mango(weight_g: float, defect_area_cm2: float) -> FruitMeasurement:
    return FruitMeasurement(
        weight_g=weight_g,
        diameter_major_mm=120.0,
        diameter_minor_mm=85.0,
        area_cm2=80.0,
        colour_fractions={"green": 0.6, "yellow": 0.3, "red": 0.1},
        defect_count=1 if defect_area_cm2 else 0,
        defect_area_cm2=defect_area_cm2,
        elongation=120.0 / 85.0,
    )


# Mango: groups A [200, 351), B [351, 551), C [551, 801), D >= 801 g; Class I defect area
# <= 2/3/4/5 cm² and Class II <= 4/5/6/7 cm² per group; Extra <= 0.5 cm².
@pytest.mark.parametrize(
    ("weight_g", "defect_area_cm2", "quality", "size"),
    [
        (250.0, 0.0, "extra", "A"),
        (250.0, 2.0, "class_i", "A"),
        (250.0, 2.01, "class_ii", "A"),
        (250.0, 4.0, "class_ii", "A"),
        (250.0, 4.01, "cull", "A"),
        (350.9, 3.0, "class_ii", "A"),  # still group A: the Class I limit is 2 cm²
        (351.0, 3.0, "class_i", "B"),  # group B allows 3 cm² in Class I
        (600.0, 4.0, "class_i", "C"),
        (600.0, 6.0, "class_ii", "C"),
        (900.0, 5.0, "class_i", "D"),
        (900.0, 7.0, "class_ii", "D"),
        (900.0, 7.01, "cull", "D"),
        (199.9, 0.0, "cull", None),  # below the smallest group
    ],
)
def test_mango_per_size_group_limits(weight_g: float, defect_area_cm2: float, quality: str, size: str | None) -> None:
    result = Grader(load_recipe("mango")).grade(mango(weight_g, defect_area_cm2))
    assert (result.quality_class, result.size_class) == (quality, size)


def test_mango_without_weight_is_recheck() -> None:
    recipe = load_recipe("mango").model_copy(update={"require_weight": False})
    # The size axis is weight, so even a recipe that does not ask for weight cannot grade without it.
    assert recipe.needs_weight()
    m = replace(mango(300.0, 0.0), weight_g=None)
    assert Grader(recipe).grade(m) == GradeResult("recheck", None, ("recheck:no_valid_weight",))


def test_spheroid_surface_matches_sphere_and_known_prolate() -> None:
    # Sphere of 100 mm: 4 pi r² = 314.159 cm².
    assert spheroid_surface_cm2(100.0, 100.0) == pytest.approx(4 * math.pi * 25.0, rel=1e-9)
    # Prolate spheroid a = 6 cm, b = 4 cm: exact 2 pi b² (1 + a/(b e) asin e), e = sqrt(1 - b²/a²).
    a, b = 6.0, 4.0
    e = math.sqrt(1 - b * b / (a * a))
    exact = 2 * math.pi * b * b * (1 + a / (b * e) * math.asin(e))
    assert spheroid_surface_cm2(120.0, 80.0) == pytest.approx(exact, rel=1e-3)


def pomegranate(weight_g: float, defect_area_cm2: float, diameter_mm: float = 95.0) -> FruitMeasurement:
    return FruitMeasurement(
        weight_g=weight_g,
        diameter_major_mm=diameter_mm,
        diameter_minor_mm=diameter_mm,
        area_cm2=math.pi * (diameter_mm / 20.0) ** 2,
        colour_fractions={"red": 0.8},
        defect_count=1 if defect_area_cm2 else 0,
        defect_area_cm2=defect_area_cm2,
    )


@pytest.mark.parametrize(
    ("weight_g", "defect_area_cm2", "diameter_mm", "quality", "first_reason"),
    [
        (400.0, 0.0, 95.0, "extra", None),
        (349.99, 0.0, 95.0, "class_i", "extra:weight_g=349.99<350.00"),
        (400.0, 0.01, 95.0, "class_i", "extra:defect_area_cm2=0.01>0.00"),
        (400.0, 1.0, 95.0, "class_i", "extra:defect_area_cm2=1.00>0.00"),
        (400.0, 1.01, 95.0, "class_ii", "extra:defect_area_cm2=1.01>0.00"),
        (249.0, 0.5, 95.0, "class_ii", "extra:weight_g=249.00<350.00"),
        (400.0, 2.01, 95.0, "cull", "extra:defect_area_cm2=2.01>0.00"),
        # A tiny fruit of 20 mm has 12.57 cm² of surface: 0.9 cm² is 7.2 %, over Class I's 5 %.
        (260.0, 0.9, 20.0, "class_ii", "extra:weight_g=260.00<350.00"),
    ],
)
def test_pomegranate_strictest_of_two_sources(
    weight_g: float, defect_area_cm2: float, diameter_mm: float, quality: str, first_reason: str | None
) -> None:
    result = Grader(load_recipe("pomegranate")).grade(pomegranate(weight_g, defect_area_cm2, diameter_mm))
    assert result.quality_class == quality
    assert (result.reasons[0] if result.reasons else None) == first_reason


def test_pomegranate_surface_fraction_reason() -> None:
    result = Grader(load_recipe("pomegranate")).grade(pomegranate(260.0, 0.9, 20.0))
    # 0.9 / (4 pi 1²) = 0.0716
    assert "class_i:defect_surface_fraction=0.07>0.05" in result.reasons


@pytest.mark.parametrize(
    ("diameter_mm", "defects", "area", "quality", "size"),
    [
        (29.0, 0, 0.0, "extra", "JJ"),
        (20.0, 0, 0.0, "extra", "S"),
        (19.9, 0, 0.0, "class_i", None),
        (17.0, 0, 0.0, "class_i", None),
        (16.9, 0, 0.0, "cull", None),
        (29.0, 1, 0.1, "class_i", "JJ"),
        (29.0, 1, 0.11, "class_ii", "JJ"),
        (33.0, 2, 0.25, "class_ii", "JJJJ"),
        (33.0, 2, 0.26, "cull", "JJJJ"),
    ],
)
def test_cherry(diameter_mm: float, defects: int, area: float, quality: str, size: str | None) -> None:
    m = FruitMeasurement(
        weight_g=10.0,
        diameter_major_mm=diameter_mm,
        diameter_minor_mm=diameter_mm - 1,
        area_cm2=6.0,
        colour_fractions={"dark_red": 0.9},
        defect_count=defects,
        defect_area_cm2=area,
    )
    result = Grader(load_recipe("cherry")).grade(m)
    assert (result.quality_class, result.size_class) == (quality, size)


def test_reason_shows_enough_digits_to_differ(apple_grader: Grader) -> None:
    result = apple_grader.grade(apple(defect_area_cm2=2.500001, defect_count=1))
    assert result.quality_class == "cull"
    assert result.reasons[-1] == "class_ii:defect_area_cm2=2.500001>2.500000"
