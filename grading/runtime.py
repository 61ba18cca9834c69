"""The line runtime: one asyncio loop that owns line state.

Frames go to the vision pipeline in worker threads (OpenCV releases the GIL) and come back in
order to the cup tracker; weights are read per lane when the PLC's cup counter says a cup is on
the load cell; each fused fruit is joined with its cup's weight, graded, given an outlet, and
the decision written to the PLC ahead of the cup's arrival (or not at all when it would be
late: the PLC then recirculates the cup). Every graded fruit is handed to the record writer.

Only this loop mutates line state; worker threads return values and touch nothing else.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import uuid
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from drivers.interfaces import (
    Camera,
    DeviceError,
    EndOfStream,
    Frame,
    OutletDecision,
    Plc,
    PlcStatus,
    Scale,
)
from grading.grader import Grader, GradeResult
from grading.measurement import FruitMeasurement
from grading.outlets import OutletAssigner
from grading.store import Lot, RecordWriter

if TYPE_CHECKING:
    from vision.pipeline import FruitView
    from vision.tracking import FusedFruit

log = logging.getLogger(__name__)

_U32 = 1 << 32


class FrameMeasurer(Protocol):
    def measure(self, image_bgr: np.ndarray, belt_position_cups: float | None = None) -> list[FruitView]: ...


class Tracker(Protocol):
    def update(self, views: Sequence[FruitView], belt_position_cups: float | None) -> list[FusedFruit]: ...



@dataclass(frozen=True)
class RuntimeSettings:
    line_name: str
    lanes: int
    scale_offset_cups: int  # load cell position relative to the inspection point (negative = upstream)
    first_outlet_offset_cups: int
    decision_margin_cups: float
    plc_poll_interval_s: float
    heartbeat_interval_s: float = 0.25
    max_frames_in_flight: int = 2  # as many as the vision workers: more frames only add latency


@dataclass
class LineCounters:
    """Plain counters read by the API and the metrics collector."""

    fruit_total: int = 0
    late_total: int = 0
    frames_total: int = 0
    frames_dropped_total: int = 0
    views_total: int = 0
    weigh_failures_total: int = 0
    weights_missing_total: int = 0
    plc_errors_total: int = 0
    camera_errors_total: int = 0
    by_quality: Counter[str] = field(default_factory=Counter)
    by_size: Counter[str] = field(default_factory=Counter)
    by_outlet: Counter[int] = field(default_factory=Counter)
    by_lane: Counter[int] = field(default_factory=Counter)
    weight_g_sum: float = 0.0
    decision_latency_ms_sum: float = 0.0


class _FaultLog:
    """A device's fault state as the line sees it, logged once when it starts and once when it clears.

    Drivers log the device-level cause; this logs what it means for the line.
    """

    def __init__(self, device: str, consequence: str) -> None:
        self.device = device
        self.consequence = consequence
        self.faulted = False

    def fault(self, exc: BaseException) -> None:
        if not self.faulted:
            log.warning("line: %s unavailable (%s); %s", self.device, exc, self.consequence)
            self.faulted = True

    def ok(self) -> None:
        if self.faulted:
            log.info("line: %s available again", self.device)
            self.faulted = False


class LineRuntime:
    def __init__(
        self,
        *,
        settings: RuntimeSettings,
        camera: Camera,
        scales: Sequence[Scale],
        plc: Plc,
        measurer_factory: Callable[[], FrameMeasurer],
        tracker_factory: Callable[[], Tracker],
        grader: Grader,
        assigner: OutletAssigner,
        writer: RecordWriter,
        lot: Lot,
        executor: Executor,
        clock: Callable[[], float],
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if len(scales) != settings.lanes:
            raise ValueError(f"need one scale per lane ({settings.lanes}), got {len(scales)}")
        self.settings = settings
        self.camera = camera
        self.scales = list(scales)
        self.plc = plc
        self._measurer_factory = measurer_factory
        self._tracker_factory = tracker_factory
        self._tracker = tracker_factory()
        self.grader = grader
        self.assigner = assigner
        self.writer = writer
        self.lot = lot
        self._executor = executor
        self._clock = clock
        self._wall_clock = wall_clock
        self._local = threading.local()

        self.counters = LineCounters()
        self.intake = False
        self._status: PlcStatus | None = None
        self._status_clock_s = 0.0
        self._last_counter: int | None = None
        self._weights: dict[tuple[int, int], float | None] = {}
        self._weigh_queues: list[asyncio.Queue[tuple[int, float]]] = []  # (cup, clock when seen)
        self._frames: asyncio.Queue[tuple[Frame, asyncio.Future[list[FruitView]]] | None] = asyncio.Queue(
            maxsize=settings.max_frames_in_flight
        )
        self._graded_clock_s: deque[float] = deque()
        self._tasks: list[asyncio.Task[None]] = []
        self._camera_fault = _FaultLog(camera.name, "no fruit are graded")
        self._plc_fault = _FaultLog(plc.name, "decisions cannot be written: cups recirculate")
        self._scale_faults = [_FaultLog(s.name, "its lane's fruit go to recheck") for s in self.scales]
        self._stopping = asyncio.Event()
        self._ready = asyncio.Event()
        self._deciding = asyncio.Lock()  # held while a frame's fruit are graded and written

    # ----------------------------------------------------------------- control

    def start_intake(self) -> None:
        if not self.intake:
            self.intake = True
            self._event("line_started", "intake started")

    async def stop_intake(self) -> None:
        """Stop grading new fruit; returns once no decision is in progress.

        Cups seen only in part are dropped: they recirculate and are graded on their next pass.
        """
        if self.intake:
            self.intake = False
            async with self._deciding:
                self._tracker = self._tracker_factory()
                self._weights.clear()
            self._event("line_stopped", "intake stopped")

    @property
    def state(self) -> str:
        if not self._ready.is_set():
            return "starting"
        return "running" if self.intake else "stopped"

    async def run(self) -> None:
        """Run until ``shutdown()``; devices must already be open."""
        # Build a vision pipeline (its colour table, its compiled kernels) before the line's
        # tasks start: built by the first frame instead, it would hold the GIL, and with it the
        # loop, for a good part of a second, while cups cross the load cells unweighed.
        await asyncio.get_running_loop().run_in_executor(self._executor, self._measurer)
        self._weigh_queues = [asyncio.Queue(maxsize=64) for _ in self.scales]
        self._tasks = [
            asyncio.create_task(self._poll_plc(), name="plc-poll"),
            asyncio.create_task(self._heartbeat(), name="plc-heartbeat"),
            asyncio.create_task(self._read_camera(), name="camera"),
            asyncio.create_task(self._consume_frames(), name="vision-consumer"),
            *(asyncio.create_task(self._weigh_lane(lane), name=f"weigh-{lane}") for lane in range(len(self.scales))),
        ]
        self._ready.set()
        await self._stopping.wait()

    async def shutdown(self) -> None:
        """Stop intake, finish frames already being graded, then stop every task."""
        await self.stop_intake()
        camera_task = next((t for t in self._tasks if t.get_name() == "camera"), None)
        if camera_task is not None:
            camera_task.cancel()
            await asyncio.gather(camera_task, return_exceptions=True)
        # Let frames in flight finish so every decision already started is recorded once.
        await self._frames.put(None)
        consumer = next((t for t in self._tasks if t.get_name() == "vision-consumer"), None)
        if consumer is not None:
            await asyncio.gather(consumer, return_exceptions=True)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self._stopping.set()

    # ----------------------------------------------------------------- snapshot

    def fruit_per_second(self, window_s: float = 5.0) -> float:
        now = self._clock()
        while self._graded_clock_s and self._graded_clock_s[0] < now - window_s:
            self._graded_clock_s.popleft()
        return len(self._graded_clock_s) / window_s

    def snapshot(self) -> dict[str, Any]:
        c = self.counters
        status = self._status
        return {
            "line": self.settings.line_name,
            "state": self.state,
            "lot": self.lot.code,
            "grower": self.lot.grower,
            "product": self.lot.product,
            "recipe": self.lot.recipe,
            "fruit_total": c.fruit_total,
            "fruit_per_second": round(self.fruit_per_second(), 3),
            "late_total": c.late_total,
            "weights_missing_total": c.weights_missing_total,
            "quality_classes": dict(c.by_quality),
            "size_classes": dict(c.by_size),
            "outlets": {str(k): v for k, v in sorted(c.by_outlet.items())},
            "lanes": {str(k): v for k, v in sorted(c.by_lane.items())},
            "frames_total": c.frames_total,
            "frames_dropped_total": c.frames_dropped_total,
            "fruit_rows_written": self.writer.fruit_rows_written,
            "belt_speed_cups_per_s": status.belt_speed_cups_per_s if status else None,
            "cup_counter": status.cup_counter if status else None,
            "devices": {
                self.camera.name: "fault" if self._camera_fault.faulted else "ok",
                self.plc.name: "fault" if self._plc_fault.faulted else "ok",
                **{f.device: "fault" if f.faulted else "ok" for f in self._scale_faults},
            },
        }

    # ----------------------------------------------------------------- PLC

    def _position_now(self) -> float | None:
        return self._position_at(self._clock())

    async def _poll_plc(self) -> None:
        interval_s = self.settings.plc_poll_interval_s
        while True:
            try:
                status = await self.plc.read_status()
            except DeviceError as exc:
                self.counters.plc_errors_total += 1
                self._plc_fault.fault(exc)
                self._status = None
                await asyncio.sleep(max(interval_s, 0.2))
                continue
            self._plc_fault.ok()
            self._status, self._status_clock_s = status, self._clock()
            self._on_counter(status.cup_counter)
            await asyncio.sleep(interval_s)

    def _on_counter(self, counter: int) -> None:
        last = self._last_counter
        self._last_counter = counter
        if last is None or not self.intake:
            return
        advanced = (counter - last) % _U32
        if advanced == 0 or advanced > 1000:  # no movement, or a counter reset: resynchronise
            return
        for step in range(1, advanced + 1):
            # The cup centred on the load cell when the counter reads c is c - scale_offset.
            cup = (last + step - self.settings.scale_offset_cups) % _U32
            seen_s = self._clock()
            for lane, q in enumerate(self._weigh_queues):
                if q.full():
                    self._weights[(lane, cup)] = None
                    self.counters.weigh_failures_total += 1
                else:
                    q.put_nowait((cup, seen_s))

    async def _heartbeat(self) -> None:
        while True:
            try:
                await self.plc.heartbeat()
            except DeviceError as exc:
                self._plc_fault.fault(exc)
            await asyncio.sleep(self.settings.heartbeat_interval_s)

    # ----------------------------------------------------------------- weighing

    async def _weigh_lane(self, lane: int) -> None:
        scale, fault, q = self.scales[lane], self._scale_faults[lane], self._weigh_queues[lane]
        while True:
            cup, seen_s = await q.get()
            if not q.empty():
                # Fell behind: this cup has already left the load cell; a late read would
                # give the next cup's weight. Leave it without a weight (-> recheck).
                self._weights[(lane, cup)] = None
                self.counters.weigh_failures_total += 1
                continue
            try:
                reading = await scale.read_weight()
            except DeviceError as exc:
                fault.fault(exc)
                self._weights[(lane, cup)] = None
                self.counters.weigh_failures_total += 1
                continue
            fault.ok()
            if self._clock() - seen_s > self._weigh_window_s():
                # The loop was held up (the counter's next step not yet even polled): the
                # cup may have left the load cell before the weight was taken, so the reading
                # cannot be trusted to be its own. No weight (-> recheck) beats a neighbour's.
                self._weights[(lane, cup)] = None
                self.counters.weigh_failures_total += 1
                continue
            self._weights[(lane, cup)] = reading.weight_g
            if len(self._weights) > 4096 * self.settings.lanes:  # never-claimed entries (empty cups)
                for key in list(self._weights)[: len(self._weights) // 2]:
                    del self._weights[key]

    def _weigh_window_s(self) -> float:
        """How long after its counter step a cup's weight may still be taken: the counter
        steps as a cup centres on the load cell, so half a cup period (at the belt speed the
        PLC reports), less the status poll's own delay in seeing the step."""
        speed = self._status.belt_speed_cups_per_s if self._status is not None else 0.0
        if speed <= 0:
            return math.inf  # stopped or unknown: the cup stays where it is
        return max(0.5 / speed - self.settings.plc_poll_interval_s, 0.25 / speed)

    # ----------------------------------------------------------------- vision

    def _measurer(self) -> FrameMeasurer:
        measurer: FrameMeasurer | None = getattr(self._local, "measurer", None)
        if measurer is None:  # one pipeline per worker thread: no shared mutable state
            measurer = self._local.measurer = self._measurer_factory()
        return measurer

    def _measure(self, image_bgr: np.ndarray, belt_position_cups: float | None) -> list[FruitView]:
        return self._measurer().measure(image_bgr, belt_position_cups)

    async def _read_camera(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                frame = await self.camera.read()
            except EndOfStream:
                log.info("%s: end of stream", self.camera.name)
                return
            except DeviceError as exc:
                self.counters.camera_errors_total += 1
                self._camera_fault.fault(exc)
                await asyncio.sleep(0.5)
                continue
            self._camera_fault.ok()
            if not self.intake:
                continue
            if self._frames.full():
                self.counters.frames_dropped_total += 1  # vision is behind: skip, never queue up latency
                continue
            future = loop.run_in_executor(self._executor, self._measure, frame.image_bgr, frame.belt_position_cups)
            await self._frames.put((frame, future))

    async def _consume_frames(self) -> None:
        while True:
            item = await self._frames.get()
            if item is None:
                return
            frame, future = item
            try:
                views = await future
            except Exception:
                log.exception("vision failed on frame %d", frame.seq)
                continue
            self.counters.frames_total += 1
            self.counters.views_total += len(views)
            async with self._deciding:
                if not self.intake:
                    continue
                position = frame.belt_position_cups
                if position is None:
                    position = self._position_at(frame.t_s)
                fused = self._tracker.update(views, position)
                if fused:
                    await self._decide(fused, frame)

    def _position_at(self, t_s: float) -> float | None:
        """Belt position at ``t_s`` from the last PLC status and the belt speed."""
        if self._status is None:
            return None
        return self._status.cup_counter + self._status.belt_speed_cups_per_s * (t_s - self._status_clock_s)

    # ----------------------------------------------------------------- decisions

    async def _decide(self, fused: Sequence[FusedFruit], frame: Frame) -> None:
        status = self._status
        outlet_full = status.outlet_full if status else ()
        position = self._position_now()
        deadline_offset = self.settings.first_outlet_offset_cups - self.settings.decision_margin_cups
        decided: list[tuple[FusedFruit, FruitMeasurement, GradeResult, int, bool]] = []
        writes: list[OutletDecision] = []
        for fruit in fused:
            weight_g = self._weights.pop((fruit.lane, fruit.cup_index % _U32), None)
            if weight_g is None:
                self.counters.weights_missing_total += 1
            measurement = FruitMeasurement(
                weight_g=weight_g,
                diameter_major_mm=fruit.diameter_major_mm,
                diameter_minor_mm=fruit.diameter_minor_mm,
                area_cm2=fruit.area_cm2,
                colour_fractions=fruit.colour_fractions,
                defect_count=fruit.defect_count,
                defect_area_cm2=fruit.defect_area_cm2,
                elongation=fruit.elongation,
                volume_cm3=fruit.volume_cm3,
                quality_score=fruit.quality_score,
                flags=fruit.flags,
            )
            result = self.grader.grade(measurement)
            outlet = self.assigner.assign(result, outlet_full)
            late = position is None or position - fruit.cup_index >= deadline_offset
            if not late:
                # Outlet 0 is written too: the PLC then knows the recirculation was decided, not late.
                writes.append(OutletDecision(fruit.lane, fruit.cup_index % _U32, outlet))
            decided.append((fruit, measurement, result, outlet, late))
        if writes:
            try:
                await self.plc.write_decisions(writes)
                self._plc_fault.ok()
            except DeviceError as exc:
                # Not written means the PLC's default applies: those cups recirculate.
                self._plc_fault.fault(exc)
                written = {(w.lane, w.cup_index) for w in writes}
                decided = [
                    (f, m, r, o, late or (f.lane, f.cup_index % _U32) in written) for f, m, r, o, late in decided
                ]
        done_s = self._clock()
        latency_ms = max(0.0, (done_s - frame.t_s) * 1000.0)
        graded_at = self._wall_clock()
        for fruit, m, result, outlet, late in decided:
            self._record(fruit, m, result, 0 if late else outlet, late, latency_ms, graded_at, done_s)

    def _record(
        self,
        fruit: FusedFruit,
        m: FruitMeasurement,
        result: GradeResult,
        outlet: int,
        late: bool,
        latency_ms: float,
        graded_at: datetime,
        done_s: float,
    ) -> None:
        c = self.counters
        c.fruit_total += 1
        c.late_total += late
        c.by_quality[result.quality_class] += 1
        c.by_size[result.size_class or "none"] += 1
        c.by_outlet[outlet] += 1
        c.by_lane[fruit.lane] += 1
        c.weight_g_sum += m.weight_g or 0.0
        c.decision_latency_ms_sum += latency_ms
        self._graded_clock_s.append(done_s)
        self.writer.submit_fruit(
            {
                "uid": str(uuid.uuid4()),
                "lot_id": self.lot.id,
                "lane": fruit.lane,
                "cup_index": fruit.cup_index,
                "graded_at": graded_at,
                "weight_g": m.weight_g,
                "diameter_major_mm": m.diameter_major_mm,
                "diameter_minor_mm": m.diameter_minor_mm,
                "area_cm2": m.area_cm2,
                "volume_cm3": m.volume_cm3,
                "colour_fractions": dict(m.colour_fractions),
                "defect_count": m.defect_count,
                "defect_area_cm2": m.defect_area_cm2,
                "elongation": m.elongation,
                "quality_score": m.quality_score,
                "flags": sorted(m.flags),
                "views": fruit.views,
                "quality_class": result.quality_class,
                "size_class": result.size_class,
                "reasons": list(result.reasons),
                "outlet": outlet,
                "late": late,
                "decision_latency_ms": latency_ms,
            }
        )

    def _event(self, kind: str, message: str, payload: dict[str, Any] | None = None) -> None:
        self.writer.submit_event(
            {"at": self._wall_clock(), "kind": kind, "lot_id": self.lot.id, "message": message, "payload": payload or {}}
        )
