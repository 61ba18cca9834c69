"""Carton compliance: a closed carton's fruit against its class's tolerance.

The grader puts each fruit strictly in a class; the standards' tolerance is a property of a
package (DOMAIN.md §6.2, UNECE FFV-50): by count, at most 5 % of an Extra carton's fruit, and
10 % of a Class I or Class II carton's, may be below the carton's class. Which classes are
"below" comes from the recipe's order (best first); cull and recheck are below every class.
Size uniformity is checked where the recipe defines a largest weight spread per carton.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Off-grade share allowed by count, by the class's rank in the recipe (0 = best = Extra).
TOLERANCE_BY_RANK = (0.05, 0.10, 0.10)
LOWER_CLASS_TOLERANCE = 0.10  # a fourth class and below: as Class II


@dataclass(frozen=True, slots=True)
class ComplianceResult:
    off_grade_count: int
    fruit_count: int
    tolerance: float | None  # None: the carton's class is not a graded class (nothing checked)
    compliant: bool
    issues: tuple[str, ...]


def tolerance_for(quality_class: str, class_order: Sequence[str]) -> float | None:
    if quality_class not in class_order:
        return None
    rank = class_order.index(quality_class)
    return TOLERANCE_BY_RANK[rank] if rank < len(TOLERANCE_BY_RANK) else LOWER_CLASS_TOLERANCE


def check_carton(
    quality_class: str,
    counts_by_class: Mapping[str, int],
    class_order: Sequence[str],
    *,
    weight_spread_g: float | None = None,
    max_weight_spread_g: float | None = None,
) -> ComplianceResult:
    """``counts_by_class``: the carton's fruit per quality class of their own grading.

    Off-grade: every fruit whose class is not the carton's class or a better one.
    """
    total = sum(counts_by_class.values())
    tolerance = tolerance_for(quality_class, class_order)
    if tolerance is None:
        return ComplianceResult(0, total, None, True, ())
    rank = class_order.index(quality_class)
    good = set(class_order[: rank + 1])
    off = sum(n for cls, n in counts_by_class.items() if cls not in good)
    issues = []
    # integer comparison: off / total > tolerance, without float rounding at the edge
    if total and off * 100 > round(tolerance * 100) * total:
        issues.append(f"off-grade {off}/{total} = {100.0 * off / total:.1f} % > {tolerance * 100:.0f} %")
    if max_weight_spread_g is not None and weight_spread_g is not None and weight_spread_g > max_weight_spread_g:
        issues.append(f"weight spread {weight_spread_g:.0f} g > {max_weight_spread_g:.0f} g")
    return ComplianceResult(off, total, tolerance, not issues, tuple(issues))
