"""PlcModel and SimulatedPlc against exact ground truth, on a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from drivers.interfaces import OutletDecision, Plc
from simulators.plc import DropEvent, PlcModel, SimulatedPlc, ring_epoch, ring_word

OFFSETS = {1: 6, 2: 8, 3: 10}  # outlet -> cups from inspection


class FakeClock:
    def __init__(self) -> None:
        self.t_s = 100.0

    def __call__(self) -> float:
        return self.t_s

    def advance(self, dt_s: float) -> None:
        self.t_s += dt_s


def make(
    lanes: int = 2, speed: float = 10.0, ring: int = 256, wd: float = 1000.0
) -> tuple[PlcModel, FakeClock]:
    clock = FakeClock()
    return PlcModel(lanes, OFFSETS, speed, clock, ring_size=ring, watchdog_timeout_s=wd), clock


def decide(model: PlcModel, lane: int, cup: int, outlet: int) -> None:
    model.write_slot(lane, cup % model.ring_size, ring_word(cup, outlet, model.ring_size))


def fired(model: PlcModel) -> list[tuple[int, int, int]]:
    return [(e.lane, e.cup_index, e.outlet) for e in model.drop_log if e.outlet != 0]


def test_encoder_position_counter_and_speed_change() -> None:
    model, clock = make(speed=10.0)
    assert model.position_cups() == 0.0
    clock.advance(1.25)
    assert model.position_cups() == pytest.approx(12.5)
    assert model.cup_counter == 12
    model.set_speed(4.0)
    clock.advance(0.5)
    assert model.position_cups() == pytest.approx(14.5)
    model.stop()
    clock.advance(10.0)
    assert model.position_cups() == pytest.approx(14.5)
    assert model.speed_cups_per_s == 0.0
    model.start()
    clock.advance(0.25)
    assert model.position_cups() == pytest.approx(15.5)


def test_decisions_fire_at_their_outlet_at_the_exact_time() -> None:
    model, clock = make(lanes=2, speed=10.0)
    decide(model, 0, 3, 2)
    decide(model, 1, 3, 1)
    decide(model, 0, 4, 3)
    clock.advance(2.0)  # position 20: cups 0..10 have passed outlet 3 (offset 10)
    events = model.advance()
    assert fired(model) == [(1, 3, 1), (0, 3, 2), (0, 4, 3)]
    by_key = {(e.lane, e.cup_index): e for e in events}
    # cup 3 meets outlet 2 (offset 8) at position 11 -> 1.1 s after start at 10 cups/s
    assert by_key[(0, 3)].t_s == pytest.approx(101.1)
    assert by_key[(1, 3)].t_s == pytest.approx(100.9)
    assert by_key[(0, 4)].t_s == pytest.approx(101.4)
    assert model.fired_per_outlet == {1: 1, 2: 1, 3: 1}
    # every other cup that passed outlet 3 (cups 0..10, 2 lanes = 22, minus 3 fired) recirculated
    assert sum(model.recirculated_per_lane) == 22 - 3
    recirc = {(e.lane, e.cup_index) for e in events if e.outlet == 0}
    assert (0, 3) not in recirc and (1, 3) not in recirc and (0, 4) not in recirc
    assert (1, 4) in recirc and (0, 0) in recirc


def test_events_split_across_calls_are_not_repeated() -> None:
    model, clock = make(lanes=1, speed=10.0)
    for cup in range(40):
        decide(model, 0, cup, 1 + cup % 3)
    seen: list[DropEvent] = []
    for _ in range(57):
        clock.advance(0.037)
        seen.extend(model.advance())
    # position 21.09: cups 0..11 past their outlets where k + offset <= 21.09
    expected = [(0, k, 1 + k % 3) for k in range(40) if k + OFFSETS[1 + k % 3] <= 21.09]
    assert sorted((e.lane, e.cup_index, e.outlet) for e in seen) == sorted(expected)
    assert seen == model.drop_log


def test_speed_change_keeps_cup_identity() -> None:
    model, clock = make(lanes=1, speed=10.0)
    for cup in range(0, 60):
        decide(model, 0, cup, 3 if cup % 2 else 1)
    clock.advance(1.0)
    model.set_speed(25.0)
    clock.advance(1.0)
    model.set_speed(5.0)
    clock.advance(2.0)  # position 10 + 25 + 10 = 45
    model.advance()
    expected = [(0, k, 3 if k % 2 else 1) for k in range(60) if k + (10 if k % 2 else 6) <= 45]
    assert sorted(fired(model)) == sorted(expected)
    # the speed change is visible in the drop times: cup 30 meets outlet 1 at pos 36 -> t = 100+2+0.2
    ev = next(e for e in model.drop_log if e.cup_index == 30)
    assert ev.t_s == pytest.approx(102.2)


def test_late_write_does_not_fire() -> None:
    model, clock = make(lanes=1, speed=10.0)
    clock.advance(0.75)  # position 7.5: cup 1 has passed outlet 1 (offset 6), not outlet 2
    decide(model, 0, 1, 1)  # late for outlet 1
    decide(model, 0, 1, 2)  # overwrites; outlet 2 still ahead of cup 1 -> fires
    decide(model, 0, 0, 1)  # cup 0 already passed outlet 1 at position 6
    clock.advance(1.0)
    model.advance()
    assert fired(model) == [(0, 1, 2)]
    assert (0, 0, 0) in [(e.lane, e.cup_index, e.outlet) for e in model.drop_log]
    # position 17.5: cups 0..7 passed the last outlet; cup 1 fired, 7 recirculated. Cup 0 had
    # a decision with its epoch (too late to act on), so only cups 2..7 count as late.
    assert model.recirculated_per_lane == [7]
    assert model.late_per_lane == [6]


def test_stalled_watchdog_recirculates_everything_until_beats_resume() -> None:
    model, clock = make(lanes=1, speed=10.0, wd=2.0)
    for cup in range(100):
        decide(model, 0, cup, 1)
    # beats every 0.5 s for 1 s, then stop beating
    for i in range(3):
        model.heartbeat(i + 1)
        clock.advance(0.5)
    # last beat at t=101.0; watchdog expires after t=103.0 -> position 30
    clock.advance(3.5)  # t = 105.0, position 50
    model.advance()
    fired_cups = [k for (_, k, _) in fired(model)]
    # cup k meets outlet 1 at position k + 6; alive while position <= 30. The beat at position
    # 50 comes after cup 44 met outlet 1 there, so firing resumes with cup 45.
    assert fired_cups == list(range(0, 25))
    assert model.watchdog_recirculated_per_lane == [50 - 10 + 1 - 25]  # cups 25..40 passed outlet 3
    assert not model.watchdog_ok()
    model.heartbeat(4)  # t = 105.0, position 50
    assert model.watchdog_ok()
    clock.advance(1.0)  # position 60
    model.advance()
    assert [k for (_, k, _) in fired(model)] == list(range(0, 25)) + list(range(45, 55))


def test_same_heartbeat_value_is_not_a_beat() -> None:
    model, clock = make(wd=2.0)
    model.heartbeat(7)
    clock.advance(1.5)
    model.heartbeat(7)
    clock.advance(1.0)
    assert not model.watchdog_ok()


def test_epoch_stops_a_stale_slot_firing_on_the_next_lap() -> None:
    model, clock = make(lanes=1, speed=10.0, ring=16)
    decide(model, 0, 2, 1)  # fires, and the slot is cleared
    decide(model, 0, 5, 2)
    # a word written for cup 5's lap but never cleared by a pass: simulate a PC that wrote the
    # slot for cup 9 (epoch 0) after cup 9 passed; cup 25 (same slot, epoch 1) must not fire
    clock.advance(2.0)  # position 20
    decide(model, 0, 9, 3)  # late: cup 9 passed outlet 3 at position 19
    clock.advance(3.0)  # position 50: cups 25 (slot 9) and 18, 21 (slots 2, 5) passed
    model.advance()
    assert fired(model) == [(0, 2, 1), (0, 5, 2)]
    assert model.read_slot(0, 9) == ring_word(9, 3, 16)  # left alone: cup 25 ignored it
    assert ring_epoch(25, 16) == 1


def test_decision_for_next_lap_is_kept_while_previous_cup_is_on_the_chain() -> None:
    model, clock = make(lanes=1, speed=10.0, ring=16)
    decide(model, 0, 0, 3)
    clock.advance(0.5)  # position 5: cup 0 not at any outlet yet
    # the PC may not write cup 16 yet without clobbering cup 0: the ring must be big enough
    clock.advance(0.55)  # position 10.5: cup 0 fired at outlet 3
    decide(model, 0, 16, 2)
    clock.advance(2.0)  # position 30.5: cup 16 met outlet 2 at 24
    model.advance()
    assert fired(model) == [(0, 0, 3), (0, 16, 2)]


def test_full_outlet_does_not_fire_and_is_counted() -> None:
    model, clock = make(lanes=1, speed=10.0)
    decide(model, 0, 0, 1)
    decide(model, 0, 1, 1)
    clock.advance(0.65)  # position 6.5: cup 0 fired at outlet 1
    model.set_outlet_full(1, True)
    clock.advance(1.0)
    model.advance()
    assert fired(model) == [(0, 0, 1)]
    assert model.blocked_per_outlet[1] == 1
    assert (0, 1, 0) in [(e.lane, e.cup_index, e.outlet) for e in model.drop_log]
    assert model.status().outlet_full == (True, False, False)


def test_cup_counter_wraps_at_32_bits_and_ring_stays_consistent() -> None:
    clock = FakeClock()
    model = PlcModel(1, OFFSETS, 1000.0, clock, ring_size=256)
    start = 2**32 - 5
    model.stop()
    # jump the encoder near the wrap point without replaying billions of cups
    model._pos_ref = model._processed_pos = float(start)
    model.start()
    for cup in range(start, start + 10):
        wrapped = cup % 2**32
        decide(model, 0, wrapped, 2)
    clock.advance(0.02)  # 20 cups
    model.advance()
    assert model.cup_counter == (start + 20) % 2**32
    assert [k for (_, k, _) in fired(model)] == [k % 2**32 for k in range(start, start + 10)]


def test_simulated_plc_implements_the_interface() -> None:
    model, clock = make(lanes=2, speed=10.0)
    plc = SimulatedPlc(model)
    assert isinstance(plc, Plc)

    async def run() -> None:
        await plc.open()
        await plc.heartbeat()
        await plc.write_decisions([OutletDecision(0, 3, 2), OutletDecision(1, 4, 1)])
        clock.advance(1.5)
        status = await plc.read_status()
        assert status.cup_counter == 15
        assert status.running and status.belt_speed_cups_per_s == 10.0
        assert status.outlet_full == (False, False, False)
        await plc.close()

    asyncio.run(run())
    assert fired(model) == [(1, 4, 1), (0, 3, 2)]


def test_rejects_bad_geometry() -> None:
    clock = FakeClock()
    with pytest.raises(ValueError):
        PlcModel(1, {1: 300}, 10.0, clock, ring_size=256)
    with pytest.raises(ValueError):
        PlcModel(1, {1: 5}, 10.0, clock, ring_size=100)
    with pytest.raises(ValueError):
        PlcModel(1, {0: 5}, 10.0, clock)


def test_drop_log_keeps_the_newest_events_when_bounded() -> None:
    clock = FakeClock()
    model = PlcModel(1, {1: 1}, 10.0, clock, ring_size=16, watchdog_timeout_s=1e6, max_drop_log=10)
    clock.advance(10.0)  # position 100: cups 0..99 recirculated
    events = model.advance()
    assert len(events) == 100  # advance() still returns everything since the last call
    assert 5 <= len(model.drop_log) <= 10
    assert model.drop_log[-1].cup_index == 99
    assert [e.cup_index for e in model.drop_log] == list(range(100 - len(model.drop_log), 100))


def test_camera_triggers_fire_at_whole_multiples_of_the_pitch() -> None:
    clock = FakeClock()
    model = PlcModel(1, OFFSETS, 8.0, clock, camera_trigger_pitch_cups=2 / 3)
    assert model.camera_triggers == 0  # position 0 at power-up is not a crossing
    # trigger m exposes at position m * 2/3, i.e. every 1/12 s at 8 cups/s
    for m in (1, 2, 3, 180, 1000):
        t_m = model.time_at_position(m * 2 / 3)
        assert t_m == pytest.approx(100.0 + m / 12.0)
        clock.t_s = t_m
        assert model.camera_triggers == m
        clock.t_s = t_m - 1e-6
        assert model.camera_triggers == m - 1
    status = model.status()
    assert status.camera_trigger_pitch_cups == pytest.approx(2 / 3)
    assert status.camera_triggers == 999
    assert status.position_cups == pytest.approx(model.position_cups())


def test_time_at_position_spans_speed_changes_and_stops() -> None:
    clock = FakeClock()
    model = PlcModel(1, OFFSETS, 10.0, clock, camera_trigger_pitch_cups=1.0)
    clock.advance(1.0)  # position 10
    model.set_speed(5.0)
    clock.advance(1.0)  # position 15
    model.stop()
    assert model.time_at_position(4.0) == pytest.approx(100.4)  # first segment
    assert model.time_at_position(12.5) == pytest.approx(101.5)  # second segment
    assert model.time_at_position(15.0) == pytest.approx(102.0)  # where it stopped
    assert model.time_at_position(16.0) is None  # a stopped belt never gets there
    clock.advance(3.0)
    assert model.camera_triggers == 15  # no trigger while stopped
    model.start()  # at t = 105, still position 15, at 5 cups/s
    assert model.time_at_position(16.0) == pytest.approx(105.2)
    clock.advance(0.2)
    assert model.camera_triggers == 16


def test_no_camera_trigger_without_a_pitch() -> None:
    model, clock = make()
    clock.advance(3.0)
    assert model.camera_triggers == 0
    status = model.status()
    assert status.camera_trigger_pitch_cups is None and status.camera_triggers == 0
    with pytest.raises(ValueError):
        PlcModel(1, OFFSETS, 10.0, clock, camera_trigger_pitch_cups=0.0)
