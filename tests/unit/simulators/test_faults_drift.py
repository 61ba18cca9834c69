"""Simulated device faults for the drift alarm: a darkening lane, a drifting load cell, the world's
faulted camera cycle and the ``gradeline sim line`` options."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from api.cli.sim_line import with_fault_options
from api.config import parse_config
from simulators.fruit import CupTruth, generate_cup
from simulators.loadcell import LaneLoadCell
from simulators.scene import SceneGeometry, SceneRenderer
from simulators.settings import (
    CameraLaneFault,
    ScaleDriftFault,
    SimulatedCameraSettings,
    SimulatedFaults,
    SimulationSettings,
)
from simulators.world_cycle import WorldConfigError, camera_fault_spec, cycle_renderer
from tests.unit.simulators.test_world_cycle import spec

GEOMETRY = SceneGeometry(width_px=640, height_px=480, lanes=2, mm_per_px=0.5, cup_pitch_mm=110.0)
SIM = SimulationSettings(seed=2, empty_cup_rate=0.0, double_fruit_rate=0.0)


def cup(lane: int, k: int) -> CupTruth:
    return generate_cup("apple", SIM, lane, k)


def test_a_darkened_lane_is_darker_from_its_cup_on_and_only_there() -> None:
    camera = SimulatedCameraSettings(noise_sigma=0.0)
    clean = SceneRenderer(GEOMETRY, camera, seed=4)
    faulty = SceneRenderer(GEOMETRY, camera, seed=4, faults=[CameraLaneFault(lane=1, from_cup=10, gain=0.5)])
    y0, y1 = GEOMETRY.lane_band(1)
    before_clean, before_faulty = clean.render(9.5, cup), faulty.render(9.5, cup)
    assert np.array_equal(before_clean, before_faulty)  # not on yet
    on_clean, on_faulty = clean.render(10.0, cup).astype(float), faulty.render(10.0, cup).astype(float)
    assert np.array_equal(on_clean[:y0], on_faulty[:y0])  # lane 0 untouched
    ratio = on_faulty[y0:y1].mean() / on_clean[y0:y1].mean()
    assert ratio == pytest.approx(0.5, abs=0.02)


def test_a_drifting_load_cell_gains_its_offset_from_its_cup_on() -> None:
    fault = ScaleDriftFault(lane=0, from_cup=100, drift_g_per_100_cups=4.0, max_offset_g=10.0)
    faults = SimulatedFaults(scale_drift=[fault])
    cell = LaneLoadCell(
        lambda k: 200.0, lane=0, scale_offset_cups=0, noise_g=0.0, seed=1, fault_offset_g=lambda k: faults.scale_offset_g(0, k)
    )
    assert cell.plateau_weight_g(99) == 200.0
    assert cell.plateau_weight_g(150) == pytest.approx(202.0)
    assert cell.plateau_weight_g(10_000) == pytest.approx(210.0)  # capped at max_offset_g
    assert faults.scale_offset_g(1, 150) == 0.0  # another lane


def test_the_world_renders_a_faulted_cycle_and_keeps_the_clean_cache_key() -> None:
    clean = spec()
    fault = CameraLaneFault(lane=1, from_cup=50, gain=0.6)
    with_fault = spec(simulation=SimulationSettings(seed=4, faults=SimulatedFaults(camera_darken=[fault])))
    # The clean cycle's pixels do not change with a fault configured: same cache.
    assert with_fault.cache_key() == clean.cache_key()
    got = camera_fault_spec(with_fault)
    assert got is not None
    faulted, from_cup = got
    assert from_cup == 50 and faulted.darkened_lanes == ((1, 0.6),)
    assert faulted.cache_key() != clean.cache_key()
    renderer, _ = cycle_renderer(faulted)
    assert [(f.lane, f.from_cup, f.gain) for f in renderer.faults] == [(1, 0, 0.6)]
    assert camera_fault_spec(clean) is None


def test_the_world_refuses_camera_faults_it_cannot_serve() -> None:
    two_starts = SimulatedFaults(camera_darken=[CameraLaneFault(lane=0, from_cup=1), CameraLaneFault(lane=1, from_cup=2)])
    with pytest.raises(WorldConfigError, match="simulation.faults.camera_darken"):
        camera_fault_spec(spec(simulation=SimulationSettings(faults=two_starts)))
    no_lane = SimulatedFaults(camera_darken=[CameraLaneFault(lane=5)])
    with pytest.raises(WorldConfigError, match=r"camera_darken\[0\].lane"):
        camera_fault_spec(replace(spec(), simulation=SimulationSettings(faults=no_lane)))


def test_sim_line_fault_options() -> None:
    config = parse_config({"recipe": "apple"})
    assert with_fault_options(config, [], []) is config
    got = with_fault_options(config, ["2:500:0.5"], ["1", "3:100:-1.5"]).simulation.faults
    assert got.camera_darken == [CameraLaneFault(lane=2, from_cup=500, gain=0.5)]
    assert got.scale_drift == [
        ScaleDriftFault(lane=1),
        ScaleDriftFault(lane=3, from_cup=100, drift_g_per_100_cups=-1.5),
    ]
    with pytest.raises(ValueError, match="--darken-lane"):
        with_fault_options(config, ["x"], [])
    with pytest.raises(ValueError, match="gain"):
        with_fault_options(config, ["1:0:3"], [])


def test_the_world_serves_the_faulted_frames_from_the_faults_trigger_on() -> None:
    from simulators.world import trigger_frames

    clean, faulted = [b"c0", b"c1", b"c2"], [b"f0", b"f1", b"f2"]
    frame = trigger_frames(clean, faulted, fault_from_trigger=4)
    assert [frame(m) for m in range(7)] == [(0, b"c0"), (1, b"c1"), (2, b"c2"), (0, b"c0"), (1, b"f1"), (2, b"f2"), (0, b"f0")]
    assert [trigger_frames(clean)(m) for m in (3, 4)] == [(0, b"c0"), (1, b"c1")]


def test_the_world_refuses_a_product_it_cannot_grow() -> None:
    from api.world import world_plan

    with pytest.raises(WorldConfigError, match="recipe: the simulated world grows apple"):
        world_plan(parse_config({"recipe": "kiwifruit"}))
