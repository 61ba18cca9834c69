"""Outlet assignment: which drop a graded fruit goes to.

Owns the mapping from a ``GradeResult`` to an outlet number, given the configured outlets and
which of them are full right now: pack outlets take the quality/size classes they list (an empty
list takes any), ``recheck`` results go to a recheck outlet and ``cull`` results to a cull
outlet. Outlets that take the same classes form a group; among several outlets that can take a
fruit the load is balanced by fill: the one given the fewest fruit since its carton was last
swapped (``carton_swapped``; never, for outlets without cartons) wins, full outlets are skipped. ``0`` means recirculate: no outlet can take it now.

It does not time anything: the runtime writes the number into the PLC's outlet table.
"""

from __future__ import annotations

from collections.abc import Sequence

from grading.config import OutletSettings
from grading.grader import CULL, RECHECK, GradeResult
from grading.recipe import Recipe

RECIRCULATE = 0


class OutletAssigner:
    def __init__(self, outlets: Sequence[OutletSettings]) -> None:
        numbers = [o.number for o in outlets]
        if len(set(numbers)) != len(numbers):
            raise ValueError("outlet numbers must be unique")
        self.outlets = tuple(outlets)
        self._counts = [0] * len(self.outlets)
        self._fill = [0] * len(self.outlets)  # fruit given since the outlet's carton was swapped
        # Candidate lists are cached per (quality, size): the set of outlets is fixed, only the
        # full flags and counts change from fruit to fruit.
        self._candidates: dict[tuple[str, str | None], tuple[int, ...]] = {}

    @property
    def assigned_counts(self) -> dict[int, int]:
        """Fruit assigned so far, by outlet number."""
        return {o.number: c for o, c in zip(self.outlets, self._counts, strict=True)}

    def reset_counts(self) -> None:
        self._counts = [0] * len(self.outlets)
        self._fill = [0] * len(self.outlets)

    def carton_swapped(self, numbers: Sequence[int]) -> None:
        """The outlets ``numbers`` have an empty carton now: they fill first within their group."""
        for index, outlet in enumerate(self.outlets):
            if outlet.number in numbers:
                self._fill[index] = 0

    def candidates(self, quality_class: str, size_class: str | None) -> tuple[int, ...]:
        """Indexes (into ``outlets``) of the outlets that take this class, full or not."""
        key = (quality_class, size_class)
        found = self._candidates.get(key)
        if found is None:
            found = tuple(i for i, o in enumerate(self.outlets) if _takes(o, quality_class, size_class))
            self._candidates[key] = found
        return found

    def assign(self, result: GradeResult, outlet_full: Sequence[bool]) -> int:
        """The outlet number for this fruit, or 0 (recirculate) when none can take it."""
        best = -1
        for index in self.candidates(result.quality_class, result.size_class):
            number = self.outlets[index].number
            if number <= len(outlet_full) and outlet_full[number - 1]:
                continue
            # Ties go to the outlet listed first: the operator's order is a preference.
            if best < 0 or self._fill[index] < self._fill[best]:
                best = index
        if best < 0:
            return RECIRCULATE
        self._counts[best] += 1
        self._fill[best] += 1
        return self.outlets[best].number

    def coverage_issues(self, recipe: Recipe) -> list[str]:
        """What would recirculate forever or is misconfigured under ``recipe``; empty when all is covered."""
        issues = []
        quality_ids = set(recipe.quality_class_ids())
        size_ids = set(recipe.size_class_ids())
        for outlet in self.outlets:
            for q in outlet.quality_classes:
                if q not in quality_ids:
                    issues.append(f"outlet {outlet.number}: recipe {recipe.name!r} has no quality class {q!r}")
            for s in outlet.size_classes:
                if s not in size_ids:
                    issues.append(f"outlet {outlet.number}: recipe {recipe.name!r} has no size class {s!r}")
        for role in (RECHECK, CULL):
            if not self.candidates(role, None):
                issues.append(f"no {role} outlet: {role} fruit will recirculate")
        sizes: list[str | None] = [*recipe.size_class_ids(), None]
        for quality_id in recipe.quality_class_ids():
            for size_id in sizes:
                if not self.candidates(quality_id, size_id):
                    what = f"size {size_id}" if size_id is not None else "no size class"
                    issues.append(f"no outlet takes quality {quality_id} with {what}")
        return issues


def _takes(outlet: OutletSettings, quality_class: str, size_class: str | None) -> bool:
    if quality_class == RECHECK:
        return outlet.role == "recheck"
    if quality_class == CULL:
        return outlet.role == "cull"
    if outlet.role != "pack":
        return False
    if outlet.quality_classes and quality_class not in outlet.quality_classes:
        return False
    return not outlet.size_classes or (size_class is not None and size_class in outlet.size_classes)
