"""The line runtime: one asyncio loop that owns line state and wires devices to decisions.

What it does, in order, for every frame:

1. The camera driver stamps the frame where it arrives; the runtime places it on the belt
   from the PLC's timing (``grading.position``) and hands it to vision, which runs where it
   cannot hold this loop's GIL (``Vision``: worker processes in production).
2. Frames come back in order to the cup tracker, which fuses each fruit's views once the
   fruit has left the field.
3. The decision step (``grading.decision``) joins each fused fruit with its cup's weight from
   the weight ledger, grades it, assigns an outlet and checks the deadline.
4. **Record before you sort**: the frame's records are committed in one transaction; only
   then are the decisions still in time written to the PLC. A decision whose record is not
   committed by its deadline, or whose PLC write fails, is not sorted (the cup recirculates)
   and its record is corrected to say so.
5. Once committed (and corrected, if its decision could not be written), each fruit is
   published as one ``grading.fruit_events.FruitGraded`` on the line's ``FruitBus``
   (``LineRuntime.fruit_events``). Everything downstream subscribes there: the counters the
   API and /metrics report (so they count committed records only), lot statistics, the carton
   packer, the live feed. Publishing never waits on a consumer.

The lot a fruit is recorded against is the one open when its frame is decided; a lot switch
(``switch_lot``) waits for the frame being decided, so it falls between two cups' decisions.
Which carton a fruit goes in is asked of ``carton_for`` (the carton packer) at the same point.

Alongside, the PLC is polled for its timing and outlet-full inputs (each poll also moves the
scales' readings into the weight ledger), and a heartbeat keeps the PLC's watchdog alive.

Only this loop mutates line state. Device I/O threads, vision workers and the record writer
return values and touch nothing else.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from bisect import bisect_left
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from drivers.health import FaultState
from drivers.interfaces import Camera, DeviceError, EndOfStream, Frame, Plc, PlcStatus, Scale
from grading.decision import Decision, DecisionStep
from grading.fruit_events import FruitBus, FruitGraded
from grading.position import BeltTiming, FramePlacement
from grading.records import EventRecord, FruitRecord
from grading.store import Lot, RecordWriter
from grading.weighing import WEIGH_CAUSES, WeightLedger

if TYPE_CHECKING:
    from grading.outbox import OutboxHealth
    from vision.pipeline import FruitView
    from vision.tracking import FusedFruit

log = logging.getLogger(__name__)

_U32 = 1 << 32
# Decision latency buckets for /metrics, in seconds: exposure to the PLC's acknowledgement.
LATENCY_BUCKETS_S = (0.01, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)


class StageTimes:
    """Where a decision's time goes, over the last ``window`` frames: the time from a frame's
    exposure to each stage's end, in ms (``submitted`` to vision, ``measured``, ``decided``,
    ``committed``, ``written``), so the API can show which stage is slow."""

    STAGES = ("submitted", "measured", "decided", "committed", "written")

    def __init__(self, window: int = 500) -> None:
        self._ms: dict[str, deque[float]] = {stage: deque(maxlen=window) for stage in self.STAGES}

    def add(self, stage: str, since_exposure_s: float) -> None:
        self._ms[stage].append(since_exposure_s * 1000.0)

    def summary(self) -> dict[str, dict[str, float | None]]:
        out: dict[str, dict[str, float | None]] = {}
        for stage, values in self._ms.items():
            ordered = sorted(values)
            n = len(ordered)
            out[stage] = {
                "p50_ms": round(ordered[(n - 1) // 2], 1) if n else None,
                "p99_ms": round(ordered[min(n - 1, int(0.99 * n))], 1) if n else None,
            }
        return out


class Vision(Protocol):
    """Measures frames off the loop. ``submit`` returns None when vision is full (the frame is
    then dropped: queued frames would only make every decision later)."""

    def submit(self, image_bgr: np.ndarray, belt_position_cups: float | None) -> asyncio.Future[list[FruitView]] | None: ...


class Tracker(Protocol):
    def update(self, views: Sequence[FruitView], belt_position_cups: float | None) -> list[FusedFruit]: ...


@dataclass(frozen=True)
class RuntimeSettings:
    line_name: str
    lanes: int
    plc_poll_interval_s: float
    heartbeat_interval_s: float = 0.25
    max_frames_in_flight: int = 4  # frames handed to vision and not yet back


@dataclass
class LineCounters:
    """Plain counters read by the API and the metrics collector; fruit counts are of committed records."""

    fruit_total: int = 0
    late_total: int = 0  # recorded late: not written, the cup recirculated
    unsorted_after_commit_total: int = 0  # of those: in time when decided, late once committed, or the PLC write failed
    quarantined_total: int = 0  # records the store refused (in its quarantine); their cups recirculated
    frames_total: int = 0
    frames_dropped_total: int = 0  # vision was full
    frames_unplaced_total: int = 0  # no belt position (PLC timing unknown, or two frames on one trigger)
    views_total: int = 0
    weights_missing_total: int = 0
    weigh_failures: Counter[str] = field(default_factory=Counter)  # by cause (grading.weighing)
    plc_errors_total: int = 0
    plc_write_failures_total: int = 0
    camera_errors_total: int = 0
    by_quality: Counter[str] = field(default_factory=Counter)
    by_size: Counter[str] = field(default_factory=Counter)
    by_quality_size: Counter[tuple[str, str]] = field(default_factory=Counter)
    by_outlet: Counter[int] = field(default_factory=Counter)
    by_lane: Counter[int] = field(default_factory=Counter)
    weight_g_sum: float = 0.0
    # exposure -> PLC acknowledgement, per written decision (cumulative bucket counts)
    latency_bucket_counts: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS_S))
    latency_count: int = 0
    latency_sum_s: float = 0.0


class LineRuntime:
    def __init__(
        self,
        *,
        settings: RuntimeSettings,
        camera: Camera,
        scales: Sequence[Scale],
        plc: Plc,
        vision: Vision,
        tracker_factory: Callable[[], Tracker],
        decider: DecisionStep,
        writer: RecordWriter,
        lot: Lot | None,
        clock: Callable[[], float],
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        resume_after_cups: Mapping[int, int] | None = None,
        outbox: Callable[[], OutboxHealth] | None = None,
        fruit_events: FruitBus | None = None,
        carton_for: Callable[[int], int | None] = lambda outlet: None,
        outlet_full: Callable[[Sequence[bool]], Sequence[bool]] = lambda plc_flags: plc_flags,
    ) -> None:
        if len(scales) != settings.lanes:
            raise ValueError(f"need one scale per lane ({settings.lanes}), got {len(scales)}")
        self.settings = settings
        self.camera = camera
        self.scales = list(scales)
        self.plc = plc
        self.vision = vision
        self._tracker_factory = tracker_factory
        self._tracker = tracker_factory()
        self.decider = decider
        self.ledger: WeightLedger = decider.ledger
        self.timing = BeltTiming()
        self.writer = writer
        self.lot = lot
        self.fruit_events = fruit_events if fruit_events is not None else FruitBus()
        self._carton_for = carton_for
        self._outlet_full = outlet_full  # the PLC's full inputs, with the outlets people marked full
        # Called with the outlet number when the PLC's carton-full input of an outlet rises
        # (the carton packer closes its carton); set by the composition root.
        self.on_carton_full: Callable[[int], None] = lambda outlet: None
        self._carton_full_before: tuple[bool, ...] = ()
        self._clock = clock
        self._wall_clock = wall_clock
        # After a restart the cups still in the camera's field were recorded before it; the
        # last recorded cup per lane (from the store) is not recorded again.
        self._resume_after: dict[int, int] = dict(resume_after_cups or {})
        # The backlog of a line that forwards its records from a local outbox (grading.outbox).
        self.outbox_health = outbox

        self.counters = LineCounters()
        self.stages = StageTimes()
        self.intake = False
        self._status: PlcStatus | None = None
        self._frames: asyncio.Queue[tuple[Frame, FramePlacement, asyncio.Future[list[FruitView]]] | None] = (
            asyncio.Queue(maxsize=settings.max_frames_in_flight)
        )
        self._graded_clock_s: deque[float] = deque()
        self._tasks: list[asyncio.Task[None]] = []
        self._sorting: set[asyncio.Task[None]] = set()  # frames being committed and written
        self._camera_health = FaultState(camera.name, clock=clock, consequence="no fruit are graded")
        self._plc_health = FaultState(plc.name, clock=clock, consequence="decisions cannot be written: cups recirculate")
        self._scale_health = [
            FaultState(s.name, clock=clock, consequence="its lane's fruit go to recheck") for s in self.scales
        ]
        self._stopping = asyncio.Event()
        self._ready = asyncio.Event()
        self._deciding = asyncio.Lock()  # held while a frame's fruit are graded
        self.fruit_events.subscribe("counters", self._on_fruit)

    # ----------------------------------------------------------------- control

    def start_intake(self) -> None:
        """Start grading; refused (``NoOpenLot``) while no lot is open: every fruit needs one."""
        if self.lot is None:
            raise NoOpenLot("no lot is open on this line: start a lot first")
        if not self.intake:
            self.intake = True
            self.timing.forget_frames()
            self._event("line_started", "intake started")

    async def stop_intake(self) -> None:
        """Stop grading new fruit; returns once every decision already made is recorded and
        written (or known not to be), so the totals it leaves are final.

        Cups seen only in part are dropped: they recirculate and are graded on their next pass.
        """
        if self.intake:
            self.intake = False
            async with self._deciding:
                self._tracker = self._tracker_factory()
            await self._sorted()
            await self.fruit_events.drained()
            self._event("line_stopped", "intake stopped")

    async def settled(self) -> None:
        """Return once every frame decided before the call is committed (or queued with its
        correction), written or known not to be, and published, and every consumer has handled
        it. Frames decided after the call are not waited for: on a running line there always
        are some."""
        before = set(self._sorting)
        if before:
            await asyncio.gather(*before, return_exceptions=True)
        await self.fruit_events.drained()

    async def between_decisions(self, action: Callable[[], None]) -> None:
        """Run ``action`` between two frames' decisions (e.g. swap an outlet's carton)."""
        async with self._deciding:
            action()

    async def switch_lot(self, lot: Lot | None, between: Callable[[], None] | None = None) -> None:
        """Make ``lot`` the one fruit are recorded against, between two frames' decisions.

        ``between`` runs at that same point, before the next frame is decided (the carton
        packer closes the old lot's cartons and opens the new one's there). ``None`` closes
        the lot: intake stops first, so no fruit is graded without a lot.
        """
        if lot is None:
            await self.stop_intake()
        async with self._deciding:
            previous = self.lot
            self.lot = lot
            if between is not None:
                between()
        if previous is not None and (lot is None or lot.id != previous.id):
            self._event("lot_switched", f"lot {previous.code} -> {lot.code if lot else 'none'}",
                        {"from": previous.id, "to": lot.id if lot else None}, lot_id=previous.id)

    async def _sorted(self) -> None:
        while self._sorting:
            await asyncio.gather(*self._sorting, return_exceptions=True)

    @property
    def state(self) -> str:
        if not self._ready.is_set():
            return "starting"
        return "running" if self.intake else "stopped"

    async def run(self) -> None:
        """Run until ``shutdown()``; devices and vision must already be open and warm."""
        self.fruit_events.start()
        self._tasks = [
            asyncio.create_task(self._poll_plc(), name="plc-poll"),
            asyncio.create_task(self._heartbeat(), name="plc-heartbeat"),
            asyncio.create_task(self._read_camera(), name="camera"),
            asyncio.create_task(self._consume_frames(), name="vision-consumer"),
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
        await self._frames.put(None)
        consumer = next((t for t in self._tasks if t.get_name() == "vision-consumer"), None)
        if consumer is not None:
            await asyncio.gather(consumer, return_exceptions=True)
        await self._sorted()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.fruit_events.close()
        self._stopping.set()

    # ----------------------------------------------------------------- snapshot

    def fruit_per_second(self, window_s: float = 5.0) -> float:
        now = self._clock()
        while self._graded_clock_s and self._graded_clock_s[0] < now - window_s:
            self._graded_clock_s.popleft()
        return len(self._graded_clock_s) / window_s

    def device_health(self) -> dict[str, str]:
        states = [self._camera_health, self._plc_health, *self._scale_health]
        return {h.device: "fault" if h.faulted else "ok" for h in states}

    def snapshot(self) -> dict[str, Any]:
        c = self.counters
        status = self._status
        writer = self.writer.health()
        return {
            "line": self.settings.line_name,
            "state": self.state,
            "lot": self.lot.code if self.lot else None,
            "lot_id": self.lot.id if self.lot else None,
            "grower": self.lot.grower if self.lot else None,
            "product": self.lot.product if self.lot else None,
            "recipe": self.lot.recipe if self.lot else None,
            "fruit_total": c.fruit_total,
            "fruit_per_second": round(self.fruit_per_second(), 3),
            "late_total": c.late_total,
            "weights_missing_total": c.weights_missing_total,
            "weigh_failures": {cause: c.weigh_failures[cause] for cause in WEIGH_CAUSES},
            "quarantined_total": c.quarantined_total,
            "quality_classes": dict(c.by_quality),
            "size_classes": dict(c.by_size),
            "outlets": {str(k): v for k, v in sorted(c.by_outlet.items())},
            "lanes": {str(k): v for k, v in sorted(c.by_lane.items())},
            "frames_total": c.frames_total,
            "frames_dropped_total": c.frames_dropped_total,
            "frames_unplaced_total": c.frames_unplaced_total,
            "fruit_rows_written": self.writer.fruit_rows_written,
            "writer": {
                "state": writer.state,
                "pending_rows": writer.pending_rows,
                "retries_total": writer.retries_total,
                "quarantined_total": writer.quarantined_total,
                "oldest_pending_age_s": writer.oldest_pending_age_s,
            },
            "outbox": self._outbox_snapshot(),
            "latency_from_exposure": self.stages.summary(),
            "belt_speed_cups_per_s": status.belt_speed_cups_per_s if status else None,
            "cup_counter": status.cup_counter if status else None,
            "devices": self.device_health(),
        }

    def _outbox_snapshot(self) -> dict[str, Any] | None:
        if self.outbox_health is None:
            return None
        h = self.outbox_health()
        return {
            "state": h.state, "depth": h.depth, "oldest_age_s": round(h.oldest_age_s, 3),
            "forwarded_total": h.forwarded_total, "last_error": h.last_error,
        }

    # ----------------------------------------------------------------- PLC and scales

    async def _poll_plc(self) -> None:
        interval_s = self.settings.plc_poll_interval_s
        while True:
            try:
                status = await self.plc.read_status()
            except DeviceError as exc:
                self.counters.plc_errors_total += 1
                self._plc_health.fault(exc)
                self._status = None
                await asyncio.sleep(max(interval_s, 0.2))
                continue
            self._plc_health.ok()
            self._status = status
            self.timing.observe(status)
            self._carton_full_edges(status.carton_full)
            self._take_weights()
            await asyncio.sleep(interval_s)

    def _carton_full_edges(self, flags: tuple[bool, ...]) -> None:
        before = self._carton_full_before
        for index, full in enumerate(flags):
            if full and not (index < len(before) and before[index]):
                self.on_carton_full(index + 1)
        self._carton_full_before = flags

    def _take_weights(self) -> None:
        now_s = self._clock()
        for lane, scale in enumerate(self.scales):
            up = scale.is_up()
            health = self._scale_health[lane]
            if up:
                health.ok()
            else:
                health.fault("no weights")
            self.ledger.add(lane, scale.take_readings(), self.timing, up, now_s)

    async def _heartbeat(self) -> None:
        while True:
            try:
                await self.plc.heartbeat()
            except DeviceError as exc:
                self._plc_health.fault(exc)
            await asyncio.sleep(self.settings.heartbeat_interval_s)

    # ----------------------------------------------------------------- vision

    async def _read_camera(self) -> None:
        while True:
            try:
                frame = await self.camera.read()
            except EndOfStream:
                log.info("%s: end of stream", self.camera.name)
                return
            except DeviceError as exc:
                self.counters.camera_errors_total += 1
                self._camera_health.fault(exc)
                await asyncio.sleep(0.5)
                continue
            self._camera_health.ok()
            if not self.intake:
                continue
            placement = self.timing.place_frame(frame.t_s)
            if placement is None:
                self.counters.frames_unplaced_total += 1
                continue
            if self._frames.full():
                self.counters.frames_dropped_total += 1  # vision is behind: skip, never queue up latency
                continue
            try:
                future = self.vision.submit(frame.image_bgr, placement.position_cups)
            except ValueError as exc:  # a frame of another size than the camera is configured for
                self.counters.camera_errors_total += 1
                self._camera_health.fault(exc)
                continue
            if future is None:
                self.counters.frames_dropped_total += 1
                continue
            self.stages.add("submitted", self._clock() - frame.t_s)
            self._frames.put_nowait((frame, placement, future))

    async def _consume_frames(self) -> None:
        while True:
            item = await self._frames.get()
            if item is None:
                return
            frame, placement, future = item
            try:
                views = await future
            except Exception:
                log.exception("vision failed on frame %d", frame.seq)
                continue
            self.counters.frames_total += 1
            self.counters.views_total += len(views)
            self.stages.add("measured", self._clock() - frame.t_s)
            async with self._deciding:
                if not self.intake or self.lot is None:
                    continue
                fused = self._not_yet_recorded(self._tracker.update(views, placement.position_cups))
                if fused:
                    self._decide(fused, frame, placement)

    def _not_yet_recorded(self, fused: list[FusedFruit]) -> list[FusedFruit]:
        if not self._resume_after:
            return fused
        kept = []
        for fruit in fused:
            last = self._resume_after.get(fruit.lane)
            if last is None:
                kept.append(fruit)
                continue
            behind = (last - fruit.cup_index) % _U32
            if behind < 256:  # at or before the last cup recorded before the restart
                continue
            del self._resume_after[fruit.lane]  # past it (or the counter restarted): resume normally
            kept.append(fruit)
        return kept

    # ----------------------------------------------------------------- decisions

    def _decide(self, fused: Sequence[FusedFruit], frame: Frame, placement: FramePlacement) -> None:
        assert self.lot is not None  # the caller checked, under the deciding lock
        self._take_weights()  # the latest readings in first
        status = self._status
        now_s = self._clock()
        decisions = self.decider.decide(
            fused,
            lot_id=self.lot.id,
            frame_t_s=frame.t_s,
            frame_position_cups=placement.position_cups,
            now_s=now_s,
            position_now_cups=self.timing.position_at(now_s),
            outlet_full=self._outlet_full(status.outlet_full if status else ()),
        )
        decisions = [self._in_carton(d) for d in decisions]
        self.stages.add("decided", self._clock() - frame.t_s)
        task = asyncio.create_task(self._record_then_sort(decisions, frame.t_s), name=f"sort-{frame.seq}")
        self._sorting.add(task)
        task.add_done_callback(self._sorting.discard)

    def _in_carton(self, decision: Decision) -> Decision:
        if decision.write is None or decision.record.outlet == 0:
            return decision
        carton_id = self._carton_for(decision.record.outlet)
        if carton_id is None:
            return decision
        return dataclasses.replace(decision, record=dataclasses.replace(decision.record, carton_id=carton_id))

    async def _record_then_sort(self, decisions: list[Decision], frame_t_s: float) -> None:
        """Commit the frame's records, then write the decisions still in time (see module doc)."""
        committed = asyncio.wrap_future(self.writer.commit([d.record for d in decisions]))
        pending = [d for d in decisions if d.write is not None]
        wait_s = self._time_until(max((d.deadline_position_cups for d in pending), default=None))
        try:
            result = await asyncio.wait_for(asyncio.shield(committed), wait_s)
        except TimeoutError:
            # The store is slow or away: no decision of this frame may be written now. The
            # records stay queued in the writer, corrected behind them, and are counted once
            # they are committed.
            late = [d.record.uid for d in pending]
            if late:
                self.writer.mark_not_sorted(late, "late: record not committed before the deadline")
            committed.add_done_callback(lambda f: self._counted(f, decisions, set(late)))
            return
        self.stages.add("committed", self._clock() - frame_t_s)
        quarantined = result.quarantined_uids
        position = self.timing.position_at(self._clock())
        writes = [d for d in pending if d.record.uid not in quarantined and DecisionStep.in_time(d, position)]
        unsorted = {d.record.uid for d in pending if d.record.uid not in quarantined} - {d.record.uid for d in writes}
        if unsorted:
            self.writer.mark_not_sorted(sorted(unsorted), "late: record committed after the deadline")
        if writes:
            try:
                await self.plc.write_decisions([d.write for d in writes if d.write is not None])
            except DeviceError as exc:
                # Not written means the PLC's default applies: those cups recirculate.
                self._plc_health.fault(exc)
                self.counters.plc_write_failures_total += 1
                failed = {d.record.uid for d in writes}
                self.writer.mark_not_sorted(sorted(failed), f"not sorted: PLC write failed ({exc})")
                unsorted |= failed
            else:
                self._plc_health.ok()
                self.stages.add("written", self._clock() - frame_t_s)
                self._observe_latency(self._clock() - frame_t_s, len(writes))
        self._count(decisions, quarantined, unsorted)

    def _time_until(self, position_cups: float | None) -> float:
        """Seconds until the belt reaches ``position_cups`` at its speed (0 if already past)."""
        now_s = self._clock()
        position = self.timing.position_at(now_s)
        speed = self.timing.speed_cups_per_s
        if position_cups is None or position is None:
            return 0.0
        if speed <= 0:
            return 5.0  # stopped belt: the deadline does not come closer; wait a while, not forever
        return max(0.0, (position_cups - position) / speed)

    def _counted(self, future: asyncio.Future[Any], decisions: list[Decision], unsorted: set[str]) -> None:
        if future.cancelled() or future.exception() is not None:
            log.error("records of %d fruit were not committed", len(decisions))
            return
        self._count(decisions, future.result().quarantined_uids, unsorted)

    def _count(self, decisions: Iterable[Decision], quarantined: frozenset[str] | set[str], unsorted: set[str]) -> None:
        """Publish the committed records, as committed (a record corrected to late is published
        late, recirculated and in no carton, as its row now says)."""
        c = self.counters
        committed: list[tuple[FruitRecord, str | None]] = []
        for d in decisions:
            record = d.record
            if record.uid in quarantined:
                c.quarantined_total += 1
                continue
            if record.uid in unsorted:
                record = dataclasses.replace(record, late=True, outlet=0, carton_id=None)
                c.unsorted_after_commit_total += 1
            committed.append((record, d.weigh_cause))
        self.fruit_events.publish(committed)

    def _on_fruit(self, event: FruitGraded) -> None:
        """The counters' consumer of the graded-fruit events."""
        record = event.record
        c = self.counters
        self._graded_clock_s.append(self._clock())
        c.fruit_total += 1
        c.late_total += record.late
        if record.measurement.weight_g is None:
            c.weights_missing_total += 1
            c.weigh_failures[event.weigh_cause or "timeout"] += 1
        c.by_quality[record.grade.quality_class] += 1
        c.by_size[record.grade.size_class or "none"] += 1
        c.by_quality_size[(record.grade.quality_class, record.grade.size_class or "none")] += 1
        c.by_outlet[record.outlet] += 1
        c.by_lane[record.lane] += 1
        c.weight_g_sum += record.measurement.weight_g or 0.0

    def _observe_latency(self, latency_s: float, n: int) -> None:
        c = self.counters
        index = bisect_left(LATENCY_BUCKETS_S, latency_s)
        for i in range(index, len(LATENCY_BUCKETS_S)):
            c.latency_bucket_counts[i] += n
        c.latency_count += n
        c.latency_sum_s += latency_s * n

    def _event(
        self, kind: str, message: str, payload: dict[str, Any] | None = None, *, lot_id: int | None = None
    ) -> None:
        if lot_id is None and self.lot is not None:
            lot_id = self.lot.id
        self.writer.submit_event(
            EventRecord(at=self._wall_clock(), kind=kind, message=message, lot_id=lot_id, payload=payload or {})
        )


class NoOpenLot(Exception):
    """Intake was asked for while no lot is open."""
