"""Recipes: the grade map for one product/variety, loaded from a TOML file and validated.

Owns the recipe schema (colour classes, size classes on one size axis, quality classes best first
with their min/max rules, what to do with vision flags), loading built-in or user recipes, and
reporting every problem as ``FILE: dotted.field: message``. Every grading threshold lives here,
in data, with the ``source`` it came from and a ``status`` (verified / secondary / unverified), so
the HMI can warn about thresholds nobody has checked against the official text
(``Recipe.unverified_thresholds()``).

It does not grade: ``grading.grader`` compiles a recipe into a fast per-fruit function.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    computed_field,
    field_validator,
    model_validator,
)

from grading.config import ConfigIssue

Status = Literal["verified", "secondary", "unverified"]
#: Products the fruit simulator and the vision defaults know (``simulators.fruit``,
#: ``vision.pipeline.settings_for_product``). A recipe may name any other product id: the
#: vision pipeline then uses generic defaults and measures the recipe's own colour classes.
SIMULATED_PRODUCTS: tuple[str, ...] = ("apple", "cherry", "mango", "pomegranate")
PRODUCT_PATTERN = r"^[a-z][a-z0-9_]*$"
#: A product id (was the four products' Literal; kept so existing imports still work).
Product = str
SizeAxis = Literal["diameter_mm", "weight_g"]

#: Measures a rule may test, besides ``colour.<class name>``. Each is a field of
#: ``grading.measurement.FruitMeasurement`` except ``defect_surface_fraction``, which the grader
#: derives (defect area over the fruit's estimated surface, see ``spheroid_surface_cm2``).
PLAIN_MEASURES: frozenset[str] = frozenset(
    {
        "diameter_major_mm",
        "diameter_minor_mm",
        "weight_g",
        "defect_area_cm2",
        "defect_count",
        "defect_surface_fraction",
        "elongation",
        "quality_score",
    }
)
COLOUR_PREFIX = "colour."
#: Grade outcomes that are not recipe classes; a recipe may not use them as class ids.
RESERVED_CLASS_IDS = frozenset({"cull", "recheck"})
_OUTCOME_NAMES = {"cull": ("次果", "Cull"), "recheck": ("复检", "Recheck")}
#: What a recipe may do with a vision flag, besides capping the grade at a named class.
FLAG_ACTIONS = frozenset({"recheck", "cull", "ignore"})

_ID_PATTERN = r"^[A-Za-z0-9_+\-.<>]+$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColourClassSpec(_Strict):
    """A colour class: a half-open CIELAB box ``lab_lo <= (L, a, b) < lab_hi``."""

    name: str = Field(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$", description="Class name.")
    lab_lo: tuple[float, float, float] = Field(description="Inclusive lower corner (L 0..100, a, b -128..127).")
    lab_hi: tuple[float, float, float] = Field(description="Exclusive upper corner.")

    @model_validator(mode="after")
    def _check_box(self) -> ColourClassSpec:
        for axis, lo, hi in zip("Lab", self.lab_lo, self.lab_hi, strict=True):
            if not lo < hi:
                raise ValueError(f"lab_hi: {axis} upper bound {hi} must be above the lower bound {lo}")
        return self

    def contains(self, lab: tuple[float, float, float]) -> bool:
        return all(lo <= x < hi for lo, x, hi in zip(self.lab_lo, lab, self.lab_hi, strict=True))


class SizeClassSpec(_Strict):
    """A size band on the recipe's size axis: ``min <= value < max`` (``max`` absent = no upper bound)."""

    id: str = Field(min_length=1, max_length=16, pattern=_ID_PATTERN, description="Size class id, e.g. 'JJ' or '70-75'.")
    name: str = Field("", max_length=64, description="Display name (defaults to the id).")
    min: float = Field(ge=0, description="Inclusive lower bound, in the size axis unit (mm or g).")
    max: float | None = Field(None, gt=0, description="Exclusive upper bound; absent = open-ended.")
    source: str = Field(min_length=1, description="Where the numbers come from.")
    status: Status = Field(description="verified / secondary / unverified (see DOMAIN.md).")
    carton_weight_spread_g: float | None = Field(
        None, gt=0, le=10000,
        description="Size uniformity: the largest weight difference between fruit of one carton of this size "
        "class (e.g. Codex mango: 75 g for size A); absent = not checked.",
    )

    @model_validator(mode="after")
    def _check_bounds(self) -> SizeClassSpec:
        if self.max is not None and not self.max > self.min:
            raise ValueError(f"max: {self.max} must be above min {self.min}")
        return self

    def contains(self, value: float) -> bool:
        return self.min <= value and (self.max is None or value < self.max)


class RuleSpec(_Strict):
    """One threshold: the class needs ``min <= measure <= max`` (bounds inclusive, as standards word them)."""

    measure: str = Field(description="A measure name, or 'colour.<colour class>' for a surface fraction 0..1.")
    min: float | None = Field(None, description="Inclusive minimum.")
    max: float | None = Field(None, description="Inclusive maximum.")
    size_classes: list[str] = Field(
        default_factory=list, description="Apply only to fruit in these size classes (empty = every fruit)."
    )
    source: str = Field(min_length=1, description="Standard, clause or document the number comes from.")
    status: Status = Field(description="verified / secondary / unverified (see DOMAIN.md).")
    note: str = Field("", description="Why this number, how it was derived.")

    @field_validator("measure")
    @classmethod
    def _known_measure(cls, value: str) -> str:
        if value in PLAIN_MEASURES or (value.startswith(COLOUR_PREFIX) and len(value) > len(COLOUR_PREFIX)):
            return value
        known = ", ".join(sorted(PLAIN_MEASURES))
        raise ValueError(f"unknown measure {value!r}; use one of {known} or colour.<class name>")

    @model_validator(mode="after")
    def _check_bounds(self) -> RuleSpec:
        if self.min is None and self.max is None:
            raise ValueError("min: a rule needs min, max or both")
        for key, bound in (("min", self.min), ("max", self.max)):
            if bound is not None and not math.isfinite(bound):
                raise ValueError(f"{key}: must be a finite number")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"max: {self.max} is below min {self.min}")
        if self.measure.startswith(COLOUR_PREFIX):
            for key, bound in (("min", self.min), ("max", self.max)):
                if bound is not None and not 0.0 <= bound <= 1.0:
                    raise ValueError(f"{key}: a colour rule is a surface fraction in 0..1, got {bound}")
        return self

    def describe(self) -> str:
        """A short human form, e.g. ``0.50 <= colour.red`` or ``defect_area_cm2 <= 1``."""
        parts = []
        if self.min is not None:
            parts.append(f"{self.min:g} <=")
        parts.append(self.measure)
        if self.max is not None:
            parts.append(f"<= {self.max:g}")
        text = " ".join(parts)
        if self.size_classes:
            text += f" (size {', '.join(self.size_classes)})"
        return text


class QualityClassSpec(_Strict):
    id: str = Field(min_length=1, max_length=16, pattern=_ID_PATTERN, description="Class id, e.g. 'extra'.")
    name_zh: str = Field(min_length=1, max_length=32, description="Chinese display name, e.g. 特级.")
    name_en: str = Field(min_length=1, max_length=32, description="English display name, e.g. Extra.")
    rules: list[RuleSpec] = Field(default_factory=list, description="Every rule must pass for the class.")

    @field_validator("id")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED_CLASS_IDS:
            raise ValueError(f"{value!r} is a grader outcome, not a usable class id")
        return value


@dataclass(frozen=True)
class ReferenceProblem:
    """A problem found across fields of a valid-looking recipe, at a dotted path."""

    path: str
    message: str
    kind: str = "reference"


@dataclass(frozen=True)
class Threshold:
    """One threshold of a recipe with its provenance, for the HMI's warning badge."""

    where: str  # dotted path in the recipe file, e.g. "quality_classes[0].rules[1]"
    summary: str  # e.g. "extra: 0.5 <= colour.red"
    source: str
    status: Status


def _default_flags() -> dict[str, str]:
    # Two fruit in one cup: the cup weight is the sum and the views mix, so nothing is gradable.
    # A fruit cut by the image edge was only partly seen.
    return {"double": "recheck", "edge": "recheck"}


class Recipe(_Strict):
    """The grade map for one product and variety (see docs/recipes.md)."""

    format_version: Literal[1] = Field(1, description="Recipe file format version.")
    name: str = Field(min_length=1, max_length=64, description="Recipe name.")
    product: str = Field(
        min_length=1,
        max_length=32,
        pattern=PRODUCT_PATTERN,
        description="Product id, e.g. apple, mango, kiwifruit (lower case, digits, underscores).",
    )
    variety: str = Field("", max_length=100, description="Variety or variety group the numbers are for.")
    description: str = Field("", description="What this recipe is for and the choices behind it.")
    size_axis: SizeAxis = Field(description="diameter_mm (largest diameter) or weight_g.")
    require_weight: bool = Field(
        True, description="Send fruit without a valid weight to recheck even if no rule needs weight."
    )
    colour_classes: list[ColourClassSpec] = Field(default_factory=list, description="CIELAB colour classes.")
    size_classes: list[SizeClassSpec] = Field(default_factory=list, description="Size bands, non-overlapping.")
    quality_classes: list[QualityClassSpec] = Field(min_length=1, description="Quality classes, best first.")
    flags: dict[str, str] = Field(
        default_factory=_default_flags,
        description="Vision flag -> 'recheck', 'cull', 'ignore', or a class id that caps the grade.",
    )
    quality_model: str | None = Field(
        None, description="Quality model file (from `gradeline vision train`), relative to the recipe file."
    )

    @model_validator(mode="after")
    def _check_references(self, info: ValidationInfo) -> Recipe:
        # Collect every cross-reference problem so one load reports them all; the issues are
        # joined with newlines and split again into one "FILE: field: message" each. A caller
        # that wants them typed (``grading.recipe_check``) passes a context list to collect
        # them in instead, and gets the recipe back.
        problems = self.reference_problems()
        sink = info.context.get("reference_problems") if isinstance(info.context, dict) else None
        if isinstance(sink, list):
            sink.extend(problems)
            return self
        if problems:
            raise ValueError("\n".join(f"{p.path}: {p.message}" for p in problems))
        return self

    def reference_problems(self) -> list[ReferenceProblem]:
        """Duplicates, overlapping size bands and references to undefined classes."""
        problems: list[ReferenceProblem] = []
        problems += _duplicates("colour_classes", [c.name for c in self.colour_classes], "name")
        problems += _duplicates("size_classes", [s.id for s in self.size_classes], "id")
        problems += _duplicates("quality_classes", [q.id for q in self.quality_classes], "id")
        problems += [p for p in size_band_problems([(s.id, s.min, s.max) for s in self.size_classes]) if p.kind == "overlap"]
        colours = {c.name for c in self.colour_classes}
        sizes = {s.id for s in self.size_classes}
        has_quality_rule = False
        for qi, quality in enumerate(self.quality_classes):
            for ri, rule in enumerate(quality.rules):
                where = f"quality_classes[{qi}].rules[{ri}]"
                colour = rule.measure.removeprefix(COLOUR_PREFIX)
                if rule.measure.startswith(COLOUR_PREFIX) and colour not in colours:
                    problems.append(ReferenceProblem(f"{where}.measure", f"no colour class named {colour!r}"))
                for sci, size_id in enumerate(rule.size_classes):
                    if size_id not in sizes:
                        problems.append(ReferenceProblem(f"{where}.size_classes[{sci}]", f"no size class {size_id!r}"))
                has_quality_rule = has_quality_rule or rule.measure == "quality_score"
        if has_quality_rule and self.quality_model is None:
            problems.append(ReferenceProblem("quality_model", "rules on quality_score need a quality model file"))
        classes = {q.id for q in self.quality_classes}
        for flag, action in self.flags.items():
            if action not in FLAG_ACTIONS and action not in classes:
                problems.append(
                    ReferenceProblem(f"flags.{flag}", f"{action!r} is not recheck, cull, ignore or a quality class id")
                )
        if self.flags.get("double", "recheck") not in ("recheck", "cull"):
            problems.append(ReferenceProblem("flags.double", "two fruit in one cup cannot be graded; use recheck or cull"))
        return problems

    @computed_field(description="Thresholds not checked against the standard's text (status secondary or unverified), for the HMI's warning badge.")  # type: ignore[prop-decorator]
    @property
    def unverified(self) -> list[Threshold]:
        return self.unverified_thresholds()

    def quality_class_ids(self) -> list[str]:
        return [q.id for q in self.quality_classes]

    def size_class_ids(self) -> list[str]:
        return [s.id for s in self.size_classes]

    def display_names(self) -> dict[str, tuple[str, str]]:
        """(Chinese, English) display name of every grade outcome, recipe classes first."""
        names = {q.id: (q.name_zh, q.name_en) for q in self.quality_classes}
        names.update(_OUTCOME_NAMES)
        return names

    def quality_class(self, class_id: str) -> QualityClassSpec:
        for quality in self.quality_classes:
            if quality.id == class_id:
                return quality
        raise KeyError(class_id)

    def needs_weight(self) -> bool:
        """Whether grading a fruit needs a valid weight (size axis, a rule, or the recipe says so)."""
        return (
            self.require_weight
            or self.size_axis == "weight_g"
            or any(r.measure == "weight_g" for q in self.quality_classes for r in q.rules)
        )

    def thresholds(self) -> list[Threshold]:
        """Every threshold in the recipe, with its source and status."""
        found = [
            Threshold(
                where=f"size_classes[{i}]",
                summary=f"size {s.id}: {s.min:g} <= {self.size_axis}"
                + (f" < {s.max:g}" if s.max is not None else ""),
                source=s.source,
                status=s.status,
            )
            for i, s in enumerate(self.size_classes)
        ]
        for qi, quality in enumerate(self.quality_classes):
            for ri, rule in enumerate(quality.rules):
                found.append(
                    Threshold(
                        where=f"quality_classes[{qi}].rules[{ri}]",
                        summary=f"{quality.id}: {rule.describe()}",
                        source=rule.source,
                        status=rule.status,
                    )
                )
        return found

    def unverified_thresholds(self) -> list[Threshold]:
        """Thresholds not checked against the primary text (status secondary or unverified)."""
        return [t for t in self.thresholds() if t.status != "verified"]


def _duplicates(field: str, values: list[str], key: str) -> list[ReferenceProblem]:
    seen: set[str] = set()
    found = []
    for index, value in enumerate(values):
        if value in seen:
            found.append(ReferenceProblem(f"{field}[{index}].{key}", f"duplicate {value!r}"))
        seen.add(value)
    return found


def size_band_problems(bands: list[tuple[str, float, float | None]]) -> list[ReferenceProblem]:
    """Overlaps and gaps between size bands given as ``(id, min, max)`` in file order.

    Bands are half-open ``[min, max)``, so ``[60, 65)`` and ``[65, 70)`` neither overlap nor
    leave a gap. Each problem is placed on the later band's ``min`` (overlap) or the earlier
    band's ``max`` (gap) and names both bands by index and id.
    """
    problems: list[ReferenceProblem] = []
    ordered = sorted(enumerate(bands), key=lambda item: item[1][1])
    for (li, (lid, _, lmax)), (ui, (uid, umin, _)) in zip(ordered, ordered[1:], strict=False):
        if lmax is None or lmax > umin:
            problems.append(
                ReferenceProblem(
                    f"size_classes[{ui}].min",
                    f"size class {uid!r} (size_classes[{ui}]) overlaps {lid!r} (size_classes[{li}])",
                    "overlap",
                )
            )
        elif lmax < umin:
            problems.append(
                ReferenceProblem(
                    f"size_classes[{li}].max",
                    f"gap between size class {lid!r} (size_classes[{li}], max {lmax:g}) and "
                    f"{uid!r} (size_classes[{ui}], min {umin:g}): fruit in between get no size class",
                    "gap",
                )
            )
    return problems


class RecipeError(Exception):
    """A recipe file is missing, unreadable or invalid; carries every issue found."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        super().__init__("\n".join(str(i) for i in issues))
        self.issues = issues


# A validator message of the form "dotted.field: message" names a field below the model that
# raised it; this pattern tells such a prefix from a message that merely contains a colon.
_FIELD_PREFIX = re.compile(r"^([A-Za-z_][\w]*(?:\[\d+\])?(?:\.[\w<>+\-]+(?:\[\d+\])?)*): (.+)$", re.S)


def dotted_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a dotted path: ``("size_classes", 2, "max")`` -> ``size_classes[2].max``."""
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int) and parts:
            parts[-1] = f"{parts[-1]}[{item}]"
        else:
            parts.append(str(item))
    return ".".join(parts)


def error_locations(exc: ValidationError) -> list[tuple[str, str, str]]:
    """``(dotted path, message, pydantic error type)`` of every error, cross-field ones split
    into one per field they name."""
    found = []
    for err in exc.errors():
        field = dotted_path(tuple(err["loc"]))
        message = err["msg"]
        if err["type"] != "value_error":
            found.append((field or "(top level)", message, err["type"]))
            continue
        for line in message.removeprefix("Value error, ").split("\n"):
            match = _FIELD_PREFIX.match(line)
            if match:
                found.append((".".join(p for p in (field, match.group(1)) if p), match.group(2), "value_error"))
            else:
                found.append((field or "(top level)", line, "value_error"))
    return found


def _issues(exc: ValidationError, file: str) -> list[ConfigIssue]:
    return [ConfigIssue(file, field, message) for field, message, _ in error_locations(exc)]


def parse_recipe(data: dict[str, object], file: str = "<recipe>", base_dir: Path | None = None) -> Recipe:
    """Validate recipe data; ``quality_model`` is resolved against ``base_dir`` and must exist."""
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        raise RecipeError(_issues(exc, file)) from exc
    if recipe.quality_model is not None:
        model_path = Path(recipe.quality_model)
        if not model_path.is_absolute() and base_dir is not None:
            model_path = base_dir / model_path
        if not model_path.is_file():
            raise RecipeError([ConfigIssue(file, "quality_model", f"model file not found: {model_path}")])
        recipe = recipe.model_copy(update={"quality_model": str(model_path.resolve())})
    return recipe


def _builtin_dir() -> Path:
    return Path(str(resources.files("grading") / "recipes"))


def builtin_recipe_names() -> list[str]:
    return sorted(p.stem for p in _builtin_dir().glob("*.toml"))


def builtin_recipe_path(name: str) -> Path:
    """The file of a built-in recipe (``name`` from ``builtin_recipe_names()``)."""
    return _builtin_dir() / f"{name}.toml"


def load_recipe(ref: str | Path) -> Recipe:
    """Load a built-in recipe by name (``apple``...) or a recipe TOML file by path."""
    ref_text = str(ref)
    path = builtin_recipe_path(ref_text) if ref_text in builtin_recipe_names() else Path(ref_text)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        hint = "" if path.suffix else f" (built-in recipes: {', '.join(builtin_recipe_names())})"
        raise RecipeError([ConfigIssue(ref_text, "(file)", (exc.strerror or str(exc)) + hint)]) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError([ConfigIssue(str(path), "(toml)", str(exc))]) from exc
    return parse_recipe(data, str(path), base_dir=path.parent)
