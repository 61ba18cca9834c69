"""Live statistics of lots and cartons, kept from the graded-fruit events (for the HMI and
/metrics). The store stays the record: these are counts since the line started."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from grading.fruit_events import FruitGraded
from grading.lots.cartons import Carton


@dataclass
class LotCounts:
    fruit_total: int = 0
    weight_g: float = 0.0
    late_total: int = 0
    by_quality: Counter[str] = field(default_factory=Counter)
    by_size: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "fruit_total": self.fruit_total,
            "weight_kg": round(self.weight_g / 1000.0, 3),
            "late_total": self.late_total,
            "quality_classes": dict(self.by_quality),
            "size_classes": dict(self.by_size),
        }


class LotStatistics:
    """Fruit per lot since start (a consumer of the fruit bus), and cartons out of tolerance."""

    def __init__(self, recent: int = 20) -> None:
        self.lots: dict[int, LotCounts] = {}
        self.cartons_closed: Counter[str] = Counter()  # by quality class
        self.cartons_out_of_tolerance: Counter[str] = Counter()
        self.recent_cartons: deque[Carton] = deque(maxlen=recent)

    def on_fruit(self, event: FruitGraded) -> None:
        record = event.record
        counts = self.lots.setdefault(record.lot_id, LotCounts())
        counts.fruit_total += 1
        counts.weight_g += record.measurement.weight_g or 0.0
        counts.late_total += record.late
        counts.by_quality[record.grade.quality_class] += 1
        counts.by_size[record.grade.size_class or "none"] += 1

    def on_carton_closed(self, carton: Carton) -> None:
        self.cartons_closed[carton.quality_class] += 1
        if carton.compliant is False:
            self.cartons_out_of_tolerance[carton.quality_class] += 1
        self.recent_cartons.append(carton)

    def of(self, lot_id: int | None) -> dict[str, Any]:
        counts = self.lots.get(lot_id) if lot_id is not None else None
        return (counts or LotCounts()).as_dict()
