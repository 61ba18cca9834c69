"""The grader: one fruit's measurement in, its quality class, size class and reason codes out.

Owns the grading semantics of DOMAIN.md §6.7: the grade is the best class (recipes list them best
first) whose every rule passes; a fruit failing every class is ``cull``; a fruit that cannot be
graded (no valid weight where weight is needed, two fruit in one cup, a missing measure) is
``recheck``. Every decision carries reason codes saying which rule failed and by how much.

The recipe is compiled once into plain tuples so ``grade`` is a few comparisons per rule; it is
called for every fruit on the line. Thresholds never live here, only in recipes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from grading.measurement import FruitMeasurement
from grading.recipe import COLOUR_PREFIX, Recipe

CULL = "cull"
RECHECK = "recheck"


@dataclass(frozen=True)
class GradeResult:
    quality_class: str  # a recipe class id, "cull" (fails every class) or "recheck" (cannot be graded)
    size_class: str | None  # None when not sizeable or outside every size class
    reasons: tuple[str, ...]  # e.g. "class_i:defect_area_cm2=1.40>1.00"


def spheroid_surface_cm2(diameter_major_mm: float, diameter_minor_mm: float) -> float:
    """Surface of a spheroid with one long axis (major) and two equal short axes (minor), in cm².

    Uses Knud Thomsen's approximation (error under about 1 %), good enough to turn a defect area
    into a share of the fruit's surface as the Codex pomegranate standard words its limits.
    """
    a = diameter_major_mm / 20.0  # semi-axes in cm
    b = diameter_minor_mm / 20.0
    p = 1.6075
    return 4.0 * math.pi * (((a * b) ** p * 2.0 + (b * b) ** p) / 3.0) ** (1.0 / p)


Getter = Callable[[FruitMeasurement], float | None]


def _getter(measure: str) -> Getter:
    if measure.startswith(COLOUR_PREFIX):
        colour = measure.removeprefix(COLOUR_PREFIX)
        # A colour class the vision did not report covers none of the surface.
        return lambda m: m.colour_fractions.get(colour, 0.0)
    if measure == "defect_surface_fraction":

        def fraction(m: FruitMeasurement) -> float | None:
            surface = spheroid_surface_cm2(m.diameter_major_mm, m.diameter_minor_mm)
            return m.defect_area_cm2 / surface if surface > 0 else None

        return fraction
    if measure == "defect_count":
        return lambda m: float(m.defect_count)
    name = measure
    return lambda m: getattr(m, name)


def _fmt_pair(value: float, bound: float) -> tuple[str, str]:
    # Two decimals normally; more when rounding would print a failing value equal to its bound.
    for digits in (2, 4, 6):
        a, b = f"{value:.{digits}f}", f"{bound:.{digits}f}"
        if a != b:
            return a, b
    return repr(value), repr(bound)


@dataclass(frozen=True)
class _Rule:
    measure: str
    getter: Getter
    lo: float  # -inf when the rule has no minimum
    hi: float  # +inf when the rule has no maximum
    sizes: frozenset[str] | None  # None = applies to every fruit


@dataclass(frozen=True)
class _Class:
    id: str
    rules: tuple[_Rule, ...]


class Grader:
    """Grades fruit by one recipe. Stateless after construction; safe to share."""

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe
        self._classes = tuple(
            _Class(
                id=q.id,
                rules=tuple(
                    _Rule(
                        measure=r.measure,
                        getter=_getter(r.measure),
                        lo=-math.inf if r.min is None else r.min,
                        hi=math.inf if r.max is None else r.max,
                        sizes=frozenset(r.size_classes) if r.size_classes else None,
                    )
                    for r in q.rules
                ),
            )
            for q in recipe.quality_classes
        )
        self._class_rank = {c.id: i for i, c in enumerate(self._classes)}
        self._sizes = tuple((s.id, s.min, math.inf if s.max is None else s.max) for s in recipe.size_classes)
        self._size_getter = _getter("weight_g" if recipe.size_axis == "weight_g" else "diameter_major_mm")
        self._needs_weight = recipe.needs_weight()
        self._needed = sorted(
            {r.measure for q in recipe.quality_classes for r in q.rules} | {self._size_measure}
        )
        self._needed_getters = tuple((name, _getter(name)) for name in self._needed)
        self._flags = dict(recipe.flags)

    @property
    def _size_measure(self) -> str:
        return "weight_g" if self.recipe.size_axis == "weight_g" else "diameter_major_mm"

    def size_class(self, m: FruitMeasurement) -> str | None:
        value = self._size_getter(m)
        if value is None or not math.isfinite(value):
            return None
        for size_id, lo, hi in self._sizes:
            if lo <= value < hi:
                return size_id
        return None

    def grade(self, m: FruitMeasurement) -> GradeResult:
        reasons: list[str] = []

        # Fruit that cannot be graded go to recheck before any rule is looked at.
        recheck = self._recheck_reasons(m)
        if recheck:
            return GradeResult(RECHECK, None, tuple(recheck))

        size = self.size_class(m)
        if size is None and self._sizes:
            reasons.append(f"size:{self._size_measure}={self._size_getter(m):.2f}:no_size_class")

        # Flags that cap the grade (e.g. misshapen -> at best class_ii) or cull outright.
        best_rank = 0
        for flag in sorted(m.flags):
            action = self._flags.get(flag, "ignore")
            if action == "ignore":
                continue
            if action == CULL:
                reasons.append(f"flag:{flag}->cull")
                return GradeResult(CULL, size, tuple(reasons))
            rank = self._class_rank[action]
            if rank > best_rank:
                best_rank = rank
            reasons.append(f"flag:{flag}->{action}")

        for rank, quality in enumerate(self._classes):
            failed = False
            for rule in quality.rules:
                if rule.sizes is not None and size not in rule.sizes:
                    continue
                value = rule.getter(m)
                assert value is not None  # checked by _recheck_reasons
                if value < rule.lo:
                    shown, bound = _fmt_pair(value, rule.lo)
                    reasons.append(f"{quality.id}:{rule.measure}={shown}<{bound}")
                    failed = True
                elif value > rule.hi:
                    shown, bound = _fmt_pair(value, rule.hi)
                    reasons.append(f"{quality.id}:{rule.measure}={shown}>{bound}")
                    failed = True
            if not failed and rank >= best_rank:
                return GradeResult(quality.id, size, tuple(reasons))
        return GradeResult(CULL, size, tuple(reasons))

    def _recheck_reasons(self, m: FruitMeasurement) -> list[str]:
        found: list[str] = []
        for flag in sorted(m.flags):
            if self._flags.get(flag) == RECHECK:
                found.append(f"recheck:flag:{flag}")
        weight = m.weight_g
        if self._needs_weight and (weight is None or not math.isfinite(weight) or weight <= 0):
            found.append("recheck:no_valid_weight" if weight is None else f"recheck:weight_g={weight}")
        for name, getter in self._needed_getters:
            if name == "weight_g":
                continue  # judged above, with its own reason
            value = getter(m)
            if value is None or not math.isfinite(value):
                found.append(f"recheck:{name}={value}")
        return found


def benchmark(recipe: Recipe, fruit_count: int = 20000, repeats: int = 5, seed: int = 1) -> dict[str, object]:
    """Time ``Grader.grade`` on random fruit against a plain interpreter of the same recipe.

    The baseline walks the pydantic recipe for every fruit, as a first naive grader would; both
    run on the same fruit in the same process, and medians over ``repeats`` are reported. The
    line needs about 1000 fruit/s (cherry worst case 32 fruit/s/lane x 8 lanes = 256 fruit/s).
    """
    import random
    import statistics
    import time

    rng = random.Random(seed)
    colours = [c.name for c in recipe.colour_classes]
    axis_hi = max((s.max or s.min * 1.3) for s in recipe.size_classes) if recipe.size_classes else 100.0
    fruit = []
    for _ in range(fruit_count):
        size = rng.uniform(0.7, 1.1) * axis_hi
        major = size if recipe.size_axis == "diameter_mm" else rng.uniform(60.0, 110.0)
        shares = [rng.random() for _ in colours]
        total = sum(shares) or 1.0
        fruit.append(
            FruitMeasurement(
                weight_g=size if recipe.size_axis == "weight_g" else rng.uniform(100.0, 400.0),
                diameter_major_mm=major,
                diameter_minor_mm=major * rng.uniform(0.8, 1.0),
                area_cm2=math.pi * (major / 20.0) ** 2,
                colour_fractions={c: s / total for c, s in zip(colours, shares, strict=True)},
                defect_count=rng.choice((0, 0, 0, 1, 2)),
                defect_area_cm2=rng.choice((0.0, 0.0, rng.uniform(0.0, 6.0))),
                flags=frozenset({"misshapen"}) if rng.random() < 0.02 else frozenset(),
            )
        )

    def naive(m: FruitMeasurement) -> str:
        size_value = m.weight_g if recipe.size_axis == "weight_g" else m.diameter_major_mm
        size = next((s.id for s in recipe.size_classes if size_value is not None and s.contains(size_value)), None)
        for quality in recipe.quality_classes:
            ok = True
            for rule in quality.rules:
                if rule.size_classes and size not in rule.size_classes:
                    continue
                value = _getter(rule.measure)(m)
                if value is None or (rule.min is not None and value < rule.min) or (
                    rule.max is not None and value > rule.max
                ):
                    ok = False
            if ok:
                return quality.id
        return CULL

    grader = Grader(recipe)
    timings: dict[str, list[float]] = {"grader": [], "baseline_naive": []}
    for _ in range(repeats):
        for name, func in (("grader", grader.grade), ("baseline_naive", naive)):
            start = time.perf_counter()
            for m in fruit:
                func(m)
            timings[name].append(time.perf_counter() - start)
    med = {name: statistics.median(values) for name, values in timings.items()}
    counts: dict[str, int] = {}
    for m in fruit:
        q = grader.grade(m).quality_class
        counts[q] = counts.get(q, 0) + 1
    return {
        "bench": "grader",
        "recipe": recipe.name,
        "fruit": fruit_count,
        "repeats": repeats,
        "grader_fruit_per_s_median": round(fruit_count / med["grader"]),
        "grader_us_per_fruit_median": round(med["grader"] / fruit_count * 1e6, 2),
        "baseline_naive_fruit_per_s_median": round(fruit_count / med["baseline_naive"]),
        "speedup_vs_baseline": round(med["baseline_naive"] / med["grader"], 2),
        "class_counts": counts,
    }
