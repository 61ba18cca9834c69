"""Cup tracker: association by encoder and by nearest centroid, once-only emission, fusion."""

from __future__ import annotations

import math

import pytest

from vision.pipeline import DefectView, FruitView
from vision.tracking import CupTracker, fuse, fuse_defects, whole_turn_colour

PITCH = 200.0
EXIT = 1000.0  # width 1100


def _view(lane: int, x: float, diameter: float = 70.0, flags: frozenset[str] = frozenset(), **kw: object) -> FruitView:
    base: dict[str, object] = dict(
        lane=lane, x_px=x, y_px=50.0 + 100 * lane, diameter_major_mm=diameter, diameter_minor_mm=diameter - 5,
        area_cm2=30.0, colour_fractions={"red": 0.5}, mean_lab=(50.0, 20.0, 20.0), defect_count=0,
        defect_area_cm2=0.0, elongation=diameter / (diameter - 5), roundness=0.9, convexity=0.99, flags=flags,
        equatorial_mm=diameter, polar_mm=diameter - 5,
    )
    base.update(kw)
    return FruitView(**base)  # type: ignore[arg-type]


def _x(cup: int, position: float) -> float:
    return EXIT + (position - cup) * PITCH


def test_encoder_mode_emits_each_cup_once_after_it_leaves() -> None:
    tracker = CupTracker(lanes=2, pitch_px=PITCH, exit_x_px=EXIT)
    emitted = []
    for step in range(0, 41):
        p = step * 0.25
        views = []
        for k in range(0, 12):
            x = _x(k, p)
            if -50 < x < 1100 and k != 5:  # cup 5 is empty
                edge = frozenset({"edge"}) if x < 40 or x > 1060 else frozenset()
                views.append(_view(0, x, diameter=60.0 + k if not edge else 10.0, flags=edge))
        emitted += tracker.update(views, p)
    emitted += tracker.flush()
    cups = [f.cup_index for f in emitted]
    assert sorted(cups) == sorted(set(cups))  # exactly once
    assert 5 not in cups
    assert set(range(0, 11)) - {5} <= set(cups)
    for f in emitted:
        if "edge" not in f.flags:
            assert f.diameter_major_mm == pytest.approx(60.0 + f.cup_index)  # partial views excluded


def test_cup_not_emitted_before_it_leaves() -> None:
    tracker = CupTracker(lanes=1, pitch_px=PITCH, exit_x_px=EXIT)
    assert tracker.update([_view(0, _x(3, 3.4))], 3.4) == []
    out = tracker.update([], 3.6)
    assert [f.cup_index for f in out] == [3]


def test_two_views_in_one_cup_flag_double() -> None:
    tracker = CupTracker(lanes=1, pitch_px=PITCH, exit_x_px=EXIT)
    tracker.update([_view(0, _x(2, 1.5) - 40), _view(0, _x(2, 1.5) + 40)], 1.5)
    (fused,) = tracker.update([], 2.6)
    assert "double" in fused.flags and fused.cup_index == 2


def test_free_running_mode_follows_fruit_by_nearest_centroid() -> None:
    tracker = CupTracker(lanes=1, pitch_px=PITCH, exit_x_px=EXIT)
    emitted = []
    for step in range(0, 40):
        p = step * 0.3
        views = [_view(0, _x(k, p), diameter=60.0 + k) for k in range(0, 12) if -50 < _x(k, p) < 1090]
        emitted += tracker.update(views, None)
    emitted += tracker.flush()
    sizes = sorted(round(f.diameter_major_mm) for f in emitted)
    assert sizes == sorted(set(sizes))  # one record per fruit
    assert {60 + k for k in range(0, 11)} <= set(sizes)


def test_defects_are_counted_once_across_views() -> None:
    step = 0.6
    views = []
    for i in range(6):
        frame = []
        for theta, phi0, area in ((1.0, -1.2, 20.0), (2.0, 0.3, 50.0)):
            phi = phi0 + i * step
            if abs(phi) < 1.2:
                frame.append(DefectView(theta, phi, area, partial=abs(phi) > 1.0))
        views.append(frame)
    areas = sorted(d.area_mm2 for d in fuse_defects(views))
    assert areas == pytest.approx([20.0, 50.0])


def test_colour_is_averaged_over_whole_turns() -> None:
    # a fruit half red, half yellow, seen every 0.25 cups while it turns once per 1.8 cups,
    # over 1.4 turns: the plain mean over-weights the side seen twice
    period = 1.8
    times = [0.25 * i for i in range(11)]

    def red_share(t: float) -> float:
        return 0.5 + 0.45 * math.cos(2 * math.pi * t / period)

    views = [{"red": red_share(t), "yellow": 1 - red_share(t)} for t in times]
    plain = sum(v["red"] for v in views) / len(views)
    fused = whole_turn_colour(times, views, ["red", "yellow"])
    assert abs(plain - 0.5) > 0.03  # the bias being corrected is real
    assert fused["red"] == pytest.approx(0.5, abs=0.01)
    assert fused["red"] + fused["yellow"] == pytest.approx(1.0)


def test_uniform_colour_keeps_the_plain_mean() -> None:
    views = [{"red": 0.8, "green": 0.2}] * 8
    assert whole_turn_colour([float(i) for i in range(8)], views, ["green", "red"]) == pytest.approx(
        {"green": 0.2, "red": 0.8}
    )


def test_fused_quality_score_is_the_mean_of_the_scored_views() -> None:
    frames = [[_view(0, 100.0 + 10 * i, quality_score=score)] for i, score in enumerate((None, 0.2, 0.4, None))]
    fused = fuse(0, 7, frames)
    assert fused is not None and fused.quality_score == pytest.approx(0.3)
    unscored = fuse(0, 8, [[_view(0, 100.0)], [_view(0, 110.0)]])
    assert unscored is not None and unscored.quality_score is None
