"""What the grader sees of one fruit: the fused vision measurement plus the cup's weight.

Built by the line runtime from what the drivers and the vision pipeline measured; never from
a simulator's ground truth.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class FruitMeasurement:
    weight_g: float | None  # None: no valid weight for this cup (device fault, corrupt frame)
    diameter_major_mm: float
    diameter_minor_mm: float
    area_cm2: float
    colour_fractions: Mapping[str, float]  # colour class name -> fraction of seen surface, 0..1
    defect_count: int
    defect_area_cm2: float
    elongation: float = 1.0  # major / minor diameter
    volume_cm3: float | None = None
    quality_score: float | None = None  # 0 = best, 1 = worst, from a taught model
    flags: frozenset[str] = field(default_factory=frozenset)  # e.g. "double", "edge", "misshapen"
