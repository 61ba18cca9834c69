"""Ground-truth generator: determinism, rates and the exactness of the integrated truth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulators.fruit import PRODUCTS, FruitTruth, area_element, generate_cup, paint_surface
from simulators.settings import SimulationSettings


def test_cup_is_deterministic_in_seed_lane_and_index() -> None:
    sim = SimulationSettings(seed=5, defect_rate=0.5)
    a = generate_cup("apple", sim, 2, 17)
    b = generate_cup("apple", sim, 2, 17)
    assert a == b
    assert generate_cup("apple", sim, 3, 17) != a
    assert generate_cup("apple", SimulationSettings(seed=6, defect_rate=0.5), 2, 17) != a


@pytest.mark.parametrize("product", PRODUCTS)
def test_rates_and_sizes_follow_settings(product: str) -> None:
    sim = SimulationSettings(seed=3, empty_cup_rate=0.1, double_fruit_rate=0.1, defect_rate=0.4)
    cups = [generate_cup(product, sim, 0, k) for k in range(200)]
    empty = sum(1 for c in cups if not c.fruit)
    double = sum(1 for c in cups if len(c.fruit) == 2)
    assert 8 <= empty <= 35 and 8 <= double <= 35
    assert all(c.weight_g == 0.0 for c in cups if not c.fruit)
    for c in cups:
        assert c.weight_g == pytest.approx(sum(f.weight_g for f in c.fruit))
        for f in c.fruit:
            assert f.diameter_major_mm >= f.diameter_minor_mm > 0
            assert sum(f.colour_fractions.values()) <= 1.0 + 1e-9


def test_round_defect_area_matches_archimedes_on_a_sphere() -> None:
    # on a sphere the surface within 3-D distance r of a surface point has area pi r^2 exactly
    sim = SimulationSettings(seed=1, defect_rate=1.0, empty_cup_rate=0.0, double_fruit_rate=0.0)
    checked = 0
    for k in range(60):
        for f in generate_cup("apple", sim, 0, k).fruit:
            if abs(f.polar_mm / f.equatorial_mm - 1.0) > 0.02:
                continue
            for d in f.defects:
                if d.kind in ("bruise", "rot", "dark_spot"):
                    assert d.area_mm2 == pytest.approx(math.pi * d.radius_mm**2, rel=0.03)
                    checked += 1
    assert checked > 0


def test_colour_truth_equals_independent_monte_carlo() -> None:
    sim = SimulationSettings(seed=9, defect_rate=1.0, empty_cup_rate=0.0, double_fruit_rate=0.0)
    fruit: FruitTruth = generate_cup("apple", sim, 1, 4).fruit[0]
    rng = np.random.default_rng(0)
    # sample theta by inverse CDF of the area element (numerically) and phi uniformly
    grid = np.linspace(fruit.cavity_rad, np.pi - fruit.cavity_rad, 20001)
    cdf = np.cumsum(area_element(fruit.equatorial_mm, fruit.polar_mm, grid))
    theta = np.interp(rng.uniform(0, cdf[-1], 200_000), cdf, grid)
    phi = rng.uniform(0, 2 * np.pi, theta.size)
    _, label = paint_surface(fruit, theta, phi)
    for i, (name, _) in enumerate(fruit.skin):
        del i
        share = np.mean(np.isin(label, [j for j, (n, _) in enumerate(fruit.skin) if n == name]))
        assert share == pytest.approx(fruit.colour_fractions[name], abs=0.006)
