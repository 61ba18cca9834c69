"""Graded-fruit records of a simulated line, for the drift alarm's tests.

The records come out of the real chain, as on the line: the simulator's scene (the realistic
one: perspective, vignetting, uneven light across lanes, a highlight per fruit) renders each
camera trigger, ``vision.pipeline.FramePipeline`` measures it, ``vision.tracking.CupTracker``
fuses the views of each cup, the lane's simulated load cell (``simulators.loadcell``, with its
per-cup error and any ``ScaleDriftFault``) gives the weight, and the grader grades. Faults
come from ``simulators.settings.SimulatedFaults``: the truth of when a fault starts is the
simulator's config, never read back from the records.

Rendering costs some 0.1 s a frame, so a long clean run is the world's own trick: the fruit
repeat every ``cycle_cups`` cups (as ``gradeline sim line`` does, ``simulators.world_cycle``),
so one rendered cycle gives the measurements of every lap; each lap's weights still get their
own weighing errors.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from grading.grader import Grader
from grading.measurement import FruitMeasurement
from grading.recipe import load_recipe
from grading.records import FruitRecord
from simulators.fruit import CupTruth, generate_realistic_cup
from simulators.loadcell import LaneLoadCell
from simulators.scene import RealisticSceneRenderer, SceneGeometry
from simulators.settings import SimulatedCameraSettings, SimulationSettings
from vision.pipeline import FramePipeline, settings_for_product
from vision.tracking import CupTracker, FusedFruit  # noqa: F401  (FusedFruit: MeasuredCup.fused)

START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
PRODUCT = "apple"
MM_PER_PX = 0.6
WIDTH_PX = 640
PITCH_MM = 110.0
BAND_MM = 125.0 * 1.12  # room per lane for the largest apple under perspective (as vision.bench)
CUPS_PER_SECOND = 10.0
FPS = 12.0  # the demo line's trigger rate: a frame every 10/12 cups


@dataclass(frozen=True)
class MeasuredCup:
    lane: int
    cup_index: int
    fused: FusedFruit
    emitted_at_cups: float  # belt position of the frame after which the tracker handed it over


def measure_cups(lanes: int, cups: int, simulation: SimulationSettings, seed: int = 5) -> list[MeasuredCup]:
    """Run the scene and the vision chain over cups ``0 .. cups-1`` of each lane, in the order the
    tracker hands the fruit over (as the runtime would grade them)."""
    band_px = int(math.ceil(BAND_MM / MM_PER_PX))
    geometry = SceneGeometry(WIDTH_PX, band_px * lanes, lanes, MM_PER_PX, PITCH_MM)
    camera = SimulatedCameraSettings(blur_px=0.7, noise_sigma=2.0, lighting_drift=0.05)
    renderer = RealisticSceneRenderer(geometry, camera, seed, simulation.faults.camera_darken)
    settings = dataclasses.replace(
        settings_for_product(PRODUCT, MM_PER_PX, lanes), camera_height_mm=renderer.optics.camera_height_mm
    )
    truth: dict[tuple[int, int], CupTruth] = {}

    def cup(lane: int, k: int) -> CupTruth:
        if not 0 <= k < cups:
            return CupTruth(lane, k, ())
        got = truth.get((lane, k))
        if got is None:
            got = truth[(lane, k)] = generate_realistic_cup(PRODUCT, simulation, lane, k)
        return got

    pipeline = FramePipeline(settings)
    tracker = CupTracker(lanes, geometry.pitch_px, geometry.exit_x_px)
    pitch_cups = CUPS_PER_SECOND / FPS
    first = -math.ceil(geometry.exit_x_px / geometry.pitch_px) - 2
    out: list[MeasuredCup] = []
    position = float(first)
    for i in range(int((cups + 2 - first) / pitch_cups) + 1):
        position = first + i * pitch_cups
        for f in tracker.update(pipeline.measure(renderer.render(position, cup)), position):
            out.append(MeasuredCup(f.lane, f.cup_index, f, position))
    out += [MeasuredCup(f.lane, f.cup_index, f, position) for f in tracker.flush()]
    return [m for m in out if 0 <= m.cup_index < cups]


def true_weights(lanes: int, cups: int, simulation: SimulationSettings) -> dict[tuple[int, int], float]:
    return {
        (lane, k): generate_realistic_cup(PRODUCT, simulation, lane, k).weight_g
        for lane in range(lanes)
        for k in range(cups)
    }


def records(
    measured: list[MeasuredCup],
    simulation: SimulationSettings,
    lanes: int,
    cycle_cups: int,
    laps: int = 1,
    lot_id: int = 1,
    scale_noise_g: float = 0.4,
) -> Iterator[FruitRecord]:
    """Grade the measured cups, ``laps`` times over (cup ``k`` of lap ``n`` is cup ``n * cycle_cups
    + k``, graded at ``k / CUPS_PER_SECOND`` seconds after the start, as a fake clock)."""
    grader = Grader(load_recipe(PRODUCT))
    weights = true_weights(lanes, cycle_cups, simulation)
    cells = [
        LaneLoadCell(
            lambda k, lane=lane: weights[(lane, k % cycle_cups)],
            lane=lane,
            scale_offset_cups=0,
            noise_g=scale_noise_g,
            seed=simulation.seed,
            fault_offset_g=lambda k, lane=lane: simulation.faults.scale_offset_g(lane, k),
        )
        for lane in range(lanes)
    ]
    for lap in range(laps):
        for item in measured:
            cup_index = lap * cycle_cups + item.cup_index
            f = item.fused
            measurement = FruitMeasurement(
                weight_g=cells[item.lane].plateau_weight_g(cup_index),
                diameter_major_mm=f.diameter_major_mm,
                diameter_minor_mm=f.diameter_minor_mm,
                area_cm2=f.area_cm2,
                colour_fractions=f.colour_fractions,
                defect_count=f.defect_count,
                defect_area_cm2=f.defect_area_cm2,
                elongation=f.elongation,
                volume_cm3=f.volume_cm3,
                quality_score=f.quality_score,
                flags=f.flags,
            )
            yield FruitRecord(
                uid=f"{item.lane}-{cup_index}",
                lot_id=lot_id,
                lane=item.lane,
                cup_index=cup_index,
                graded_at=START + timedelta(seconds=cup_index / CUPS_PER_SECOND),
                measurement=measurement,
                views=f.views,
                grade=grader.grade(measurement),
                outlet=0,
                late=False,
                decision_latency_ms=0.0,
                frame_position_cups=float(cup_index),
            )
