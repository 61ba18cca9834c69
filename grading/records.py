"""The line's records: one typed record per concept, written by the runtime, stored by the store.

``FruitRecord`` is the single definition of a graded fruit: the runtime builds it once per
fruit, the store maps it to its row (``grading.store``), and every consumer of graded fruit
reads it. ``EventRecord`` is a line event (intake started, a device fault, ...). Neither knows
how it is stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from grading.grader import GradeResult
from grading.measurement import FruitMeasurement


@dataclass(frozen=True, slots=True)
class FruitRecord:
    """One graded fruit and what was decided for it.

    ``outlet`` is where the PLC was told to drop it; 0 means recirculated, which is also the
    case for every ``late`` fruit (its decision was not written in time). ``uid`` is unique
    per record, so a replayed write is a no-op.
    """

    uid: str
    lot_id: int
    lane: int
    cup_index: int
    graded_at: datetime
    measurement: FruitMeasurement
    views: int
    grade: GradeResult
    outlet: int
    late: bool
    decision_latency_ms: float  # from the frame's exposure to the decision (before its commit)
    frame_position_cups: float | None = None  # belt position of the frame it was decided on
    carton_id: int | None = None  # the open carton of its packing outlet when it was decided; None when late


@dataclass(frozen=True, slots=True)
class EventRecord:
    """A line event. ``uid`` is unique per event, so a replayed write is a no-op."""

    at: datetime
    kind: str  # e.g. "line_started", "device_fault"
    message: str
    lot_id: int | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))
