"""Line runtime against in-memory fakes: weights join the right cup, decisions land or are late.

The fakes stand behind the same Protocols as real devices; the tracker is a fake that emits the
fused fruit the test scripts, so these tests pin the runtime's own logic only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from drivers.interfaces import DeviceTimeout, Frame, OutletDecision, PlcStatus, WeightReading
from grading.config import OutletSettings
from grading.grader import Grader
from grading.outlets import OutletAssigner
from grading.recipe import load_recipe
from grading.runtime import LineRuntime, RuntimeSettings
from grading.store import RecordWriter, count_fruit, create_store_engine, migrate, open_lot

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
    name = "plc"

    def __init__(self, speed_cups_per_s: float = 0.0) -> None:
        self.counter = 100
        self.speed_cups_per_s = speed_cups_per_s
        self.writes: list[OutletDecision] = []
        self.fail_writes = False

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def heartbeat(self) -> None: ...

    async def read_status(self) -> PlcStatus:
        return PlcStatus(self.counter, self.speed_cups_per_s, True, (), time.monotonic())

    async def write_decisions(self, decisions: Sequence[OutletDecision]) -> None:
        if self.fail_writes:
            raise DeviceTimeout(self.name, "no answer")
        self.writes.extend(decisions)


class FakeScale:
    """Weighs the cup that the PLC counter says is on the load cell: 100 g + cup index."""

    def __init__(self, plc: FakePlc, lane: int, broken: bool = False, delay_s: float = 0.0) -> None:
        self.name = f"scale-{lane}"
        self.plc = plc
        self.broken = broken
        self.delay_s = delay_s

    async def open(self) -> None: ...
    async def close(self) -> None: ...

    async def read_weight(self) -> WeightReading:
        if self.broken:
            raise DeviceTimeout(self.name, "no answer")
        counter = self.plc.counter
        await asyncio.sleep(self.delay_s)
        if self.plc.counter != counter:  # the belt moved on while the load cell settled
            counter = self.plc.counter
        return WeightReading(100.0 + counter - SCALE_OFFSET, True, time.monotonic())


class FakeCamera:
    name = "camera"

    def __init__(self) -> None:
        self.frames: asyncio.Queue[Frame] = asyncio.Queue()

    async def open(self) -> None: ...
    async def close(self) -> None: ...

    async def read(self) -> Frame:
        return await self.frames.get()


class ScriptedTracker:
    def __init__(self, script: dict[int, list[Fused]]) -> None:
        self.script = script

    def update(self, views: Sequence[object], belt_position_cups: float | None) -> list[Fused]:
        assert belt_position_cups is not None
        return self.script.pop(round(belt_position_cups), [])

    def flush(self) -> list[Fused]:
        return []


class NullMeasurer:
    def measure(self, image_bgr: np.ndarray, belt_position_cups: float | None = None) -> list[object]:
        return []


async def _until(predicate, timeout_s: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.005)


@pytest.fixture
def parts(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = create_store_engine(f"sqlite:///{tmp_path}/t.db")
    migrate(engine)
    lot = open_lot(engine, code="T", grower="", variety="", product="apple", recipe="apple", line="t")
    writer = RecordWriter(engine, flush_interval_s=0.02)
    writer.start()
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vision-test")
    yield engine, lot, writer, executor
    executor.shutdown()
    writer.close(10)
    engine.dispose()


def _runtime(parts, plc: FakePlc, camera: FakeCamera, scales, script) -> LineRuntime:  # type: ignore[no-untyped-def]
    engine, lot, writer, executor = parts
    outlets = [
        OutletSettings(number=1, offset_cups=FIRST_OUTLET, quality_classes=["extra"]),
        OutletSettings(number=2, offset_cups=FIRST_OUTLET + 2, quality_classes=["class_i", "class_ii"]),
        OutletSettings(number=3, offset_cups=FIRST_OUTLET + 4, role="recheck"),
        OutletSettings(number=4, offset_cups=FIRST_OUTLET + 6, role="cull"),
    ]
    tracker = ScriptedTracker(script)
    return LineRuntime(
        settings=RuntimeSettings(
            line_name="t", lanes=len(scales), scale_offset_cups=SCALE_OFFSET,
            first_outlet_offset_cups=FIRST_OUTLET, decision_margin_cups=1.0, plc_poll_interval_s=0.001,
        ),
        camera=camera, scales=scales, plc=plc, measurer_factory=NullMeasurer,
        tracker_factory=lambda: tracker, grader=Grader(load_recipe("apple")),
        assigner=OutletAssigner(outlets), writer=writer, lot=lot, executor=executor, clock=time.monotonic,
    )


def _frame(seq: int, position: float) -> Frame:
    return Frame(np.zeros((4, 4, 3), np.uint8), time.monotonic(), seq, position)


async def _advance_counter(runtime: LineRuntime, plc: FakePlc, to: int) -> None:
    """Step the encoder one cup at a time, letting each lane's scale read its cup."""
    while plc.counter < to:
        plc.counter += 1
        await _until(lambda: runtime.snapshot()["cup_counter"] == plc.counter)
        await _until(lambda: all(q.empty() for q in runtime._weigh_queues))


def test_weights_join_their_cup_and_decisions_are_written(parts) -> None:  # type: ignore[no-untyped-def]
    async def scenario() -> None:
        plc, camera = FakePlc(), FakeCamera()
        scales = [FakeScale(plc, 0), FakeScale(plc, 1)]
        # Cups 104 and 105 are weighed when the counter reads 101 and 102, then seen and fused.
        script = {103: [Fused(0, 104), Fused(1, 104)], 104: [Fused(0, 105, defect_count=1, defect_area_cm2=4.0)]}
        runtime = _runtime(parts, plc, camera, scales, script)
        task = asyncio.create_task(runtime.run())
        await _until(lambda: runtime.state != "starting")
        runtime.start_intake()
        await _advance_counter(runtime, plc, 103)
        camera.frames.put_nowait(_frame(1, 103.0))
        await _until(lambda: runtime.counters.fruit_total == 2)
        await _advance_counter(runtime, plc, 104)
        camera.frames.put_nowait(_frame(2, 104.0))
        await _until(lambda: runtime.counters.fruit_total == 3)
        await runtime.shutdown()
        await task

        assert [(w.lane, w.cup_index, w.outlet) for w in plc.writes] == [(0, 104, 1), (1, 104, 1), (0, 105, 4)]
        assert runtime.counters.by_quality == {"extra": 2, "cull": 1}
        assert runtime.counters.weights_missing_total == 0
        # 100 g + cup index: each fruit got its own cup's weight, not a neighbour's.
        assert runtime.counters.weight_g_sum == pytest.approx(204.0 + 204.0 + 205.0)

    asyncio.run(scenario())
    engine = parts[0]
    parts[2].flush(10)
    assert count_fruit(engine) == 3


def test_a_weight_taken_after_its_cup_left_the_load_cell_is_not_used(parts) -> None:  # type: ignore[no-untyped-def]
    async def scenario() -> tuple[list[int], int]:
        # 4 cups/s: a cup is centred on the load cell for 1/8 s after its counter step. One
        # lane's indicator answers within that; the other takes 0.3 s, by when the next cup
        # is on the cell (the fake reports it), and its reading must not be used.
        plc, camera = FakePlc(speed_cups_per_s=4.0), FakeCamera()
        scales = [FakeScale(plc, 0), FakeScale(plc, 1, delay_s=0.3)]
        script = {104: [Fused(0, 104), Fused(1, 104)]}
        runtime = _runtime(parts, plc, camera, scales, script)
        task = asyncio.create_task(runtime.run())
        await _until(lambda: runtime.state != "starting")
        runtime.start_intake()
        await _until(lambda: runtime.snapshot()["cup_counter"] == 100)
        plc.counter = 101  # cup 104 centres on the load cell
        await _until(lambda: runtime.snapshot()["cup_counter"] == 101)
        await asyncio.sleep(0.1)
        plc.counter = 102  # the next cup, while lane 1's indicator is still settling
        await _until(lambda: all(q.empty() for q in runtime._weigh_queues))
        await asyncio.sleep(0.35)
        plc.counter = 104
        await _until(lambda: runtime.snapshot()["cup_counter"] == 104)
        camera.frames.put_nowait(_frame(1, 104.0))
        await _until(lambda: runtime.counters.fruit_total == 2)
        await runtime.shutdown()
        await task
        return [w.outlet for w in sorted(plc.writes, key=lambda w: w.lane)], runtime.counters.weights_missing_total

    outlets, missing = asyncio.run(scenario())
    # lane 0 weighed in time and is graded; lane 1 has no weight: the recheck outlet
    assert outlets == [1, 3]
    assert missing == 1


def test_no_weight_goes_to_recheck_and_late_decisions_are_not_written(parts) -> None:  # type: ignore[no-untyped-def]
    async def scenario() -> None:
        plc, camera = FakePlc(), FakeCamera()
        scales = [FakeScale(plc, 0, broken=True)]
        # Cup 104 is fused while the belt is at 104.2 (fine); cup 90 is fused far too late.
        script = {104: [Fused(0, 104)], 105: [Fused(0, 90)]}
        runtime = _runtime(parts, plc, camera, scales, script)
        task = asyncio.create_task(runtime.run())
        await _until(lambda: runtime.state != "starting")
        runtime.start_intake()
        await _advance_counter(runtime, plc, 104)
        camera.frames.put_nowait(_frame(1, 104.0))
        await _until(lambda: runtime.counters.fruit_total == 1)
        await _advance_counter(runtime, plc, 105)
        camera.frames.put_nowait(_frame(2, 105.0))
        await _until(lambda: runtime.counters.fruit_total == 2)
        snapshot = runtime.snapshot()
        await runtime.shutdown()
        await task

        assert [(w.cup_index, w.outlet) for w in plc.writes] == [(104, 3)]  # the recheck outlet
        assert snapshot["late_total"] == 1
        assert snapshot["outlets"] == {"0": 1, "3": 1}
        assert snapshot["quality_classes"] == {"recheck": 2}
        assert snapshot["devices"]["scale-0"] == "fault"

    asyncio.run(scenario())


def test_a_failed_plc_write_counts_as_late(parts) -> None:  # type: ignore[no-untyped-def]
    async def scenario() -> None:
        plc, camera = FakePlc(), FakeCamera()
        plc.fail_writes = True
        runtime = _runtime(parts, plc, camera, [FakeScale(plc, 0)], {104: [Fused(0, 104)]})
        task = asyncio.create_task(runtime.run())
        await _until(lambda: runtime.state != "starting")
        runtime.start_intake()
        await _advance_counter(runtime, plc, 104)
        camera.frames.put_nowait(_frame(1, 104.0))
        await _until(lambda: runtime.counters.fruit_total == 1)
        await runtime.shutdown()
        await task
        assert runtime.counters.late_total == 1
        assert runtime.counters.by_outlet == {0: 1}

    asyncio.run(scenario())


def test_stopped_intake_grades_nothing(parts) -> None:  # type: ignore[no-untyped-def]
    async def scenario() -> None:
        plc, camera = FakePlc(), FakeCamera()
        runtime = _runtime(parts, plc, camera, [FakeScale(plc, 0)], {104: [Fused(0, 104)]})
        task = asyncio.create_task(runtime.run())
        await _until(lambda: runtime.state != "starting")
        assert runtime.state == "stopped"
        await _advance_counter(runtime, plc, 104)
        camera.frames.put_nowait(_frame(1, 104.0))
        await _until(lambda: camera.frames.empty())
        await runtime.shutdown()
        await task
        assert runtime.counters.fruit_total == 0
        assert plc.writes == []

    asyncio.run(scenario())
