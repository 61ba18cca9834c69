"""Scene renderer: the shared geometry convention and deterministic frames."""

from __future__ import annotations

import numpy as np
import pytest

from simulators.fruit import CupTruth, generate_cup
from simulators.scene import SceneGeometry, SceneRenderer
from simulators.settings import SimulatedCameraSettings, SimulationSettings

GEOMETRY = SceneGeometry(width_px=640, height_px=480, lanes=2, mm_per_px=0.5, cup_pitch_mm=110.0)


def test_geometry_convention() -> None:
    g = GEOMETRY
    assert g.pitch_px == pytest.approx(220.0)
    assert g.exit_x_px == pytest.approx(640 - 110.0)
    assert g.lane_band(1) == (240, 480)
    assert g.cup_centre_px(1, 10, 10.0) == pytest.approx((g.exit_x_px, 360.0))
    assert g.cup_centre_px(0, 10, 10.5)[0] == pytest.approx(640.0)  # half a pitch on: leaving


def test_visible_cups_cover_the_field() -> None:
    r = SceneRenderer(GEOMETRY, SimulatedCameraSettings(), seed=1)
    cups = r.visible_cups(10.0)
    ks = sorted({k for _, k in cups})
    # upstream cups (higher index) are further left: x = exit + (P - k) * pitch
    assert ks == [9, 10, 11, 12, 13]
    for lane, k in cups:
        x, _ = GEOMETRY.cup_centre_px(lane, k, 10.0)
        assert -GEOMETRY.pitch_px < x < GEOMETRY.width_px + GEOMETRY.pitch_px
    assert {lane for lane, _ in cups} == {0, 1}


def test_render_is_deterministic_and_fruit_spin() -> None:
    sim = SimulationSettings(seed=2, defect_rate=0.0, empty_cup_rate=0.0, double_fruit_rate=0.0)

    def cup(lane: int, k: int) -> CupTruth:
        return generate_cup("apple", sim, lane, k)

    cam = SimulatedCameraSettings(blur_px=0.7, noise_sigma=2.0, lighting_drift=0.05)
    a = SceneRenderer(GEOMETRY, cam, seed=4).render(3.0, cup)
    b = SceneRenderer(GEOMETRY, cam, seed=4).render(3.0, cup)
    assert a.shape == (480, 640, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    # a quarter pitch on, the same fruit (shifted back by a quarter pitch) shows another side:
    # pick a fruit with more than one skin colour so a turn is visible
    c = SceneRenderer(GEOMETRY, SimulatedCameraSettings(noise_sigma=0.0), seed=4)
    k = next(k for k in range(3, 40) if len({name for name, _ in cup(0, k).fruit[0].skin}) > 1)
    f0 = c.render(k - 1.0, cup)  # the fruit one pitch upstream of the exit, fully in view
    f1 = c.render(k - 0.75, cup)
    shift = int(round(0.25 * GEOMETRY.pitch_px))
    x, y = (int(v) for v in GEOMETRY.cup_centre_px(0, k, k - 1.0))
    r = int(0.6 * cup(0, k).fruit[0].equatorial_mm / 2 / GEOMETRY.mm_per_px)
    patch0 = f0[y - r : y + r, x - r : x + r].astype(int)
    patch1 = f1[y - r : y + r, x - r + shift : x + r + shift].astype(int)
    assert np.abs(patch0 - patch1).mean() > 1.0


def test_empty_cups_render_as_belt() -> None:
    r = SceneRenderer(GEOMETRY, SimulatedCameraSettings(noise_sigma=0.0), seed=1)
    frame = r.render(0.0, lambda lane, k: CupTruth(lane, k, ()))
    assert np.abs(frame.astype(int) - r.background().round().astype(int)).max() <= 1
