"""The simulated world of one grading line, in one asyncio process, over the real protocols.

``LineWorld`` assembles every device the line PC talks to, each behind the wire protocol the
real device speaks, so the line's real drivers run end to end against it:

* the PLC (``PlcModel`` over Modbus TCP, contract v2): its belt runs at the configured speed
  from the moment the world is up, it fires the outlets from the ring the PC writes, and it
  triggers the camera every ``pitch = cups_per_second / fps`` cups;
* one weighing indicator per lane (``ScaleSimulator`` over TCP, the config's protocol), fed by
  that lane's load cell (``simulators.loadcell``) at the belt position of each sample;
* the camera (``simulators.camera_server``): MJPEG over HTTP, one frame per PLC trigger,
  from a cycle rendered once and cached (``simulators.world_cycle``);
* the cold rooms (``ColdroomModel`` over Modbus TCP);
* when the plan asks for one, the carton label printer (``PrinterSimulator``, raw TCP 9100),
  which keeps each job in the truth directory's ``labels/``.

The line gets only what a real installation gives it: frames, weights, PLC registers,
sensor registers. The world writes what really happened to a truth directory instead,
as JSON lines flushed at least every ``flush_interval_s`` (<= 100 ms) so a process reading
them while the world runs sees them promptly; every ``t_s`` is ``time.monotonic``:

* ``cups.jsonl``: each cup of each lane as it passes the inspection point (the camera exit);
* ``drops.jsonl``: each cup leaving the chain, at an outlet or recirculated (``outlet`` 0);
* ``writes.jsonl``: each ring word the PC wrote, with its lane, cup, outlet and arrival time;
* ``frames.jsonl``: each camera trigger, and camera clients connecting and leaving;
* ``world.json``: the banner (endpoints, pitch, cycle) once the world is up.

What it is not: the line (it never grades), nor a config loader. It takes a ``WorldPlan``
that the application builds from the line config (``api/world.py``).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from simulators.camera_server import MjpegStreamServer, TriggeredCamera, mjpeg_part
from simulators.coldroom import ColdroomModel, ColdroomServer, ColdroomSimSettings
from simulators.loadcell import BeltLoadCell, LaneLoadCell, displayed_g
from simulators.plc import CUP_COUNTER_MODULUS, PlcModel
from simulators.plc_server import PlcServer
from simulators.printer_server import PrinterSimulator
from simulators.scale_server import ProtocolName, ScaleSimulator, Unit
from simulators.settings import SimulatedCameraSettings, SimulationSettings
from simulators.world_cycle import (
    PrerenderedCycle,
    RenderSpec,
    WorldConfigError,
    camera_fault_spec,
    load_or_render_cycle,
    plan_cycle,
)

log = logging.getLogger(__name__)

BANNER_VERSION = 1
PLC_DEVICE_ID = 1
STALL_REPORT_S = 0.02


def trigger_frames(
    parts: list[bytes], fault_parts: list[bytes] | None = None, fault_from_trigger: int = 0
) -> Callable[[int], tuple[int, bytes]]:
    """Trigger number -> (cycle frame, MJPEG part): frame ``m mod F`` of the clean cycle, or of
    the faulted cycle (same positions and fruit, the faulty lanes darkened) from trigger
    ``fault_from_trigger`` on, when a simulated camera fault is configured."""
    frames = len(parts)

    def frame_for_trigger(m: int) -> tuple[int, bytes]:
        chosen = fault_parts if fault_parts is not None and m >= fault_from_trigger else parts
        return m % frames, chosen[m % frames]

    return frame_for_trigger


@dataclass(frozen=True)
class WorldPlan:
    """Everything the world simulates, taken from one line config by the application."""

    product: str
    lanes: int
    cup_pitch_mm: float
    cups_per_second: float
    scale_offset_cups: int
    outlet_offsets_cups: dict[int, int]
    width_px: int
    height_px: int
    mm_per_px: float
    fps: float
    camera: SimulatedCameraSettings
    simulation: SimulationSettings
    scale_protocol: ProtocolName
    scale_noise_g: float
    coldrooms: ColdroomSimSettings | None
    host: str = "127.0.0.1"
    label_printer: bool = False

    def render_spec(self) -> RenderSpec:
        world = self.simulation.world
        cycle = plan_cycle(
            self.cups_per_second, self.fps, world.cycle_cups, world.max_frames_per_cycle
        )
        return RenderSpec(
            product=self.product,
            lanes=self.lanes,
            width_px=self.width_px,
            height_px=self.height_px,
            mm_per_px=self.mm_per_px,
            cup_pitch_mm=self.cup_pitch_mm,
            camera=self.camera,
            simulation=self.simulation,
            pitch_numerator=cycle.pitch_cups.numerator,
            pitch_denominator=cycle.pitch_cups.denominator,
            cycle_cups=cycle.cycle_cups,
            frames=cycle.frames,
            jpeg_quality=world.jpeg_quality,
        )

    def indicator_format(self) -> tuple[Unit, int]:
        """Display unit and decimals that give the configured resolution in this protocol."""
        resolution_g = self.simulation.world.scale_resolution_g
        decimals_g = max(0, round(-math.log10(resolution_g)))
        if self.scale_protocol == "mt-sics":
            return "g", decimals_g
        limit = 5 if self.scale_protocol == "toledo" else 4
        if 3 + decimals_g > limit:
            raise WorldConfigError(
                "simulation.world.scale_resolution_g",
                f"{self.scale_protocol} frames in kg carry at most {limit} decimals "
                f"({10.0 ** (3 - limit):g} g); {resolution_g:g} g is finer",
            )
        return "kg", 3 + decimals_g


class JsonLinesLog:
    """One truth-log file: JSON objects, one a line, buffered until ``flush()``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = path.open("w", encoding="utf-8")
        self.lines = 0

    def write(self, record: dict[str, Any]) -> None:
        self.write_line(json.dumps(record, separators=(",", ":")))

    def write_line(self, line: str) -> None:
        if self._file is None:
            return
        self._file.write(line + "\n")
        self.lines += 1

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.flush()
            self._file.close()
            self._file = None


@dataclass
class _Lane:
    cell: LaneLoadCell
    simulator: ScaleSimulator
    url: str = ""
    # The cup's truth as JSON text without braces, per cycle cup: spliced into each cups line.
    truth_json: list[str] = field(default_factory=list)


class LineWorld:
    """The assembled world. ``await start()`` returns the banner; ``await stop()`` flushes."""

    def __init__(
        self,
        plan: WorldPlan,
        truth_dir: Path,
        *,
        cache_dir: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.plan = plan
        self.truth_dir = truth_dir
        self.cache_dir = (
            cache_dir if cache_dir is not None else Path(plan.simulation.world.cache_dir).expanduser()
        )
        # Every t_s in the truth log is on this clock; the servers' asyncio loop and the line's
        # drivers use time.monotonic too, which all processes on the machine share.
        self._clock = clock
        self.spec = plan.render_spec()  # checks the cycle before anything starts
        self._fault_spec = camera_fault_spec(self.spec)
        self.fault_cycle: PrerenderedCycle | None = None
        self.unit, self.decimals = plan.indicator_format()
        self.cycle: PrerenderedCycle | None = None
        self.model: PlcModel | None = None
        self.plc_server: PlcServer | None = None
        self.camera_server: MjpegStreamServer | None = None
        self.camera: TriggeredCamera | None = None
        self.coldroom_server: ColdroomServer | None = None
        self.coldroom_model: ColdroomModel | None = None
        self.printer: PrinterSimulator | None = None
        self.lanes: list[_Lane] = []
        self.banner: dict[str, Any] = {}
        self._parts: list[bytes] = []
        self._cups_log: JsonLinesLog | None = None
        self._frames_log: JsonLinesLog | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._next_cup = 0
        self.stalls = 0

    # -- truth ---------------------------------------------------------------------------

    def _scale_fault(self, lane: int) -> Callable[[int], float] | None:
        """The simulated drift of this lane's load cell, if the plan asks for one."""
        faults = self.plan.simulation.faults
        if not any(f.lane == lane for f in faults.scale_drift):
            return None
        return functools.partial(faults.scale_offset_g, lane)

    def cup_weight_g(self, lane: int, cup_index: int) -> float:
        assert self.cycle is not None
        return float(self.cycle.truth[lane][cup_index % self.spec.cycle_cups]["weight_g"])

    def _log_cups(self) -> None:
        """Write every cup that reached the inspection point since the last call."""
        model, log_ = self.model, self._cups_log
        if model is None or log_ is None:
            return
        position = model.position_cups()
        world = self.plan.simulation.world
        resolution_g = world.scale_resolution_g
        h = world.scale_plateau_half_width_cups
        n = self.spec.cycle_cups
        while self._next_cup <= position:
            k = self._next_cup
            t_s = model.time_at_position(float(k))
            if t_s is None:
                t_s = self._clock()
            for lane_number, lane in enumerate(self.lanes):
                plateau_g = displayed_g(lane.cell.plateau_weight_g(k), resolution_g)
                # The world starts at position 0: a cup whose plateau began before that was
                # never fully shown by the indicator while anyone could read it.
                weighed = lane.cell.centred_position_cups(k) - h >= 0
                log_.write_line(
                    f'{{"lane":{lane_number},"cup_index":{k % CUP_COUNTER_MODULUS},'
                    f'"t_s":{t_s!r},"cycle_cup":{k % n},"plateau_weight_g":{plateau_g!r},'
                    f'"weighed":{"true" if weighed else "false"},{lane.truth_json[k % n]}}}'
                )
            self._next_cup += 1

    def _log_frame(self, record: dict[str, Any]) -> None:
        if self._frames_log is not None:
            self._frames_log.write(record)

    def flush(self) -> None:
        self._log_cups()
        for log_ in (self._cups_log, self._frames_log):
            if log_ is not None:
                log_.flush()

    async def _flush_periodically(self) -> None:
        period_s = self.plan.simulation.world.flush_interval_s
        loop = asyncio.get_running_loop()
        while True:
            due_t_s = loop.time() + period_s
            cpu0_s = time.process_time()
            await asyncio.sleep(period_s)
            # The world's own lateness shifts frame and weight times the line sees; log it so a
            # benchmark can tell a stalled world from a line that fell behind. The CPU the
            # process used meanwhile tells a busy world (cpu_s ~ the period plus the stall)
            # from one the machine did not run (cpu_s small).
            stall_s = loop.time() - due_t_s
            if stall_s > STALL_REPORT_S:
                self.stalls += 1
                cpu_s = time.process_time() - cpu0_s
                self._log_frame(
                    {
                        "event": "world_stall",
                        "t_s": self._clock(),
                        "late_s": stall_s,
                        "cpu_s": cpu_s,
                    }
                )
                log.warning(
                    "world event loop %.0f ms late (%.0f ms CPU in the last %.0f ms)",
                    stall_s * 1000,
                    cpu_s * 1000,
                    (period_s + stall_s) * 1000,
                )
            self.flush()

    # -- lifecycle -----------------------------------------------------------------------

    def prerender(self) -> PrerenderedCycle:
        """The camera cycle, loaded from the cache or rendered into it (blocking); with a
        simulated camera fault, its faulted cycle too (``self.fault_cycle``)."""
        workers = self.plan.simulation.world.render_workers
        if self._fault_spec is not None:
            self.fault_cycle = load_or_render_cycle(self._fault_spec[0], self.cache_dir, workers=workers)
        return load_or_render_cycle(self.spec, self.cache_dir, workers=workers)

    async def start(self) -> dict[str, Any]:
        plan, world = self.plan, self.plan.simulation.world
        host = plan.host
        self.cycle = await asyncio.to_thread(self.prerender)
        cycle = self.cycle
        log.info(
            "camera cycle %s: %d frames, %s in %.1f s",
            cycle.cache_path.name,
            len(cycle.frames),
            "rendered" if cycle.rendered else "loaded",
            cycle.seconds,
        )
        self._parts = [mjpeg_part(jpeg) for jpeg in cycle.frames]

        self.truth_dir.mkdir(parents=True, exist_ok=True)
        self._cups_log = JsonLinesLog(self.truth_dir / "cups.jsonl")
        self._frames_log = JsonLinesLog(self.truth_dir / "frames.jsonl")
        drops_path = self.truth_dir / "drops.jsonl"
        drops_path.write_text("", encoding="utf-8")  # PlcServer appends; a new world starts afresh

        # The belt starts here, once everything slow is done.
        pitch = self.spec.cycle.pitch_cups
        model = PlcModel(
            plan.lanes,
            plan.outlet_offsets_cups,
            plan.cups_per_second,
            self._clock,
            ring_size=world.plc_ring_size,
            watchdog_timeout_s=world.plc_watchdog_timeout_s,
            camera_trigger_pitch_cups=float(pitch),
        )
        self.model = model
        started_t_s = model.time_at_position(0.0)
        self.plc_server = PlcServer(
            model, device_id=PLC_DEVICE_ID, drop_log_path=drops_path, write_log_path=self.truth_dir / "writes.jsonl"
        )
        plc_port = await self.plc_server.start(host, 0)

        noise_g = plan.scale_noise_g
        for lane in range(plan.lanes):
            cell = LaneLoadCell(
                functools.partial(self.cup_weight_g, lane),
                lane=lane,
                scale_offset_cups=plan.scale_offset_cups,
                noise_g=noise_g,
                seed=plan.simulation.seed,
                plateau_half_width_cups=world.scale_plateau_half_width_cups,
                fault_offset_g=self._scale_fault(lane),
            )
            source = BeltLoadCell(cell, model.position_cups, world.scale_resolution_g)
            simulator = ScaleSimulator(
                plan.scale_protocol,
                source,
                unit=self.unit,
                decimals=self.decimals,
                rate_hz=world.scale_stream_hz,
                clock=self._clock,
            )
            entry = _Lane(cell, simulator)
            entry.truth_json = [
                json.dumps(record, separators=(",", ":"))[1:-1] for record in cycle.truth[lane]
            ]
            entry.url = await simulator.start_tcp(0)
            self.lanes.append(entry)

        self.camera_server = MjpegStreamServer(
            backlog_frames=world.camera_client_backlog_frames,
            part_bytes_hint=max(len(p) for p in self._parts),
            on_client_event=self._log_frame,
            clock=self._clock,
        )
        await self.camera_server.start(host, 0)
        frames = self.spec.frames
        parts = self._parts
        fault_parts: list[bytes] | None = None
        fault_from_trigger = 0
        if self._fault_spec is not None and self.fault_cycle is not None:
            fault_parts = [mjpeg_part(jpeg) for jpeg in self.fault_cycle.frames]
            fault_from_trigger = math.ceil(self._fault_spec[1] / float(pitch))
        frame_for_trigger = trigger_frames(parts, fault_parts, fault_from_trigger)
        self.camera = TriggeredCamera(
            model,
            self.camera_server,
            frame_for_trigger,
            latency_s=world.camera_latency_s,
            on_frame=self._log_frame,
            clock=self._clock,
        )

        coldrooms: dict[str, Any] | None = None
        if plan.coldrooms is not None:
            self.coldroom_model = ColdroomModel(plan.coldrooms, self._clock)
            self.coldroom_server = ColdroomServer(self.coldroom_model)
            coldroom_port = await self.coldroom_server.start_tcp(host, 0)
            coldrooms = {
                "host": host,
                "port": coldroom_port,
                "profile": plan.coldrooms.layout,
                # rooms, then the core probes served over Modbus (each a sensor of the line)
                "unit_ids": [r.unit_id for r in plan.coldrooms.rooms]
                + [p.unit_id for r in plan.coldrooms.rooms for p in r.core_probes if p.unit_id is not None]
                + [r.door_unit_id for r in plan.coldrooms.rooms if r.door_unit_id is not None],
                "names": [r.name for r in plan.coldrooms.rooms]
                + [p.name for r in plan.coldrooms.rooms for p in r.core_probes if p.unit_id is not None]
                + [r.door_name or f"{r.name}-door" for r in plan.coldrooms.rooms if r.door_unit_id is not None],
            }

        printer: dict[str, Any] | None = None
        if plan.label_printer:
            self.printer = PrinterSimulator(self.truth_dir / "labels", host, 0)
            printer = {"host": host, "port": await self.printer.start(), "out_dir": str(self.printer.out_dir)}

        self._tasks = [
            asyncio.create_task(self.camera.run(), name="world camera"),
            asyncio.create_task(self._flush_periodically(), name="world truth log"),
        ]
        self.banner = {
            "simulator": "line",
            "banner_version": BANNER_VERSION,
            "pid": os.getpid(),
            "started_t_s": started_t_s,
            "truth_dir": str(self.truth_dir),
            "lanes": plan.lanes,
            "cups_per_second": plan.cups_per_second,
            "scale_offset_cups": plan.scale_offset_cups,
            "outlets": {str(n): o for n, o in sorted(plan.outlet_offsets_cups.items())},
            "camera_trigger_pitch_cups": float(pitch),
            "camera_trigger_pitch": str(pitch),
            "cycle_cups": self.spec.cycle_cups,
            "frames_per_cycle": frames,
            # The simulated device faults and when they start: the truth a drift test scores against.
            "faults": plan.simulation.faults.model_dump(mode="json"),
            "plc": {"host": host, "port": plc_port, "device_id": PLC_DEVICE_ID},
            "scale": {
                "kind": plan.scale_protocol,
                "ports": [lane.url for lane in self.lanes],
                "unit": self.unit,
                "resolution_g": world.scale_resolution_g,
                "stream_hz": world.scale_stream_hz,
                "noise_g": noise_g,
            },
            "camera": {
                "url": self.camera_server.url(host),
                "latency_s": world.camera_latency_s,
                "fps": plan.fps,
                "width_px": plan.width_px,
                "height_px": plan.height_px,
            },
            "coldrooms": coldrooms,
            "printer": printer,
            "cache": {
                "path": str(cycle.cache_path),
                "rendered": cycle.rendered,
                "seconds": round(cycle.seconds, 3),
            },
        }
        (self.truth_dir / "world.json").write_text(
            json.dumps(self.banner, indent=1), encoding="utf-8"
        )
        return self.banner

    async def stop(self) -> None:
        """Stop every device and leave the truth log complete up to this moment."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.camera_server is not None:
            await self.camera_server.stop()
        for lane in self.lanes:
            await lane.simulator.stop()
        if self.coldroom_server is not None:
            await self.coldroom_server.stop()
        if self.printer is not None:
            await self.printer.close()
        if self.plc_server is not None:
            await self.plc_server.stop()  # settles the belt to now and writes the last drops
        self.flush()
        for log_ in (self._cups_log, self._frames_log):
            if log_ is not None:
                log_.close()

    async def __aenter__(self) -> LineWorld:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
