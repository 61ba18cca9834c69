"""The world's fruit cycle: choosing N, the cycle's fruit and the cache key."""

from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction

import pytest

from simulators.settings import SimulatedCameraSettings, SimulationSettings, WorldSettings
from simulators.world_cycle import (
    CycleFruit,
    RenderSpec,
    WorldConfigError,
    cup_truth_record,
    plan_cycle,
)


@pytest.mark.parametrize(
    ("speed", "fps", "requested", "pitch", "cycle", "frames"),
    [
        (8.0, 12.0, 120, Fraction(2, 3), 120, 180),  # the demo line
        (12.0, 12.0, 120, Fraction(1), 120, 120),
        (10.0, 12.0, 120, Fraction(5, 6), 120, 144),
        (7.3, 12.0, 120, Fraction(73, 120), 146, 240),  # N must be a multiple of 73
        (32.0, 12.0, 100, Fraction(8, 3), 104, 39),
        (8.0, 12.0, 17, Fraction(2, 3), 18, 27),
    ],
)
def test_the_cycle_is_the_smallest_exact_one(
    speed: float, fps: float, requested: int, pitch: Fraction, cycle: int, frames: int
) -> None:
    plan = plan_cycle(speed, fps, requested, 2048)
    assert (plan.pitch_cups, plan.cycle_cups, plan.frames) == (pitch, cycle, frames)
    assert plan.frames * plan.pitch_cups == plan.cycle_cups
    # trigger m shows frame m mod F, and its position repeats every N cups
    for m in (0, 1, frames - 1, frames, 5 * frames + 3):
        assert (m * pitch) % cycle == plan.frame_of_trigger(m) * pitch


def test_configs_that_cannot_cycle_exactly_are_refused_naming_the_field() -> None:
    with pytest.raises(WorldConfigError) as exc:
        plan_cycle(math.pi, 12.0, 120, 2048)
    assert exc.value.field == "line.cups_per_second"
    with pytest.raises(WorldConfigError) as exc:
        plan_cycle(8.0, 12.3456789, 120, 2048)
    assert exc.value.field == "camera.geometry.fps"
    with pytest.raises(WorldConfigError, match="register 5"):
        plan_cycle(40.0, 1.0, 120, 2048)  # a trigger every 40 cups does not fit the register
    # 8.11 / 12 = 811/1200 cups: an exact cycle is 811 cups and 1200 frames
    assert plan_cycle(8.11, 12.0, 120, 2048).frames == 1200
    with pytest.raises(WorldConfigError, match="multiple of 811"):
        plan_cycle(8.11, 12.0, 120, 1000)


def spec(**changes: object) -> RenderSpec:
    base = RenderSpec(
        product="apple",
        lanes=2,
        width_px=320,
        height_px=128,
        mm_per_px=1.6,
        cup_pitch_mm=110.0,
        camera=SimulatedCameraSettings(),
        simulation=SimulationSettings(seed=4),
        pitch_numerator=2,
        pitch_denominator=3,
        cycle_cups=16,
        frames=24,
        jpeg_quality=92,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_cup_k_carries_cup_k_mod_n_and_its_spin_is_continuous_across_the_seam() -> None:
    fruit = CycleFruit(spec())
    n = 16
    for lane in range(2):
        for k in (0, 5, 15):
            base = fruit.base_cup(lane, k)
            for lap in (-1, 1, 2):
                shifted = fruit.cup(lane, k + lap * n)
                assert [f.weight_g for f in shifted.fruit] == [f.weight_g for f in base.fruit]
                for f0, f1 in zip(base.fruit, shifted.fruit, strict=True):
                    # the render spins a fruit by phase + 2 pi rev * position: drawn one lap on at
                    # position p + lap N (the replay's p), it turns as if the belt went on
                    p = 3.25
                    continuous = f0.spin_phase_rad + 2 * math.pi * f0.spin_rev_per_cup * p
                    replay = f1.spin_phase_rad + 2 * math.pi * f1.spin_rev_per_cup * (p + lap * n)
                    assert math.cos(continuous - replay) == pytest.approx(1.0)


def test_truth_record_carries_what_a_benchmark_scores() -> None:
    fruit = CycleFruit(spec())
    cups = [fruit.base_cup(0, k) for k in range(16)]
    records = [cup_truth_record(c) for c in cups]
    full = next(r for r in records if r["fruit_count"] == 1)
    assert set(full) == {"fruit_count", "weight_g", "fruit"}
    assert set(full["fruit"][0]) == {
        "weight_g",
        "diameter_major_mm",
        "diameter_minor_mm",
        "volume_cm3",
        "colour_fractions",
        "defect_count",
        "defect_area_cm2",
        "defects",
    }
    assert full["weight_g"] == pytest.approx(full["fruit"][0]["weight_g"])


def test_cache_key_follows_what_changes_the_pixels_only() -> None:
    key = spec().cache_key()
    assert spec().cache_key() == key
    assert spec(jpeg_quality=90).cache_key() != key
    assert spec(simulation=SimulationSettings(seed=5)).cache_key() != key
    assert spec(camera=SimulatedCameraSettings(noise_sigma=1.0)).cache_key() != key
    assert spec(width_px=321).cache_key() != key
    # the world's own knobs (latency, indicator, ports) leave the frames as they are
    world = WorldSettings(camera_latency_s=0.02, scale_resolution_g=0.01)
    assert spec(simulation=SimulationSettings(seed=4, world=world)).cache_key() == key
