"""Recipe loading: built-ins, error reports as FILE: field: message, provenance of thresholds."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError

from grading.recipe import (
    Recipe,
    RecipeError,
    builtin_recipe_names,
    load_recipe,
    parse_recipe,
)

BUILTIN_DIR = Path(__file__).resolve().parents[3] / "grading" / "recipes"

APPLE_FAMILY_COLOURS = {
    "red": ((0, 20, -128), (100.01, 128, 128)),
    "yellow": ((55, -8, 35), (100.01, 20, 128)),
    "green": ((0, -128, 10), (100.01, -8, 128)),
}
CHERRY_COLOURS = {
    "dark_red": ((0, 15, -128), (35, 128, 128)),
    "red": ((35, 20, -128), (100.01, 128, 128)),
    "yellow": ((55, -8, 35), (100.01, 20, 128)),
}

MINIMAL = """
name = "tiny"
product = "apple"
size_axis = "diameter_mm"

[[colour_classes]]
name = "red"
lab_lo = [0.0, 20.0, -128.0]
lab_hi = [100.01, 128.0, 128.0]

[[size_classes]]
id = "small"
min = 50.0
max = 70.0
source = "test"
status = "unverified"

[[quality_classes]]
id = "extra"
name_zh = "特级"
name_en = "Extra"

[[quality_classes.rules]]
measure = "diameter_major_mm"
min = 60.0
source = "test"
status = "secondary"
"""


def write(tmp_path: Path, text: str, name: str = "r.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_builtin_names() -> None:
    names = builtin_recipe_names()
    assert {"apple", "cherry", "mango", "pomegranate"} <= set(names)
    assert len(names) >= 20


@pytest.mark.parametrize("name", builtin_recipe_names())
def test_every_builtin_has_the_three_classes_and_flags_every_threshold(name: str) -> None:
    recipe = load_recipe(name)
    assert recipe.name == name
    assert recipe.quality_class_ids() == ["extra", "class_i", "class_ii"]
    assert recipe.size_class_ids()
    thresholds = recipe.thresholds()
    assert all(t.source.strip() for t in thresholds)
    # No shipped number was checked against a standard's text (DOMAIN.md tags none [verified]).
    assert recipe.unverified_thresholds() == thresholds


def test_unverified_thresholds_are_in_the_json_form() -> None:
    recipe = load_recipe("kiwifruit")
    data = recipe.model_dump(mode="json")
    assert data["unverified"] == [
        {"where": t.where, "summary": t.summary, "source": t.source, "status": t.status}
        for t in recipe.unverified_thresholds()
    ]
    assert data["unverified"][0]["where"] == "size_classes[0]"
    assert '"unverified":[' in recipe.model_dump_json()


def test_a_verified_threshold_is_left_out_of_the_json_form(tmp_path: Path) -> None:
    recipe = load_recipe(str(write(tmp_path, MINIMAL.replace('status = "secondary"', 'status = "verified"'))))
    assert [t["where"] for t in recipe.model_dump(mode="json")["unverified"]] == ["size_classes[0]"]


def test_any_product_id_loads_but_not_a_malformed_one(tmp_path: Path) -> None:
    assert load_recipe(str(write(tmp_path, MINIMAL.replace('product = "apple"', 'product = "durian"')))).product == "durian"
    with pytest.raises(RecipeError) as info:
        load_recipe(str(write(tmp_path, MINIMAL.replace('product = "apple"', 'product = "Durian Fruit"'))))
    assert info.value.issues[0].field == "product"


@pytest.mark.parametrize("name", ["apple", "cherry", "mango", "pomegranate"])
def test_every_builtin_loads_with_the_standard_classes(name: str) -> None:
    recipe = load_recipe(name)
    assert recipe.product == name
    assert recipe.quality_class_ids() == ["extra", "class_i", "class_ii"]
    names = [(q.name_zh, q.name_en) for q in recipe.quality_classes]
    assert names == [("特级", "Extra"), ("一级", "Class I"), ("二级", "Class II")]
    assert recipe.size_class_ids()
    expected_axis = "weight_g" if name in ("mango", "pomegranate") else "diameter_mm"
    assert recipe.size_axis == expected_axis
    assert recipe.quality_model is None


@pytest.mark.parametrize("name", ["apple", "cherry", "mango", "pomegranate"])
def test_builtin_colour_classes_are_the_canonical_boxes(name: str) -> None:
    recipe = load_recipe(name)
    expected = CHERRY_COLOURS if name == "cherry" else APPLE_FAMILY_COLOURS
    got = {c.name: (c.lab_lo, c.lab_hi) for c in recipe.colour_classes}
    assert got == {k: (tuple(map(float, lo)), tuple(map(float, hi))) for k, (lo, hi) in expected.items()}


@pytest.mark.parametrize("name", ["apple", "cherry", "mango", "pomegranate"])
def test_builtin_statuses_never_claim_verified(name: str) -> None:
    # DOMAIN.md tags none of the numbers used by the built-ins [verified]: every threshold
    # must be flagged for the HMI's warning badge and carry a source.
    recipe = load_recipe(name)
    thresholds = recipe.thresholds()
    assert thresholds
    assert recipe.unverified_thresholds() == thresholds
    assert all(t.source.strip() for t in thresholds)
    assert {t.status for t in thresholds} <= {"secondary", "unverified"}


def test_builtin_loads_by_path_too() -> None:
    by_name = load_recipe("mango")
    by_path = load_recipe(str(BUILTIN_DIR / "mango.toml"))
    assert by_name == by_path


def test_unverified_thresholds_lists_only_unchecked_ones(tmp_path: Path) -> None:
    text = MINIMAL.replace('status = "secondary"', 'status = "verified"')
    recipe = load_recipe(str(write(tmp_path, text)))
    unverified = recipe.unverified_thresholds()
    assert [t.where for t in unverified] == ["size_classes[0]"]
    assert [t.where for t in recipe.thresholds()] == ["size_classes[0]", "quality_classes[0].rules[0]"]
    assert recipe.thresholds()[1].summary == "extra: 60 <= diameter_major_mm"


def test_misspelt_key_names_file_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("min = 60.0", "mni = 60.0"))
    with pytest.raises(RecipeError) as info:
        load_recipe(str(path))
    lines = [str(i) for i in info.value.issues]
    assert f"{path}: quality_classes[0].rules[0].mni: Extra inputs are not permitted" in lines
    # The misspelt key also leaves the rule without any bound.
    assert all(line.startswith(f"{path}: ") for line in lines)


def test_bad_value_names_file_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("min = 60.0", 'min = "sixty"'))
    with pytest.raises(RecipeError) as info:
        load_recipe(str(path))
    assert [str(i) for i in info.value.issues] == [
        f"{path}: quality_classes[0].rules[0].min: Input should be a valid number, unable to parse string as a number"
    ]


def test_bad_status_and_unknown_measure(tmp_path: Path) -> None:
    text = MINIMAL.replace('status = "secondary"', 'status = "probably"').replace(
        'measure = "diameter_major_mm"', 'measure = "diameter_mm"'
    )
    with pytest.raises(RecipeError) as info:
        load_recipe(str(write(tmp_path, text)))
    fields = {i.field for i in info.value.issues}
    assert fields == {"quality_classes[0].rules[0].measure", "quality_classes[0].rules[0].status"}


@pytest.mark.parametrize(
    ("old", "new", "field", "fragment"),
    [
        ('measure = "diameter_major_mm"\nmin = 60.0', 'measure = "colour.purple"\nmin = 0.6', "quality_classes[0].rules[0].measure",
         "no colour class named 'purple'"),
        ("min = 60.0\nsource", "min = 60.0\nmax = 55.0\nsource", "quality_classes[0].rules[0].max", "below min"),
        ('id = "extra"', 'id = "cull"', "quality_classes[0].id", "grader outcome"),
        ("max = 70.0", "max = 40.0", "size_classes[0].max", "must be above min"),
        ('product = "apple"', 'product = "Kiwi Fruit"', "product", "String should match pattern"),
        ('lab_hi = [100.01, 128.0, 128.0]', 'lab_hi = [100.01, 10.0, 128.0]', "colour_classes[0].lab_hi",
         "a upper bound"),
    ],
)
def test_semantic_errors_point_at_the_field(tmp_path: Path, old: str, new: str, field: str, fragment: str) -> None:
    assert old in MINIMAL
    path = write(tmp_path, MINIMAL.replace(old, new, 1))
    with pytest.raises(RecipeError) as info:
        load_recipe(str(path))
    matching = [i for i in info.value.issues if i.field == field]
    assert matching, [str(i) for i in info.value.issues]
    assert fragment in matching[0].message
    assert matching[0].file == str(path)


def test_overlapping_size_classes_rejected(tmp_path: Path) -> None:
    extra_band = '\n[[size_classes]]\nid = "big"\nmin = 69.0\nsource = "t"\nstatus = "unverified"\n'
    text = MINIMAL.replace("[[quality_classes]]", extra_band + "\n[[quality_classes]]", 1)
    with pytest.raises(RecipeError) as info:
        load_recipe(str(write(tmp_path, text)))
    assert [(i.field, i.message) for i in info.value.issues] == [
        ("size_classes[1].min", "size class 'big' (size_classes[1]) overlaps 'small' (size_classes[0])")
    ]


def test_rule_scoped_to_unknown_size_class(tmp_path: Path) -> None:
    text = MINIMAL.replace("min = 60.0\n", 'min = 60.0\nsize_classes = ["huge"]\n')
    with pytest.raises(RecipeError) as info:
        load_recipe(str(write(tmp_path, text)))
    assert [str(i) for i in info.value.issues][0].endswith(
        "quality_classes[0].rules[0].size_classes[0]: no size class 'huge'"
    )


def test_flag_actions_are_checked(tmp_path: Path) -> None:
    text = MINIMAL.replace("[[colour_classes]]", '[flags]\nmisshapen = "class_ix"\n\n[[colour_classes]]', 1)
    with pytest.raises(RecipeError) as info:
        load_recipe(str(write(tmp_path, text)))
    assert info.value.issues[0].field == "flags.misshapen"
    text = MINIMAL.replace("[[colour_classes]]", '[flags]\ndouble = "ignore"\n\n[[colour_classes]]', 1)
    with pytest.raises(RecipeError) as info:
        load_recipe(str(write(tmp_path, text)))
    assert info.value.issues[0].field == "flags.double"


def test_toml_syntax_error_and_missing_file(tmp_path: Path) -> None:
    path = write(tmp_path, "name = \n")
    with pytest.raises(RecipeError) as info:
        load_recipe(str(path))
    assert info.value.issues[0].field == "(toml)"
    assert info.value.issues[0].file == str(path)
    with pytest.raises(RecipeError) as info:
        load_recipe("durian")
    assert info.value.issues[0].field == "(file)"
    assert "built-in recipes: apple, avocado, cherry," in info.value.issues[0].message


def test_quality_model_resolved_relative_to_recipe(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    model = tmp_path / "models" / "fuji.json"
    model.write_text("{}", encoding="utf-8")
    rule = (
        '\n[[quality_classes.rules]]\nmeasure = "quality_score"\nmax = 0.4\nsource = "taught"\n'
        'status = "unverified"\n'
    )
    text = 'quality_model = "models/fuji.json"\n' + MINIMAL + rule
    recipe = load_recipe(str(write(tmp_path, text)))
    assert recipe.quality_model == str(model.resolve())

    model.unlink()
    with pytest.raises(RecipeError) as info:
        load_recipe(str(write(tmp_path, text)))
    assert info.value.issues[0].field == "quality_model"
    assert "model file not found" in info.value.issues[0].message


def test_quality_score_rule_needs_a_model(tmp_path: Path) -> None:
    rule = '\n[[quality_classes.rules]]\nmeasure = "quality_score"\nmax = 0.4\nsource = "t"\nstatus = "unverified"\n'
    with pytest.raises(RecipeError) as info:
        load_recipe(str(write(tmp_path, MINIMAL + rule)))
    assert info.value.issues[0].field == "quality_model"


def test_recipe_is_frozen_and_parse_matches_load(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    loaded = load_recipe(str(path))
    parsed = parse_recipe(tomllib.loads(MINIMAL), str(path))
    assert loaded == parsed
    assert isinstance(loaded, Recipe)
    with pytest.raises(ValidationError, match="frozen"):
        loaded.name = "other"


def test_needs_weight() -> None:
    assert load_recipe("mango").needs_weight()
    recipe = load_recipe("apple").model_copy(update={"require_weight": False})
    assert not recipe.needs_weight()


def test_display_names_cover_every_outcome() -> None:
    assert load_recipe("cherry").display_names() == {
        "extra": ("特级", "Extra"),
        "class_i": ("一级", "Class I"),
        "class_ii": ("二级", "Class II"),
        "cull": ("次果", "Cull"),
        "recheck": ("复检", "Recheck"),
    }


def test_every_cross_reference_problem_is_reported(tmp_path: Path) -> None:
    text = MINIMAL.replace("min = 60.0\n", 'min = 60.0\nsize_classes = ["huge"]\n').replace(
        "[[colour_classes]]", '[flags]\nmisshapen = "class_ix"\n\n[[colour_classes]]', 1
    )
    path = write(tmp_path, text)
    with pytest.raises(RecipeError) as info:
        load_recipe(str(path))
    assert [str(i) for i in info.value.issues] == [
        f"{path}: quality_classes[0].rules[0].size_classes[0]: no size class 'huge'",
        f"{path}: flags.misshapen: 'class_ix' is not recheck, cull, ignore or a quality class id",
    ]
