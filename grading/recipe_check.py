"""Recipe check: every problem of a recipe, typed and named by its dotted path.

Owns what ``gradeline recipe check`` and the API's recipe validation report, beyond what
loading a recipe refuses (``grading.recipe``): gaps between size bands, limits no fruit can
meet (a negative weight, a defect share above 1, an elongation below 1, colour shares that add
up to more than the whole surface), colour boxes out of the CIELAB range or overlapping each
other, and quality classes that can never be reached (their rules contradict each other, or
every fruit passing them passes a better class first). Loading errors (unknown keys, wrong
types, overlapping bands, undefined references) are reported too, as problems of the same type,
so one call gives the whole list.

The reachability test is sound but not complete: it reasons per measure on intervals, so a
class it calls unreachable really is, while some contradictions that involve two measures at
once (e.g. minor diameter above major diameter) are not found.

It does not load line configs nor grade.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from grading.recipe import (
    COLOUR_PREFIX,
    Recipe,
    ReferenceProblem,
    RuleSpec,
    builtin_recipe_names,
    builtin_recipe_path,
    error_locations,
    size_band_problems,
)

ProblemKind = Literal[
    "toml",  # the file is not TOML
    "unknown_key",  # a key the format does not have
    "invalid",  # a value of the wrong type or outside its field's bounds
    "reference",  # a duplicate id, or a name no class defines
    "overlap",  # two size bands claim the same fruit
    "gap",  # fruit between two size bands get no size class
    "impossible",  # a limit no fruit can meet
    "colour_range",  # a colour box outside CIELAB
    "colour_overlap",  # two colour boxes share colours
    "unreachable",  # a quality class no fruit can ever get
]

#: Values a measure can take: (lowest, highest).
_DOMAIN: dict[str, tuple[float, float]] = {
    "diameter_major_mm": (0.0, math.inf),
    "diameter_minor_mm": (0.0, math.inf),
    "weight_g": (0.0, math.inf),
    "defect_area_cm2": (0.0, math.inf),
    "defect_count": (0.0, math.inf),
    "defect_surface_fraction": (0.0, 1.0),
    "elongation": (1.0, math.inf),
    "quality_score": (0.0, 1.0),
}
_COLOUR_DOMAIN = (0.0, 1.0)
#: CIELAB box limits: L 0..100 (an exclusive upper corner may go to 101 so that L = 100 is
#: inside), a and b -128..128 (OpenCV's 8-bit Lab covers -128..127).
_LAB_LIMITS = ((0.0, 101.0), (-128.0, 128.0), (-128.0, 128.0))


@dataclass(frozen=True)
class RecipeProblem:
    """One problem of a recipe: where (dotted path, e.g. ``size_classes[2].max``), what, which kind."""

    path: str
    message: str
    kind: ProblemKind

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def check_recipe_file(ref: str | Path) -> list[RecipeProblem]:
    """Check a recipe file (or a built-in by name). Empty list = clean."""
    ref_text = str(ref)
    path = builtin_recipe_path(ref_text) if ref_text in builtin_recipe_names() else Path(ref_text)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return [RecipeProblem("(file)", exc.strerror or str(exc), "toml")]
    return check_recipe_text(text, base_dir=path.parent)


def check_recipe_text(text: str, base_dir: Path | None = None) -> list[RecipeProblem]:
    """Check a recipe's TOML text (the API validates uploaded text with this)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return [RecipeProblem("(toml)", str(exc), "toml")]
    return check_recipe_data(data, base_dir=base_dir)


def check_recipe_data(data: Mapping[str, object], base_dir: Path | None = None) -> list[RecipeProblem]:
    """Check parsed recipe data; every problem found, in file order as far as possible."""
    collected: list[ReferenceProblem] = []
    try:
        recipe = Recipe.model_validate(dict(data), context={"reference_problems": collected})
    except ValidationError as exc:
        # Field errors stop validation before the cross-field checks, so run the band check on
        # whatever bands are well formed: an overlap is worth reporting with a typo elsewhere.
        return _field_problems(exc) + _raw_band_problems(data)
    problems = [RecipeProblem(p.path, p.message, _reference_kind(p.kind)) for p in collected]
    problems += [
        RecipeProblem(p.path, p.message, "gap")
        for p in size_band_problems([(s.id, s.min, s.max) for s in recipe.size_classes])
        if p.kind == "gap"
    ]
    if recipe.quality_model is not None and base_dir is not None:
        model_path = Path(recipe.quality_model)
        if not model_path.is_absolute():
            model_path = base_dir / model_path
        if not model_path.is_file():
            problems.append(RecipeProblem("quality_model", f"model file not found: {model_path}", "reference"))
    problems += _colour_problems(recipe)
    problems += _limit_problems(recipe)
    problems += _reachability_problems(recipe)
    return problems


def _reference_kind(kind: str) -> ProblemKind:
    return "overlap" if kind == "overlap" else "reference"


def _field_problems(exc: ValidationError) -> list[RecipeProblem]:
    return [
        RecipeProblem(path, "unknown key", "unknown_key") if kind == "extra_forbidden" else RecipeProblem(path, message, "invalid")
        for path, message, kind in error_locations(exc)
    ]


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _raw_band_problems(data: Mapping[str, object]) -> list[RecipeProblem]:
    raw = data.get("size_classes")
    if not isinstance(raw, list):
        return []
    bands: list[tuple[str, float, float | None]] = []
    for item in raw:
        if not isinstance(item, dict):
            return []
        low, high = _number(item.get("min")), _number(item.get("max"))
        if low is None or ("max" in item and high is None):
            return []
        bands.append((str(item.get("id", "?")), low, high))
    return [RecipeProblem(p.path, p.message, "overlap" if p.kind == "overlap" else "gap") for p in size_band_problems(bands)]


def _colour_problems(recipe: Recipe) -> list[RecipeProblem]:
    problems = []
    for ci, colour in enumerate(recipe.colour_classes):
        for axis, (lo_limit, hi_limit), lo, hi in zip("Lab", _LAB_LIMITS, colour.lab_lo, colour.lab_hi, strict=True):
            if lo < lo_limit or lo >= hi_limit:
                problems.append(
                    RecipeProblem(f"colour_classes[{ci}].lab_lo", f"{axis} = {lo:g} is outside {lo_limit:g}..{hi_limit:g}", "colour_range")
                )
            if hi <= lo_limit or hi > hi_limit:
                problems.append(
                    RecipeProblem(f"colour_classes[{ci}].lab_hi", f"{axis} = {hi:g} is outside {lo_limit:g}..{hi_limit:g}", "colour_range")
                )
    classes = recipe.colour_classes
    for i, first in enumerate(classes):
        for j in range(i + 1, len(classes)):
            second = classes[j]
            shared = all(
                max(lo1, lo2) < min(hi1, hi2)
                for lo1, hi1, lo2, hi2 in zip(first.lab_lo, first.lab_hi, second.lab_lo, second.lab_hi, strict=True)
            )
            if shared:
                problems.append(
                    RecipeProblem(
                        f"colour_classes[{j}]",
                        f"colour class {second.name!r} overlaps {first.name!r} (colour_classes[{i}]): "
                        "a pixel can be in one class only",
                        "colour_overlap",
                    )
                )
    return problems


def _domain(measure: str) -> tuple[float, float]:
    return _COLOUR_DOMAIN if measure.startswith(COLOUR_PREFIX) else _DOMAIN[measure]


def _limit_problems(recipe: Recipe) -> list[RecipeProblem]:
    problems = []
    for qi, quality in enumerate(recipe.quality_classes):
        for ri, rule in enumerate(quality.rules):
            where = f"quality_classes[{qi}].rules[{ri}]"
            low, high = _domain(rule.measure)
            for key, bound in (("min", rule.min), ("max", rule.max)):
                if bound is None:
                    continue
                if bound < 0:
                    problems.append(RecipeProblem(f"{where}.{key}", f"{rule.measure} cannot be negative ({bound:g})", "impossible"))
                elif key == "min" and bound > high:
                    problems.append(
                        RecipeProblem(f"{where}.min", f"{rule.measure} is at most {high:g}; min {bound:g} can never pass", "impossible")
                    )
                elif key == "max" and bound < low:
                    problems.append(
                        RecipeProblem(f"{where}.max", f"{rule.measure} is at least {low:g}; max {bound:g} can never pass", "impossible")
                    )
    return problems


# --- reachability ---------------------------------------------------------------------------
# A class's box: for each measure it tests, the closed interval a fruit must lie in. Per size
# band the band's interval is added on the size axis and the rules scoped to that band apply.
Box = dict[str, tuple[float, float]]


def _axis_measure(recipe: Recipe) -> str:
    return "diameter_major_mm" if recipe.size_axis == "diameter_mm" else "weight_g"


def _narrow(box: Box, measure: str, low: float | None, high: float | None) -> None:
    lo, hi = box.get(measure, _domain(measure))
    box[measure] = (max(lo, low) if low is not None else lo, min(hi, high) if high is not None else hi)


def _box(rules: list[RuleSpec], band: tuple[str, float, float | None] | None, axis: str) -> Box:
    box: Box = {}
    if band is not None:
        _narrow(box, axis, band[1], band[2])
    for rule in rules:
        if rule.size_classes and (band is None or band[0] not in rule.size_classes):
            continue
        _narrow(box, rule.measure, rule.min, rule.max)
    return box


def _empty_reason(box: Box) -> str | None:
    for measure, (lo, hi) in box.items():
        if lo > hi:
            return f"its limits on {measure} leave no value ({lo:g} > {hi:g})"
    colour_floor = sum(lo for measure, (lo, _) in box.items() if measure.startswith(COLOUR_PREFIX))
    if colour_floor > 1.0 + 1e-9:
        return f"its minimum colour shares add up to {colour_floor:g} of the surface"
    return None


def _inside(inner: Box, outer: Box) -> bool:
    for measure, (olo, ohi) in outer.items():
        ilo, ihi = inner.get(measure, _domain(measure))
        if ilo < olo or ihi > ohi:
            return False
    return True


def _reachability_problems(recipe: Recipe) -> list[RecipeProblem]:
    axis = _axis_measure(recipe)
    contexts: list[tuple[str, float, float | None] | None] = [(s.id, s.min, s.max) for s in recipe.size_classes]
    # A fruit outside every band (or a recipe without bands) skips the scoped rules.
    contexts.append(None)
    ids = recipe.quality_class_ids()
    caps = {ids.index(action) for action in recipe.flags.values() if action in ids}
    problems = []
    for j, quality in enumerate(recipe.quality_classes):
        reasons: set[str] = set()
        reachable = False
        for band in contexts:
            box = _box(quality.rules, band, axis)
            empty = _empty_reason(box)
            if empty is not None:
                reasons.add(empty)
                continue
            dominated_by = None
            for i in range(j):
                if any(i < c <= j for c in caps):
                    continue  # a flag cap can send a fruit past class i straight to this one
                earlier = _box(recipe.quality_classes[i].rules, band, axis)
                if _empty_reason(earlier) is None and _inside(box, earlier):
                    dominated_by = ids[i]
                    break
            if dominated_by is None:
                reachable = True
                break
            reasons.add(f"every fruit that passes it passes {dominated_by!r} first")
        if not reachable:
            why = "; ".join(sorted(reasons))
            problems.append(RecipeProblem(f"quality_classes[{j}]", f"class {quality.id!r} can never be reached: {why}", "unreachable"))
    return problems
