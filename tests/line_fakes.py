"""In-memory fakes behind the device and vision Protocols, and a runtime built from them.

For tests of the runtime's own logic and of the API over it: the belt is a straight line in
time set by the test (``FakePlc``), each lane's scale streams the weight of the cup on its
load cell (100 g + cup index), and the tracker emits the fused fruit a test scripts per
frame position, so nothing here depends on vision.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from drivers.interfaces import DeviceTimeout, Frame, OutletDecision, PlcStatus, WeightReading
from grading.config import OutletSettings
from grading.decision import DecisionSettings, DecisionStep
from grading.grader import Grader
from grading.outbox import OutboxHealth
from grading.outlets import OutletAssigner
from grading.recipe import load_recipe
from grading.runtime import LineRuntime, RuntimeSettings
from grading.store import Lot, RecordWriter
from grading.weighing import WeightLedger

SCALE_OFFSET = -3
FIRST_OUTLET = 6


@dataclass(frozen=True)
class Fused:
    lane: int
    cup_index: int
    views: int = 8
    diameter_major_mm: float = 82.0
    diameter_minor_mm: float = 80.0
    area_cm2: float = 51.0
    volume_cm3: float = 280.0
    colour_fractions: dict[str, float] = field(default_factory=lambda: {"red": 0.95, "yellow": 0.03, "green": 0.02})
    defect_count: int = 0
    defect_area_cm2: float = 0.0
    elongation: float = 1.02
    flags: frozenset[str] = frozenset()
    quality_score: float | None = None


class FakePlc:
    """A belt at ``speed_cups_per_s`` from position ``start_cups`` at the time it is made;
    ``speed 0`` holds it at ``position`` (which a test may set)."""

    name = "plc"

    def __init__(self, speed_cups_per_s: float = 0.0, start_cups: float = 100.0, pitch_cups: float | None = 1.0) -> None:
        self.speed_cups_per_s = speed_cups_per_s
        self.position = start_cups
        self._t0 = time.monotonic()
        self.pitch_cups = pitch_cups
        self.writes: list[OutletDecision] = []
        self.fail_writes = False
        self.write_delay_s = 0.0
        self.carton_full: tuple[bool, ...] = ()  # each outlet's carton-full input

    def position_at(self, t_s: float) -> float:
        return self.position + self.speed_cups_per_s * (t_s - self._t0)

    def move_to(self, position: float) -> None:
        """For a stopped belt: put it at ``position`` now."""
        self.position, self._t0 = position, time.monotonic()

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def heartbeat(self) -> None: ...

    async def read_status(self) -> PlcStatus:
        now = time.monotonic()
        p = self.position_at(now)
        return PlcStatus(int(p), self.speed_cups_per_s, True, (), now, p, self.pitch_cups, carton_full=self.carton_full)

    async def write_decisions(self, decisions: Sequence[OutletDecision]) -> None:
        if self.write_delay_s:
            await asyncio.sleep(self.write_delay_s)
        if self.fail_writes:
            raise DeviceTimeout(self.name, "no answer")
        self.writes.extend(decisions)


class FakeScale:
    """Streams, every 10 ms, the weight of the cup centred on its load cell: 100 g + cup index."""

    def __init__(self, plc: FakePlc, lane: int, broken: bool = False) -> None:
        self.name = f"scale-{lane}"
        self.plc = plc
        self.broken = broken
        self._next_s = time.monotonic()

    async def open(self) -> None:
        self._next_s = time.monotonic()

    async def close(self) -> None: ...

    def is_up(self) -> bool:
        return not self.broken

    def take_readings(self) -> list[WeightReading]:
        now = time.monotonic()
        readings = []
        while self._next_s <= now:
            t = self._next_s
            self._next_s += 0.01
            if self.broken:
                continue
            x = self.plc.position_at(t) - SCALE_OFFSET
            cup = round(x)
            readings.append(WeightReading(100.0 + cup, abs(x - cup) <= 0.3, t))
        return readings


class FakeCamera:
    name = "camera"

    def __init__(self) -> None:
        self.frames: asyncio.Queue[Frame] = asyncio.Queue()

    async def open(self) -> None: ...
    async def close(self) -> None: ...

    async def read(self) -> Frame:
        return await self.frames.get()

    def expose(self, seq: int, plc: FakePlc, position: float) -> None:
        """A frame exposed when the belt was at ``position`` (on a stopped belt: now)."""
        t = time.monotonic() if plc.speed_cups_per_s == 0 else plc._t0 + (position - plc.position) / plc.speed_cups_per_s
        self.frames.put_nowait(Frame(np.zeros((4, 4, 3), np.uint8), t, seq))


class InstantVision:
    """Vision that finds nothing, at once (the scripted tracker supplies the fruit)."""

    def __init__(self) -> None:
        self.positions: list[float | None] = []

    def submit(self, image_bgr: np.ndarray, belt_position_cups: float | None) -> asyncio.Future[list[object]]:
        self.positions.append(belt_position_cups)
        future: asyncio.Future[list[object]] = asyncio.get_running_loop().create_future()
        future.set_result([])
        return future


class ScriptedTracker:
    def __init__(self, script: dict[int, list[Fused]] | None = None) -> None:
        self.script = script if script is not None else {}

    def update(self, views: Sequence[object], belt_position_cups: float | None) -> list[Fused]:
        assert belt_position_cups is not None
        return self.script.pop(round(belt_position_cups), [])


def outlets() -> list[OutletSettings]:
    return [
        OutletSettings(number=1, offset_cups=FIRST_OUTLET, quality_classes=["extra"]),
        OutletSettings(number=2, offset_cups=FIRST_OUTLET + 2, quality_classes=["class_i", "class_ii"]),
        OutletSettings(number=3, offset_cups=FIRST_OUTLET + 4, role="recheck"),
        OutletSettings(number=4, offset_cups=FIRST_OUTLET + 6, role="cull"),
    ]


def make_runtime(
    *,
    writer: RecordWriter,
    lot: Lot,
    plc: FakePlc,
    camera: FakeCamera,
    scales: Sequence[FakeScale],
    script: dict[int, list[Fused]] | None = None,
    resume_after_cups: dict[int, int] | None = None,
    line_name: str = "t",
    outbox: Callable[[], OutboxHealth] | None = None,
    tracker: ScriptedTracker | None = None,
    **runtime_kwargs: Any,
) -> LineRuntime:
    tracker = tracker if tracker is not None else ScriptedTracker(script)
    ledger = WeightLedger(len(scales), SCALE_OFFSET)
    decider = DecisionStep(
        DecisionSettings(FIRST_OUTLET, 1.0), Grader(load_recipe("apple")), OutletAssigner(outlets()), ledger,
        wall_clock=lambda: datetime.now(UTC),
    )
    return LineRuntime(
        settings=RuntimeSettings(line_name=line_name, lanes=len(scales), plc_poll_interval_s=0.005),
        camera=camera, scales=scales, plc=plc, vision=InstantVision(),
        tracker_factory=lambda: tracker, decider=decider, writer=writer, lot=lot, clock=time.monotonic,
        resume_after_cups=resume_after_cups, outbox=outbox, **runtime_kwargs,
    )
