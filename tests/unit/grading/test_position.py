"""Belt timing from stamped PLC replies, and frames placed on the trigger grid.

The PLC's true position is a straight line in time; replies arrive with random extra delay
(a busy PC). The estimate must follow the least-delayed reply, never the average.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.interfaces import PlcStatus
from grading.position import CUP_COUNTER_MODULUS, BeltTiming

SPEED = 12.0  # cups/s


def status(t_s: float, true_t_s: float, speed: float = SPEED, pitch: float | None = 1.0, start: float = 100.0) -> PlcStatus:
    """A reply whose position was sampled at ``true_t_s`` and which arrived at ``t_s``."""
    position = (start + speed * true_t_s) % CUP_COUNTER_MODULUS
    return PlcStatus(
        cup_counter=int(position), belt_speed_cups_per_s=speed, running=True, outlet_full=(),
        t_s=t_s, position_cups=position, camera_trigger_pitch_cups=pitch,
    )


def test_one_prompt_reply_among_late_ones_gives_the_exact_position() -> None:
    timing = BeltTiming()
    rng = random.Random(3)
    for i in range(50):
        true_t = i * 0.02
        delay = 0.0 if i == 17 else rng.uniform(0.002, 0.060)  # most replies held up
        timing.observe(status(true_t + delay, true_t))
    assert timing.position_at(1.0) == pytest.approx(100.0 + SPEED * 1.0, abs=1e-6)


def test_late_replies_only_ever_make_the_estimate_lag() -> None:
    timing = BeltTiming()
    for i in range(30):
        true_t = i * 0.02
        timing.observe(status(true_t + 0.005, true_t))  # every reply 5 ms late
    estimate = timing.position_at(0.6)
    assert estimate is not None
    assert 100.0 + SPEED * 0.6 - SPEED * 0.005 - 1e-6 <= estimate <= 100.0 + SPEED * 0.6


def test_counter_wrap_is_undone() -> None:
    timing = BeltTiming()
    start = CUP_COUNTER_MODULUS - 3.0
    for i in range(20):
        timing.observe(status(i * 0.05, i * 0.05, start=start))
    estimate = timing.position_at(1.0)
    assert estimate == pytest.approx(start + SPEED * 1.0, abs=1e-6)  # beyond 2**32, not back at 9


def test_speed_change_drops_the_old_reference() -> None:
    timing = BeltTiming()
    for i in range(10):
        timing.observe(status(i * 0.02, i * 0.02))
    position_0_2 = 100.0 + SPEED * 0.18
    # slows to 6 cups/s from t = 0.2 (continuous in position)
    for i in range(10, 20):
        t = i * 0.02
        p = position_0_2 + 6.0 * (t - 0.18)
        timing.observe(PlcStatus(int(p), 6.0, True, (), t, p, 1.0))
    assert timing.position_at(0.5) == pytest.approx(position_0_2 + 6.0 * (0.5 - 0.18), abs=1e-6)


def test_no_position_when_replies_stop() -> None:
    timing = BeltTiming(stale_after_s=0.5)
    assert timing.position_at(0.0) is None
    timing.observe(status(0.0, 0.0))
    assert timing.position_at(0.4) is not None
    assert timing.position_at(0.6) is None


def test_frames_snap_to_the_trigger_grid() -> None:
    timing = BeltTiming()
    for i in range(50):
        timing.observe(status(i * 0.02, i * 0.02, pitch=0.5))
    # exposure stamps off by up to +-15 ms (0.18 cup) still land on their own trigger
    rng = random.Random(5)
    placements = []
    for m in range(201, 230):
        true_t = (m * 0.5 - 100.0) / SPEED
        placements.append(timing.place_frame(true_t + rng.uniform(-0.015, 0.015)))
    assert [p.trigger for p in placements if p] == list(range(201, 230))
    assert all(p is not None and p.position_cups == p.trigger * 0.5 for p in placements)
    assert timing.frames_missing == 0 and timing.frames_unplaced == 0


def test_two_frames_on_one_trigger_are_not_placed_and_gaps_are_counted() -> None:
    timing = BeltTiming()
    timing.observe(status(0.0, 0.0))
    t_of = lambda m: (m - 100.0) / SPEED  # noqa: E731 - pitch 1 cup
    assert timing.place_frame(t_of(101)) is not None
    assert timing.place_frame(t_of(101) + 0.01) is None  # same trigger again
    assert timing.frames_unplaced == 1
    placed = timing.place_frame(t_of(104))
    assert placed is not None and placed.trigger == 104
    assert timing.frames_missing == 2  # 102 and 103 never arrived


def test_free_running_camera_uses_the_estimate_as_it_is() -> None:
    timing = BeltTiming()
    timing.observe(status(0.0, 0.0, pitch=None))
    placed = timing.place_frame(0.1)
    assert placed is not None and placed.trigger is None
    assert placed.position_cups == pytest.approx(100.0 + SPEED * 0.1)


@settings(max_examples=200, deadline=None)
@given(
    delays=st.lists(st.floats(0.0, 0.08), min_size=5, max_size=60),
    prompt=st.integers(0, 4),
)
def test_estimate_error_is_bounded_by_the_smallest_delay(delays: list[float], prompt: int) -> None:
    delays[prompt] = min(delays)
    timing = BeltTiming(window_s=5.0, stale_after_s=5.0)
    for i, delay in enumerate(delays):
        true_t = i * 0.02
        timing.observe(status(true_t + delay, true_t))
    t = len(delays) * 0.02
    estimate = timing.position_at(t)
    assert estimate is not None
    error_cups = (100.0 + SPEED * t) - estimate
    assert -1e-6 <= error_cups <= SPEED * min(delays) + 1e-6
