"""The composition root: turns a validated line config into running objects, once.

This is the only place that knows whether a device is real or simulated: it picks the
implementation for each device from the config and hands the runtime objects that satisfy the
``drivers.interfaces`` Protocols. Everything is opened here and closed here, in reverse order.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from api.metrics import build_registry
from drivers.interfaces import Camera, Plc, Scale
from drivers.modbus.sensor import SensorPoller, build_sensor_poller
from grading.config import LineConfig
from grading.grader import Grader
from grading.outlets import OutletAssigner
from grading.recipe import Recipe, load_recipe
from grading.runtime import FrameMeasurer, LineRuntime, RuntimeSettings
from grading.store import RecordWriter, create_store_engine, migrate, open_lot
from simulators.settings import (
    SimulatedCameraSettings,
    SimulatedPlcSettings,
    SimulatedScaleSettings,
)
from vision.calibration import Undistorter
from vision.colour import ColourClass
from vision.pipeline import FramePipeline, QualityScoring, VisionSettings, settings_for_product
from vision.quality import QualityModel
from vision.tracking import CupTracker

log = logging.getLogger(__name__)


@dataclass
class Simulation:
    """Handles on the simulated world, for tests that score against ground truth."""

    conveyor: Any  # simulators.conveyor.SimulatedConveyor
    plc_model: Any | None  # simulators.plc.PlcModel when the PLC is simulated in-process


@dataclass
class LineHandle:
    config: LineConfig
    recipe: Recipe
    runtime: LineRuntime
    engine: Engine
    writer: RecordWriter
    registry: CollectorRegistry
    simulation: Simulation | None
    sensors: SensorPoller | None


@dataclass
class Devices:
    camera: Camera
    scales: Sequence[Scale]
    plc: Plc
    simulation: Simulation | None


def _vision_settings(config: LineConfig, recipe: Recipe) -> VisionSettings:
    """The product's vision defaults (e.g. the pomegranate crown's stalk cut), with the recipe's colours."""
    defaults = settings_for_product(recipe.product, config.camera.geometry.mm_per_px, config.line.lanes)
    colours = tuple(ColourClass(c.name, c.lab_lo, c.lab_hi) for c in recipe.colour_classes)
    return dataclasses.replace(defaults, colour_classes=colours)


class UndistortingMeasurer:
    """Removes lens distortion (from a checkerboard calibration) before measuring a frame."""

    def __init__(self, pipeline: FramePipeline, undistort: Callable[[Any], Any]) -> None:
        self._pipeline = pipeline
        self._undistort = undistort

    def measure(self, image_bgr: Any, belt_position_cups: float | None = None) -> Any:
        return self._pipeline.measure(self._undistort(image_bgr), belt_position_cups)


def _quality_scoring(config: LineConfig, recipe: Recipe) -> QualityScoring | None:
    """The recipe's taught model, scoring each fruit once it has reached the middle of the frame."""
    if recipe.quality_model is None:
        return None
    geometry = config.camera.geometry
    pitch_px = config.line.cup_pitch_mm / geometry.mm_per_px
    return QualityScoring(QualityModel.load(recipe.quality_model), geometry.width_px / 2, pitch_px, geometry.width_px - pitch_px / 2)


def _measurer_factory(config: LineConfig, recipe: Recipe) -> Callable[[], FrameMeasurer]:
    settings = _vision_settings(config, recipe)
    quality = _quality_scoring(config, recipe)
    lens = config.camera.calibration
    if lens.camera_matrix is None or lens.dist_coeffs is None:
        return lambda: FramePipeline(settings, quality)
    camera_matrix, dist_coeffs = lens.camera_matrix, lens.dist_coeffs
    # One undistorter per worker thread: it caches its pixel maps.
    return lambda: UndistortingMeasurer(FramePipeline(settings, quality), Undistorter(camera_matrix, dist_coeffs))


def build_devices(config: LineConfig, recipe: Recipe, clock: Callable[[], float]) -> Devices:
    """Pick a real driver or a simulator for each device, from the config alone."""
    plc: Plc
    position: Callable[[], float] | None = None
    plc_model = None
    if isinstance(config.plc.device, SimulatedPlcSettings):
        from simulators.plc import PlcModel, SimulatedPlc

        plc_model = PlcModel(
            lanes=config.line.lanes,
            outlet_offsets_cups={o.number: o.offset_cups for o in config.outlets},
            cups_per_second=config.line.cups_per_second,
            clock=clock,
        )
        plc = SimulatedPlc(plc_model)
        position = plc_model.position_cups
    else:
        from drivers.modbus.plc import ModbusPlc

        plc = ModbusPlc.from_settings(config.plc.device, lanes=config.line.lanes)

    needs_world = isinstance(config.camera.device, SimulatedCameraSettings) or isinstance(
        config.scale, SimulatedScaleSettings
    )
    conveyor = None
    if needs_world:
        from simulators.conveyor import FreeRunningBelt, SimulatedConveyor

        if position is None:  # real PLC, simulated fruit: the simulated belt runs on its own
            position = FreeRunningBelt(config.line.cups_per_second, clock)
        conveyor = SimulatedConveyor(recipe.product, config.simulation, position)

    camera: Camera
    if isinstance(config.camera.device, SimulatedCameraSettings):
        from simulators.conveyor import SimulatedCamera
        from simulators.scene import SceneGeometry, SceneRenderer

        g = config.camera.geometry
        geometry = SceneGeometry(
            width_px=g.width_px, height_px=g.height_px, lanes=config.line.lanes,
            mm_per_px=g.mm_per_px, cup_pitch_mm=config.line.cup_pitch_mm,
        )
        renderer = SceneRenderer(geometry, config.camera.device, seed=config.simulation.seed)
        assert conveyor is not None
        camera = SimulatedCamera(conveyor, renderer, fps=g.fps, clock=clock)
    else:
        from drivers.camera import OpenCvCamera

        camera = OpenCvCamera(config.camera.device)

    scales: list[Scale]
    if isinstance(config.scale, SimulatedScaleSettings):
        from simulators.conveyor import SimulatedScale

        assert conveyor is not None
        scales = [
            SimulatedScale(conveyor, lane, config.line.scale_offset_cups, config.scale, clock, config.simulation.seed)
            for lane in range(config.line.lanes)
        ]
    else:
        from drivers.scales.factory import create_scales

        scales = list(create_scales(config.scale, config.line.lanes, clock=clock))

    simulation = Simulation(conveyor, plc_model) if conveyor is not None else None
    return Devices(camera=camera, scales=scales, plc=plc, simulation=simulation)


@asynccontextmanager
async def open_line(
    config: LineConfig,
    *,
    clock: Callable[[], float] = time.monotonic,
    start: bool = True,
    devices: Devices | None = None,
) -> AsyncIterator[LineHandle]:
    """Build, open and run the line; on exit stop intake, flush every record, close devices.

    ``devices`` replaces ``build_devices(config)`` (benchmarks replay prerendered frames).
    """
    recipe = load_recipe(config.recipe)
    engine = create_store_engine(config.database.url)
    await asyncio.to_thread(migrate, engine)
    lot = await asyncio.to_thread(
        open_lot, engine, code=config.lot.code, grower=config.lot.grower, variety=config.lot.variety,
        product=recipe.product, recipe=recipe.name, line=config.line.name,
    )
    writer = RecordWriter(engine, batch_size=config.database.batch_size, flush_interval_s=config.database.flush_interval_s)
    writer.start()
    if devices is None:
        devices = build_devices(config, recipe, clock)
    geometry = config.camera.geometry
    pitch_px = config.line.cup_pitch_mm / geometry.mm_per_px
    executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="vision")
    runtime = LineRuntime(
        settings=RuntimeSettings(
            line_name=config.line.name,
            lanes=config.line.lanes,
            scale_offset_cups=config.line.scale_offset_cups,
            first_outlet_offset_cups=config.first_outlet_offset_cups,
            decision_margin_cups=config.plc.decision_margin_cups,
            plc_poll_interval_s=1.0 / config.plc.poll_hz,
        ),
        camera=devices.camera,
        scales=devices.scales,
        plc=devices.plc,
        measurer_factory=_measurer_factory(config, recipe),
        tracker_factory=lambda: CupTracker(config.line.lanes, pitch_px, geometry.width_px - pitch_px / 2),
        grader=Grader(recipe),
        assigner=OutletAssigner(config.outlets),
        writer=writer,
        lot=lot,
        executor=executor,
        clock=clock,
    )
    async with AsyncExitStack() as stack:
        stack.callback(engine.dispose)
        stack.callback(writer.close, 30.0)  # runs after the runtime and devices have stopped
        stack.callback(executor.shutdown, wait=True)
        opened: list[Plc | Camera | Scale] = [devices.plc, devices.camera, *devices.scales]
        for device in opened:
            await device.open()
            stack.push_async_callback(device.close)
        sensors: SensorPoller | None = None
        if config.sensors:
            sensors, buses = build_sensor_poller(config.sensors, clock=clock)
            stack.callback(buses.close)
            sensors.start()
            stack.push_async_callback(sensors.stop)
        run_task = asyncio.create_task(runtime.run(), name="line-runtime")
        try:
            if start:
                runtime.start_intake()
            yield LineHandle(
                config=config, recipe=recipe, runtime=runtime, engine=engine, writer=writer,
                registry=build_registry(runtime, sensors, clock), simulation=devices.simulation, sensors=sensors,
            )
        finally:
            await runtime.shutdown()
            await asyncio.gather(run_task, return_exceptions=True)
            log.info("line stopped: fruit_total=%d", runtime.counters.fruit_total)
