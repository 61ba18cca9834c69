"""Recipe check: each problem kind at its dotted path, every shipped recipe clean, the CLI's exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.cli import main
from grading.recipe import builtin_recipe_names, builtin_recipe_path
from grading.recipe_check import RecipeProblem, check_recipe_file, check_recipe_text
from tests.unit.grading.test_recipe import MINIMAL

BAND = '\n[[size_classes]]\nid = "{id}"\nmin = {min}\n{max}source = "t"\nstatus = "unverified"\n'


def with_band(text: str, band_id: str, low: float, high: float | None) -> str:
    band = BAND.format(id=band_id, min=low, max="" if high is None else f"max = {high}\n")
    return text.replace("[[quality_classes]]", band + "\n[[quality_classes]]", 1)


def rule(measure: str, low: float | None = None, high: float | None = None) -> str:
    bounds = (f"min = {low}\n" if low is not None else "") + (f"max = {high}\n" if high is not None else "")
    return f'\n[[quality_classes.rules]]\nmeasure = "{measure}"\n{bounds}source = "t"\nstatus = "unverified"\n'


def second_class(rules: str, class_id: str = "class_i") -> str:
    return f'\n[[quality_classes]]\nid = "{class_id}"\nname_zh = "一级"\nname_en = "Class I"\n{rules}'


def paths(problems: list[RecipeProblem]) -> list[tuple[str, str]]:
    return [(p.path, p.kind) for p in problems]


def test_minimal_recipe_is_clean() -> None:
    assert check_recipe_text(MINIMAL) == []


def test_overlapping_size_classes_name_both() -> None:
    problems = check_recipe_text(with_band(MINIMAL, "big", 65.0, 90.0))
    assert paths(problems) == [("size_classes[1].min", "overlap")]
    assert "'big' (size_classes[1])" in problems[0].message
    assert "'small' (size_classes[0])" in problems[0].message


def test_overlap_is_found_even_when_another_field_is_wrong() -> None:
    text = with_band(MINIMAL, "big", 65.0, 90.0).replace('name_en = "Extra"', 'name_en = "Extra"\ncolour = "red"')
    assert paths(check_recipe_text(text)) == [
        ("quality_classes[0].colour", "unknown_key"),
        ("size_classes[1].min", "overlap"),
    ]


def test_gap_between_bands() -> None:
    problems = check_recipe_text(with_band(MINIMAL, "big", 75.0, None))
    assert paths(problems) == [("size_classes[0].max", "gap")]
    assert "'small'" in problems[0].message and "'big'" in problems[0].message


def test_touching_bands_are_neither_gap_nor_overlap() -> None:
    assert check_recipe_text(with_band(MINIMAL, "big", 70.0, None)) == []


def test_unknown_key_at_its_path() -> None:
    text = MINIMAL.replace("min = 60.0\n", "min = 60.0\nmx = 70.0\n")
    assert paths(check_recipe_text(text)) == [("quality_classes[0].rules[0].mx", "unknown_key")]


def test_min_above_max_and_colour_share_above_one_are_invalid() -> None:
    text = MINIMAL + rule("weight_g", 200.0, 100.0) + rule("colour.red", 1.5)
    assert paths(check_recipe_text(text)) == [
        ("quality_classes[0].rules[1].max", "invalid"),
        ("quality_classes[0].rules[2].min", "invalid"),
    ]


def test_impossible_limits() -> None:
    text = MINIMAL + rule("weight_g", high=-5.0) + rule("elongation", high=0.9) + rule("defect_surface_fraction", low=1.5)
    problems = check_recipe_text(text)
    assert ("quality_classes[0].rules[1].max", "impossible") in paths(problems)
    assert ("quality_classes[0].rules[2].max", "impossible") in paths(problems)
    assert ("quality_classes[0].rules[3].min", "impossible") in paths(problems)


def test_colour_box_out_of_range_and_overlapping() -> None:
    text = MINIMAL.replace("lab_hi = [100.01, 128.0, 128.0]", "lab_hi = [140.0, 128.0, 128.0]")
    assert paths(check_recipe_text(text)) == [("colour_classes[0].lab_hi", "colour_range")]
    second = '[[colour_classes]]\nname = "pink"\nlab_lo = [50.0, 10.0, -20.0]\nlab_hi = [90.0, 40.0, 20.0]\n\n[[size_classes]]'
    text = MINIMAL.replace("[[size_classes]]", second, 1)
    problems = check_recipe_text(text)
    assert paths(problems) == [("colour_classes[1]", "colour_overlap")]
    assert "'pink'" in problems[0].message and "'red'" in problems[0].message


def test_class_whose_rules_contradict_is_unreachable() -> None:
    text = MINIMAL + rule("diameter_major_mm", high=55.0)
    problems = check_recipe_text(text)
    assert paths(problems) == [("quality_classes[0]", "unreachable")]
    assert "diameter_major_mm" in problems[0].message


def test_colour_shares_above_the_whole_surface_are_unreachable() -> None:
    green = '[[colour_classes]]\nname = "green"\nlab_lo = [0.0, -128.0, 10.0]\nlab_hi = [100.01, -8.0, 128.0]\n\n[[size_classes]]'
    text = MINIMAL.replace("[[size_classes]]", green, 1) + rule("colour.red", 0.6) + rule("colour.green", 0.6)
    assert paths(check_recipe_text(text)) == [("quality_classes[0]", "unreachable")]


def test_class_shadowed_by_a_better_one_is_unreachable() -> None:
    # Class I asks for more than Extra: every fruit passing it is graded Extra first.
    text = MINIMAL + second_class(rule("diameter_major_mm", 65.0))
    problems = check_recipe_text(text)
    assert paths(problems) == [("quality_classes[1]", "unreachable")]
    assert "passes 'extra' first" in problems[0].message
    # A looser Class I is reachable.
    assert check_recipe_text(MINIMAL + second_class(rule("diameter_major_mm", 55.0))) == []


def test_a_flag_cap_makes_a_shadowed_class_reachable() -> None:
    text = MINIMAL.replace("[[colour_classes]]", '[flags]\nmisshapen = "class_i"\n\n[[colour_classes]]', 1)
    assert check_recipe_text(text + second_class(rule("diameter_major_mm", 65.0))) == []


def test_not_toml() -> None:
    assert paths(check_recipe_text("name = ")) == [("(toml)", "toml")]


def test_every_shipped_recipe_checks_clean() -> None:
    names = builtin_recipe_names()
    assert len(names) >= 20
    found = {name: [str(p) for p in check_recipe_file(builtin_recipe_path(name))] for name in names}
    assert found == {name: [] for name in names}


def test_cli_check_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(with_band(MINIMAL, "big", 65.0, 90.0), encoding="utf-8")
    assert main(["recipe", "check", str(bad)]) == 2
    out = capsys.readouterr().out
    assert f"{bad}: size_classes[1].min: size class 'big' (size_classes[1]) overlaps 'small' (size_classes[0])" in out
    assert main(["recipe", "check", "apple"]) == 0
    assert capsys.readouterr().out.strip() == "apple: OK"


def test_cli_new_keeps_comments_and_marks_copies_unverified(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "durian.toml"
    assert main(["recipe", "new", "--from", "apple", "--product", "durian", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "# Canonical colour classes" in text  # a comment of apple.toml survived
    assert 'product = "durian"' in text and 'name = "durian"' in text
    from grading.recipe import load_recipe

    recipe = load_recipe(str(out))
    assert recipe.product == "durian"
    assert {t.status for t in recipe.thresholds()} == {"unverified"}
    assert all("copied from recipe 'apple'" in t.source for t in recipe.thresholds())
    assert len(recipe.thresholds()) == len(load_recipe("apple").thresholds())
    # It never overwrites.
    assert main(["recipe", "new", "--from", "apple", "--product", "durian", "--out", str(out)]) == 2
    assert "not overwritten" in capsys.readouterr().err


def test_cli_check_json_and_a_bad_product_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    bad = tmp_path / "gap.toml"
    bad.write_text(with_band(MINIMAL, "big", 75.0, None), encoding="utf-8")
    assert main(["recipe", "check", "--json", str(bad)]) == 2
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["ok"] is False
    assert report["problems"] == [{"path": "size_classes[0].max", "message": report["problems"][0]["message"], "kind": "gap"}]
    assert main(["recipe", "new", "--from", "apple", "--product", "Dragon Fruit", "--out", str(tmp_path / "x.toml")]) == 2
    assert "--product" in capsys.readouterr().err
    assert not (tmp_path / "x.toml").exists()
