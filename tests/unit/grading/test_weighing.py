"""The weight ledger: readings matched to cups by the encoder's timing, never by arrival order."""

from __future__ import annotations

import random

import pytest

from drivers.interfaces import PlcStatus, WeightReading
from grading.position import BeltTiming
from grading.weighing import CupWeight, WeightLedger

SPEED = 10.0  # cups/s
OFFSET = -10  # the load cell is 10 cups upstream of the camera exit


def timing_at(t_end_s: float) -> BeltTiming:
    """A belt at SPEED from position 0 at t = 0, observed every 20 ms up to ``t_end_s``."""
    timing = BeltTiming(window_s=100.0, stale_after_s=100.0)
    for i in range(int(t_end_s / 0.02) + 1):
        t = i * 0.02
        timing.observe(PlcStatus(int(SPEED * t), SPEED, True, (), t, SPEED * t, None))
    return timing


def truth_g(cup: int) -> float:
    return 150.0 + 7.0 * (cup % 11)


def stream(t0_s: float, t1_s: float, rate_hz: float, plateau_cups: float = 0.3) -> list[WeightReading]:
    """What a streaming indicator sends while cups cross its load cell."""
    readings = []
    n = int((t1_s - t0_s) * rate_hz)
    for i in range(n):
        t = t0_s + i / rate_hz
        x = SPEED * t - OFFSET  # the cup index (fractional) under the load cell
        k = round(x)
        if abs(x - k) <= plateau_cups:
            readings.append(WeightReading(truth_g(k), True, t))
        else:
            readings.append(WeightReading(0.5 * (truth_g(k) + truth_g(k + 1)), False, t))
    return readings


def test_each_cup_gets_its_own_weight_whenever_the_readings_are_taken() -> None:
    timing = timing_at(3.0)
    ledger = WeightLedger(1, OFFSET, window_cups=0.25)
    readings = stream(0.0, 3.0, 100.0)
    # taken in uneven batches, long after they arrived (a stalled loop): no difference
    rng = random.Random(1)
    i = 0
    while i < len(readings):
        n = rng.randint(1, 40)
        ledger.add(0, readings[i : i + n], timing, True, 3.0)
        i += n
    for cup in range(12, 38):
        weight = ledger.take(0, cup)
        assert weight.weight_g == pytest.approx(truth_g(cup)), cup
        assert weight.cause is None and weight.readings >= 4


def test_a_cup_without_stable_readings_is_unstable_not_its_neighbours() -> None:
    timing = timing_at(2.0)
    ledger = WeightLedger(1, OFFSET)
    readings = [r if round(SPEED * r.t_s - OFFSET) != 20 else WeightReading(r.weight_g, False, r.t_s) for r in stream(0, 2, 100)]
    ledger.add(0, readings, timing, True, 2.0)
    assert ledger.take(0, 20).cause == "unstable"
    assert ledger.take(0, 21).weight_g == pytest.approx(truth_g(21))


def test_stable_only_off_centre_is_out_of_window() -> None:
    timing = timing_at(2.0)
    ledger = WeightLedger(1, OFFSET, window_cups=0.1)
    # plateau 0.3 cup but readings only at 0.2 cup off centre for cup 15
    t = (15 + OFFSET + 0.2) / SPEED
    ledger.add(0, [WeightReading(truth_g(15), True, t)], timing, True, 2.0)
    assert ledger.take(0, 15).cause == "out_of_window"


def test_no_readings_while_down_is_device_down_and_while_up_is_timeout() -> None:
    timing = timing_at(4.0)
    ledger = WeightLedger(1, OFFSET)
    # drains every 20 ms; the indicator is down from t = 1.0 to 2.0, then up but silent
    for i in range(200):
        t = i * 0.02
        ledger.add(0, [], timing, not (1.0 <= t < 2.0), t)
    assert ledger.take(0, round(1.5 * SPEED - OFFSET)).cause == "device_down"
    assert ledger.take(0, round(3.0 * SPEED - OFFSET)).cause == "timeout"


def test_readings_without_belt_timing_are_counted_not_guessed() -> None:
    ledger = WeightLedger(1, OFFSET)
    ledger.add(0, [WeightReading(100.0, True, 0.5)], BeltTiming(), True, 0.5)
    assert ledger.readings_unplaced == 1
    assert ledger.take(0, 15).weight_g is None


def test_window_must_stay_inside_half_a_cup() -> None:
    with pytest.raises(ValueError):
        WeightLedger(1, OFFSET, window_cups=0.5)


def test_backlogged_readings_weigh_nothing() -> None:
    """Readings that came in one read after the reader thread was held up: their stamps are
    late by an unknown amount, so they could be the previous cup's plateau."""
    timing = timing_at(2.0)
    ledger = WeightLedger(1, OFFSET)
    late = [WeightReading(r.weight_g, r.stable, r.t_s + 0.04, backlogged=True) for r in stream(0, 2, 100)]
    ledger.add(0, late, timing, True, 2.0)
    assert ledger.take(0, 20) == CupWeight(None, "reader_behind", 0)


def test_a_cup_whose_stable_readings_disagree_gets_no_weight() -> None:
    timing = timing_at(2.0)
    ledger = WeightLedger(1, OFFSET, consistency_g=1.0)
    readings = stream(0, 2, 100)
    t_centre = (20 + OFFSET) / SPEED
    # the previous cup's plateau, stamped 40 ms late into cup 20's window, yet not flagged
    readings.append(WeightReading(truth_g(19), True, t_centre - 0.01))
    ledger.add(0, sorted(readings, key=lambda r: r.t_s), timing, True, 2.0)
    assert ledger.take(0, 20).cause == "inconsistent"
    assert ledger.take(0, 21).weight_g == pytest.approx(truth_g(21))
