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
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from api.config import LineConfig
from api.metrics import build_registry
from drivers.interfaces import Camera, Plc, Scale
from drivers.modbus.sensor import SensorPoller, build_sensor_poller
from drivers.printer import LabelPrinter, RawTcpPrinter
from grading.alarms import AlarmEngine
from grading.coldchain.history import ColdchainStore
from grading.coldchain.monitor import ColdchainMonitor
from grading.coldchain.service import ColdchainService
from grading.decision import DecisionSettings, DecisionStep
from grading.drift import DriftAlarms, DriftDetector
from grading.fruit_events import FruitBus
from grading.grader import Grader
from grading.lots import lots as lot_store
from grading.lots.cartons import Carton, CartonPacker, OpenCarton, open_cartons, resume_open_cartons
from grading.lots.lots import LotDetails, LotError
from grading.lots.recipes import store_recipe_ref
from grading.lots.service import LineLots
from grading.lots.settlement import PriceTable, load_price_table
from grading.lots.stats import LotStatistics
from grading.outbox import Forwarder, install_outbox
from grading.outlets import OutletAssigner
from grading.recipe import Recipe, load_recipe
from grading.runtime import LineRuntime, RuntimeSettings
from grading.store import Lot, RecordWriter, create_store_engine, last_recorded_cups, migrate
from grading.trace.carton_codes import CartonCoder, code_interrupted, missing_gtins
from grading.trace.epcis import EpcisEventSource
from grading.trace.resolver import TraceLookup
from grading.trace.serials import LineSerials
from grading.trace.store_events import StoreEventSource
from grading.trace.store_lookup import StoreTraceLookup
from grading.weighing import WeightLedger
from simulators.settings import (
    SimulatedCameraSettings,
    SimulatedPlcSettings,
    SimulatedScaleSettings,
)
from vision.colour import ColourClass
from vision.pipeline import VisionSettings, settings_for_product
from vision.pool import LensSpec, MeasurerSpec, QualitySpec, VisionPool
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
    lots: LineLots
    packer: CartonPacker
    lot_stats: LotStatistics
    recipe_hash: str
    prices: PriceTable
    # The line's one alarm engine: the cold rooms' alarms and any other source (drift, ...).
    alarms: AlarmEngine | None = None
    coldchain: ColdchainMonitor | None = None
    coldchain_service: ColdchainService | None = None
    # Set when [database] outbox is: replicates the local outbox (``engine``) to the central database.
    forwarder: Forwarder | None = None
    # Set when [trace] names a printer_host: where carton labels are printed.
    printer: LabelPrinter | None = None
    # Set with [trace]: what the Digital Link resolver shows for a code (app.state.trace_lookup).
    trace_lookup: TraceLookup | None = None
    # Set with [trace]: the EPCIS events of the store (app.state.epcis_events).
    epcis_events: EpcisEventSource | None = None
    # Set with [trace]: the line's durable carton serials and SSCC serial references (pallets).
    serials: LineSerials | None = None


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


def _quality_spec(config: LineConfig, recipe: Recipe) -> QualitySpec | None:
    """The recipe's taught model, scoring each fruit once it has reached the middle of the frame."""
    if recipe.quality_model is None:
        return None
    geometry = config.camera.geometry
    pitch_px = config.line.cup_pitch_mm / geometry.mm_per_px
    return QualitySpec(recipe.quality_model, geometry.width_px / 2, pitch_px, geometry.width_px - pitch_px / 2)


def _measurer_spec(config: LineConfig, recipe: Recipe) -> MeasurerSpec:
    """How to build the frame measurer: picklable, for ``vision.pool.VisionPool``'s worker
    processes, and callable (it builds one measurer per call, e.g. one per worker thread).
    The quality model's file is read where the measurer is built."""
    lens = config.camera.calibration
    lens_spec = None
    if lens.camera_matrix is not None and lens.dist_coeffs is not None:
        lens_spec = LensSpec(tuple(tuple(row) for row in lens.camera_matrix), tuple(lens.dist_coeffs))
    return MeasurerSpec(_vision_settings(config, recipe), _quality_spec(config, recipe), lens_spec)


def build_devices(config: LineConfig, recipe: Recipe, clock: Callable[[], float]) -> Devices:
    """Pick a real driver or an in-process stand-in for each device, from the config alone.

    The stand-ins (``simulators.conveyor``, ``simulators.plc``) share one in-process PLC model:
    its encoder moves the simulated fruit and triggers the simulated camera. The demo and the
    benchmarks use real drivers against the simulated world in its own process instead
    (``api.world``).
    """
    plc: Plc
    plc_model = None
    if isinstance(config.plc.device, SimulatedPlcSettings):
        from simulators.plc import PlcModel, SimulatedPlc

        plc_model = PlcModel(
            lanes=config.line.lanes,
            outlet_offsets_cups={o.number: o.offset_cups for o in config.outlets},
            cups_per_second=config.line.cups_per_second,
            clock=clock,
            camera_trigger_pitch_cups=config.line.cups_per_second / config.camera.geometry.fps,
        )
        plc = SimulatedPlc(plc_model)
    else:
        from drivers.modbus.plc import ModbusPlc

        plc = ModbusPlc.from_settings(config.plc.device, lanes=config.line.lanes, clock=clock)

    conveyor = None
    if plc_model is not None:
        from simulators.conveyor import SimulatedConveyor

        conveyor = SimulatedConveyor(recipe.product, config.simulation, plc_model.position_cups)

    camera: Camera
    if isinstance(config.camera.device, SimulatedCameraSettings):
        from simulators.conveyor import SimulatedCamera
        from simulators.scene import SceneGeometry, SceneRenderer

        assert conveyor is not None and plc_model is not None  # the config requires a simulated PLC
        g = config.camera.geometry
        geometry = SceneGeometry(
            width_px=g.width_px, height_px=g.height_px, lanes=config.line.lanes,
            mm_per_px=g.mm_per_px, cup_pitch_mm=config.line.cup_pitch_mm,
        )
        renderer = SceneRenderer(
            geometry, config.camera.device, seed=config.simulation.seed, faults=config.simulation.faults.camera_darken
        )
        camera = SimulatedCamera(conveyor, renderer, plc_model, clock=clock)
    else:
        from drivers.camera import OpenCvCamera

        camera = OpenCvCamera(config.camera.device, clock=clock)

    scales: list[Scale]
    if isinstance(config.scale, SimulatedScaleSettings):
        from simulators.conveyor import SimulatedScale

        assert conveyor is not None and plc_model is not None
        scales = [
            SimulatedScale(
                conveyor, plc_model, lane, config.line.scale_offset_cups, config.scale, clock, config.simulation.seed
            )
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
    """Build, open and run the line; on exit stop intake, write every record, close devices.

    Everything that takes a while (migrations, the vision workers' start and warm-up, the
    devices' open) happens before intake can start. ``devices`` replaces
    ``build_devices(config)`` (tests hand in their own).
    """
    recipe = load_recipe(config.recipe)
    # With an outbox the line writes and reads its local SQLite file; the forwarder copies it on.
    engine = create_store_engine(config.database.line_url)
    async with AsyncExitStack() as stack:
        stack.callback(engine.dispose)
        await asyncio.to_thread(migrate, engine)
        forwarder: Forwarder | None = None
        if config.database.outbox is not None:
            await asyncio.to_thread(install_outbox, engine)
            central = create_store_engine(config.database.url, connect_timeout_s=3.0)
            stack.callback(central.dispose)
            forwarder = Forwarder(engine, central, batch_size=config.database.forward_batch_rows)
            forwarder.start()
            # after the writer has committed its last rows (callbacks run in reverse): a short
            # drain, and whatever is left is forwarded after the next start
            stack.callback(forwarder.close, 5.0)
        prices = load_price_table(config.settlement.price_table)  # a bad table stops the start, with its file and field
        # [trace]: a carton kind without a GTIN stops the start; cartons a stop left uncoded get their code
        serials = None if config.trace is None else LineSerials(
            engine, config.line.id, config.line.number, block=config.trace.serial_block
        )
        coder = await asyncio.to_thread(_carton_coder, config, recipe, engine, serials)
        version, _ = await asyncio.to_thread(store_recipe_ref, engine, config.recipe, at=datetime.now(UTC), by="config")
        lot = await asyncio.to_thread(_lot_to_run, engine, config, recipe, version.hash)
        packer = CartonPacker(config.outlets, wall_clock=lambda: datetime.now(UTC))
        if lot is not None:
            packer.replace(await asyncio.to_thread(_cartons_to_run, engine, lot, packer))
        resume_after = await asyncio.to_thread(last_recorded_cups, engine, config.line.name)
        writer = RecordWriter(
            engine, batch_size=config.database.batch_size, flush_interval_s=config.database.flush_interval_s, clock=clock,
            line_id=config.line.id,
        )
        writer.start()
        stack.callback(writer.close, 30.0)  # runs after the runtime and devices have stopped
        if devices is None:
            devices = build_devices(config, recipe, clock)
        geometry = config.camera.geometry
        vision = VisionPool(
            _measurer_spec(config, recipe),
            workers=config.vision.workers,
            frame_shape=(geometry.height_px, geometry.width_px, 3),
            split=config.vision.split,
        )
        await vision.start()
        stack.callback(vision.close)
        pitch_px = config.line.cup_pitch_mm / geometry.mm_per_px
        ledger = WeightLedger(
            config.line.lanes, config.line.scale_offset_cups, config.line.weigh_window_cups,
            consistency_g=config.line.weigh_consistency_g,
        )
        decider = DecisionStep(
            DecisionSettings(config.first_outlet_offset_cups, config.plc.decision_margin_cups),
            Grader(recipe),
            OutletAssigner(config.outlets),
            ledger,
            wall_clock=lambda: datetime.now(UTC),
        )
        runtime = LineRuntime(
            settings=RuntimeSettings(
                line_name=config.line.name,
                lanes=config.line.lanes,
                plc_poll_interval_s=1.0 / config.plc.poll_hz,
                max_frames_in_flight=vision.workers * vision.slots_per_worker,
            ),
            camera=devices.camera,
            scales=devices.scales,
            plc=devices.plc,
            vision=vision,
            tracker_factory=lambda: CupTracker(config.line.lanes, pitch_px, geometry.width_px - pitch_px / 2),
            decider=decider,
            writer=writer,
            lot=lot,
            clock=clock,
            resume_after_cups=resume_after,
            outbox=forwarder.health if forwarder is not None else None,
            fruit_events=FruitBus(),
            carton_for=packer.carton_for,
            outlet_full=packer.outlet_full,
        )
        lot_stats = LotStatistics()
        runtime.fruit_events.subscribe("cartons", packer.on_fruit)
        runtime.fruit_events.subscribe("lots", lot_stats.on_fruit)
        line_lots = LineLots(
            engine=engine, runtime=runtime, writer=writer, packer=packer, recipe=recipe, recipe_hash=version.hash,
            line=config.line.name, wall_clock=lambda: datetime.now(UTC), on_carton_closed=lot_stats.on_carton_closed,
            coder=coder, check_lot_code=CartonCoder.check_lot_code if coder is not None else lambda code: None,
            carry_over=config.lots.carry_over_partial_cartons,
        )
        runtime.on_carton_full = line_lots.carton_full
        opened: list[Plc | Camera | Scale] = [devices.plc, devices.camera, *devices.scales]
        for device in opened:
            await device.open()
            stack.push_async_callback(device.close)
        alarms = AlarmEngine(
            clock=clock, flood_alarms=config.coldchain.flood_alarms, flood_window_s=config.coldchain.flood_window_s
        )
        # drift: the same alarm engine as the cold rooms', fed by the fruit bus (off the decision path)
        drift = DriftAlarms(
            DriftDetector(config.drift, clock=lambda: datetime.now(UTC)), alarms, line=config.line.name
        )
        runtime.fruit_events.subscribe("drift", drift.on_fruit)
        monitor: ColdchainMonitor | None = None
        sensors: SensorPoller | None = None
        if config.sensors:
            rooms = config.coldchain.rooms_for([s.name for s in config.sensors])
            monitor = ColdchainMonitor(rooms, alarms, default_product=recipe.product, clock=clock)
            sensors, buses = build_sensor_poller(config.sensors, clock=clock, on_reading=monitor.on_reading)
            stack.callback(buses.close)
        coldchain = ColdchainService(
            engine, alarms, monitor, ColdchainStore(engine), retention_days=config.coldchain.retention_days, clock=clock
        )
        coldchain.start()
        stack.push_async_callback(coldchain.close)  # after the poller has stopped: the last minutes
        if sensors is not None:
            sensors.start()
            stack.push_async_callback(sensors.stop)
        run_task = asyncio.create_task(runtime.run(), name="line-runtime")
        try:
            if start and runtime.lot is not None:
                runtime.start_intake()
            yield LineHandle(
                config=config, recipe=recipe, runtime=runtime, engine=engine, writer=writer,
                registry=build_registry(
                    runtime, sensors, clock, alarms=alarms, coldchain=monitor, lot_stats=lot_stats
                ),
                simulation=devices.simulation, sensors=sensors, lots=line_lots, packer=packer, lot_stats=lot_stats,
                recipe_hash=version.hash, prices=prices, alarms=alarms, coldchain=monitor,
                coldchain_service=coldchain, forwarder=forwarder, printer=label_printer(config),
                trace_lookup=None if config.trace is None else StoreTraceLookup(engine, config.trace, recipe),
                epcis_events=None if config.trace is None else StoreEventSource(engine, config.trace),
                serials=serials,
            )
        finally:
            await line_lots.wait_idle()  # a carton the PLC closed gets its totals before the line stops
            await runtime.shutdown()
            await asyncio.gather(run_task, return_exceptions=True)
            log.info("line stopped: fruit_total=%d", runtime.counters.fruit_total)


def label_printer(config: LineConfig) -> RawTcpPrinter | None:
    """The ``[trace]`` label printer (raw TCP, ZPL), or None when none is configured."""
    trace = config.trace
    if trace is None or trace.printer_host is None:
        return None
    return RawTcpPrinter(trace.printer_host, trace.printer_port)


def _carton_coder(
    config: LineConfig, recipe: Recipe, engine: Engine, serials: LineSerials | None
) -> Callable[[Carton], Carton] | None:
    """With ``[trace]``: what gives each closed carton its GS1 code. Refuses a start whose
    packing outlets pack a carton kind with no GTIN in ``[trace] gtins``."""
    trace = config.trace
    if trace is None or serials is None:
        return None
    missing = missing_gtins(trace, recipe.product, config.outlets)
    if missing:
        raise ValueError("trace.gtins: no GTIN for " + "; ".join(missing))
    try:
        CartonCoder.check_lot_code(config.lot.code)
    except LotError as exc:
        raise ValueError(f"lot.code: {exc}") from exc
    # the pack date (AI 13) is the packing center's own calendar date: the machine's local zone
    local_zone = datetime.now().astimezone().tzinfo or UTC
    coder = CartonCoder(engine, trace, serials, product=recipe.product, timezone=local_zone)
    for carton in code_interrupted(engine, coder, config.line.name):
        log.info("carton %d, closed before the last stop, coded %s", carton.id, carton.serial)
    return coder.code


def _lot_to_run(engine: Engine, config: LineConfig, recipe: Recipe, recipe_hash: str) -> Lot | None:
    """The lot the line starts on: the one open on this line (a restart resumes it), else the
    config's ``[lot]`` when its code is new; None when that lot was closed (start one first)."""
    lot = lot_store.open_lot_of(engine, config.line.name)
    if lot is not None:
        if lot.recipe_hash not in (None, recipe_hash):
            log.warning("lot %s was started with another recipe version than the line now runs", lot.code)
        return lot
    if _code_taken(engine, config.lot.code):
        log.warning("lot %s is closed and no lot is open on %s: start a lot", config.lot.code, config.line.name)
        return None
    details = LotDetails(
        code=config.lot.code, grower=config.lot.grower, grower_id=config.lot.grower_id, product=recipe.product,
        variety=config.lot.variety, origin_village=config.lot.origin_village, origin_plot=config.lot.origin_plot,
    )
    started, _ = lot_store.start_lot(
        engine, details, line=config.line.name, recipe_name=recipe.name, recipe_hash=recipe_hash,
        at=datetime.now(UTC), by="config",
    )
    return started


def _code_taken(engine: Engine, code: str) -> bool:
    from sqlalchemy import select

    from grading.schema import lots

    with engine.connect() as conn:
        return conn.execute(select(lots.c.id).where(lots.c.code == code)).first() is not None


def _cartons_to_run(engine: Engine, lot: Lot, packer: CartonPacker) -> list[OpenCarton]:
    """The lot's open cartons (after a restart), plus a new one for each packing outlet without."""
    resumed = resume_open_cartons(engine, lot.id)
    have = {c.outlet for c in resumed}
    missing = [o for o in packer.packing if o.number not in have]
    return resumed + open_cartons(engine, lot.id, missing, at=datetime.now(UTC))
