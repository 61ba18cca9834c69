"""The lane load cell as a pure function of belt position, against exact truth."""

from __future__ import annotations

import statistics

import pytest

from simulators.loadcell import BeltLoadCell, LaneLoadCell, displayed_g


def weights(cup: int) -> float:
    return 100.0 + 10.0 * (cup % 7)  # neighbours always differ


def cell(noise_g: float = 0.4, offset: int = -10, lane: int = 0, seed: int = 3) -> LaneLoadCell:
    return LaneLoadCell(weights, lane=lane, scale_offset_cups=offset, noise_g=noise_g, seed=seed)


def test_a_centred_cup_reads_its_weight_plus_its_own_error_stable() -> None:
    c = cell()
    # cup k is centred on a cell 10 cups upstream at position k - 10
    for cup in range(20, 30):
        centre = c.centred_position_cups(cup)
        assert centre == cup - 10 and c.cup_on_cell(centre) == cup
        plateau = c.plateau_weight_g(cup)
        assert plateau == pytest.approx(weights(cup) + c.weighing_error_g(cup))
        for d in (-0.3, -0.2, 0.0, 0.15, 0.3):
            assert c.load(centre + d) == (pytest.approx(plateau), True)


def test_between_two_cups_the_load_blends_them_and_is_dynamic() -> None:
    c = cell()
    centre = c.centred_position_cups(25)
    a, b = c.plateau_weight_g(25), c.plateau_weight_g(26)
    previous = a
    for d in (0.31, 0.4, 0.5, 0.6, 0.69):
        weight_g, stable = c.load(centre + d)
        assert not stable
        assert min(a, b) <= weight_g <= max(a, b)
        assert (weight_g - previous) * (b - a) >= 0  # moves monotonically toward the next cup
        previous = weight_g
    assert c.load(centre + 0.5)[0] == pytest.approx((a + b) / 2)
    assert c.load(centre + 0.7) == (pytest.approx(b), True)  # the next cup's plateau begins


def test_the_error_is_drawn_once_per_cup_from_the_noise() -> None:
    c = cell(noise_g=0.4)
    errors = [c.weighing_error_g(k) for k in range(3000)]
    assert errors[17] == c.weighing_error_g(17) == cell(noise_g=0.4).weighing_error_g(17)
    assert len(set(errors)) == len(errors)
    assert abs(statistics.fmean(errors)) < 0.05
    assert statistics.pstdev(errors) == pytest.approx(0.4, rel=0.1)
    other_lane = cell(noise_g=0.4, lane=1)
    assert [other_lane.weighing_error_g(k) for k in range(5)] != errors[:5]
    assert cell(noise_g=0.0).weighing_error_g(5) == 0.0


def test_the_indicator_shows_the_load_at_the_belt_position_to_its_resolution() -> None:
    c = cell(noise_g=0.4)
    position = [c.centred_position_cups(40) + 0.1]
    source = BeltLoadCell(c, lambda: position[0], resolution_g=0.1)
    weight_g, stable = source.sample(123.0)  # the scale simulator's own time is not used
    assert stable and weight_g == displayed_g(c.plateau_weight_g(40), 0.1)
    assert weight_g == round(weight_g, 1)
    position[0] += 0.5
    assert source.sample(0.0)[1] is False
    assert displayed_g(183.649, 0.1) == 183.6 and displayed_g(183.65001, 1.0) == 184.0
    assert displayed_g(-0.04, 0.01) == -0.04


def test_rejects_a_plateau_wider_than_half_a_cup() -> None:
    with pytest.raises(ValueError):
        LaneLoadCell(
            weights, lane=0, scale_offset_cups=-10, noise_g=0.4, seed=1, plateau_half_width_cups=0.5
        )
