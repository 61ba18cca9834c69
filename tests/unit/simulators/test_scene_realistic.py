"""The realistic scene (opt-in) and the plain scene it must leave alone."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest

from simulators.fruit import (
    _CLASS_BOXES,
    CupTruth,
    _skin_label,
    generate_cup,
    generate_realistic_cup,
    paint_surface,
)
from simulators.scene import RealisticSceneRenderer, SceneGeometry, SceneRenderer, scene_renderer
from simulators.settings import SimulatedCameraSettings, SimulationSettings
from vision.colour import CANONICAL_CLASSES
from vision.pipeline import FramePipeline, settings_for_product


def test_the_plain_scene_renders_what_it_rendered_before_the_realistic_one_existed() -> None:
    """Frames hashed on the tree before the realistic scene was added (the simulated line
    prerenders these frames; a change to them must be deliberate, and this hash updated)."""
    g = SceneGeometry(width_px=640, height_px=320, lanes=2, mm_per_px=0.8, cup_pitch_mm=110.0)
    sim = SimulationSettings(seed=4, defect_rate=0.5)
    renderer = SceneRenderer(g, SimulatedCameraSettings(blur_px=0.5, noise_sigma=2.0, lighting_drift=0.05), 4)
    digest = hashlib.sha256()
    for position in (3.0, 3.37, 8.5):
        digest.update(renderer.render(position, lambda lane, k: generate_cup("apple", sim, lane, k)).tobytes())
    assert digest.hexdigest() == "923ea1583f35922fcb08a221aa85a65d6feba70680380c506e13636b20fde5d2"
    assert type(scene_renderer("plain", g, SimulatedCameraSettings(), 1)) is SceneRenderer


def test_the_simulators_class_boxes_are_the_recipes() -> None:
    for product, classes in CANONICAL_CLASSES.items():
        assert {c.name: (c.lab_lo, c.lab_hi) for c in classes} == _CLASS_BOXES[product]


def test_realistic_skin_varies_but_stays_in_its_class_box_and_bruises_overlap_the_skin() -> None:
    sim = SimulationSettings(seed=5, defect_rate=1.0)
    theta, phi = np.meshgrid(np.linspace(0.3, 2.8, 90), np.linspace(0, 2 * np.pi, 180, endpoint=False), indexing="ij")
    spreads, bruises_in_class = [], 0
    for k in range(12):
        fruit = generate_realistic_cup("apple", sim, 0, k).fruit[0]
        lab, label = paint_surface(fruit, theta, phi)
        for index, (name, _) in enumerate(fruit.skin):
            skin = lab[label == index]
            if skin.size == 0:
                continue
            low, high = _CLASS_BOXES["apple"][name]
            assert np.all(skin >= np.array(low) - 1e-4) and np.all(skin < np.array(high))
            spreads.append(float(skin[:, 0].std()))
        for d in fruit.defects:
            if d.kind == "bruise" and d.lab is not None:
                name, skin_lab = fruit.skin[int(_skin_label(fruit, np.array([d.theta]), np.array([d.phi]))[0])]
                low, high = _CLASS_BOXES["apple"][name]
                assert d.lab[0] < skin_lab[0] - 7.9  # darker than the skin beneath
                bruises_in_class += all(lo <= v < hi for v, lo, hi in zip(d.lab, low, high, strict=True))
    assert np.median(spreads) > 2.0  # mottled, not flat
    assert bruises_in_class >= 1  # some bruises are in the skin's own class, as on real fruit
    plain = generate_cup("apple", sim, 0, 3).fruit[0]
    assert plain.mottle == () and all(d.lab is None for d in plain.defects)


@pytest.mark.parametrize("lane", [0, 1, 3])
def test_perspective_is_undone_for_fruit_across_the_field(lane: int) -> None:
    """One fruit, noise-free, at three places across the field of a camera 1 m up: the raw
    silhouette is magnified (more toward the edges); the corrected size is the fruit's."""
    geometry = SceneGeometry(width_px=1280, height_px=4 * 175, lanes=4, mm_per_px=0.8, cup_pitch_mm=110.0)
    renderer = RealisticSceneRenderer(geometry, SimulatedCameraSettings(noise_sigma=0.0), 1)
    sim = SimulationSettings(seed=2, defect_rate=0.0, empty_cup_rate=0.0, double_fruit_rate=0.0)
    fruit = dataclasses.replace(generate_realistic_cup("apple", sim, 0, 1).fruit[0], tilt_rad=0.05, stalk_mm=0.0)
    image = renderer.render(1.4, lambda ln, k: CupTruth(ln, k, (fruit,) if (ln, k) == (lane, 5) else ()))
    plain = settings_for_product("apple", 0.8, 4)
    seen = [v for v in FramePipeline(plain).measure(image) if v.lane == lane][0]
    corrected = [
        v for v in FramePipeline(dataclasses.replace(plain, camera_height_mm=1000.0)).measure(image) if v.lane == lane
    ][0]
    assert seen.equatorial_mm > fruit.equatorial_mm + 2.0  # the view does magnify (35 mm nearer the lens: 3.6 %)
    assert corrected.equatorial_mm == pytest.approx(fruit.equatorial_mm, abs=0.4)
    assert corrected.polar_mm == pytest.approx(fruit.polar_mm, abs=0.4)
    cx, _ = geometry.cup_centre_px(lane, 5, 1.4)
    assert corrected.x_px == pytest.approx(cx, abs=1.0)  # brought back over its cup
