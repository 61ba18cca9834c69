"""Cold rooms against the cold-room simulator's model on a fake clock: the compressor-failure
scenario raises the high-temperature alarm after its on-delay within one poll, shows on /metrics,
is acknowledged and clears after its off-delay; a sensor that stops answering raises its stale
alarm in time and its temperature stops being current. Truth is the simulator's own model,
stepped independently second by second."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from api.metrics import AlarmCollector, ColdroomCollector
from drivers.interfaces import DeviceError
from grading.alarms import AlarmEngine, AlarmState
from grading.coldchain.config import AlarmTimings, RoomSettings
from grading.coldchain.monitor import ColdchainMonitor
from simulators.coldroom import ColdroomModel, ColdroomSimSettings, SimulatedClimateSensor

T0 = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
POLL_S = 10.0
HIGH_C, DEADBAND_C = 4.0, 0.3
ON_DELAY_S, OFF_DELAY_S = 900.0, 120.0
FAIL_AT_S, RESTORE_AT_S = 60.0, 2400.0


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def wall(self) -> datetime:
        return T0 + timedelta(seconds=self.t)


def _sim(clock: FakeClock) -> ColdroomModel:
    settings = ColdroomSimSettings.model_validate({
        "rooms": [{"name": "room-2", "unit_id": 2, "setpoint_celsius": 2.0}],
        "events": [
            {"at_s": FAIL_AT_S, "unit_id": 2, "action": "compressor_fail"},
            {"at_s": RESTORE_AT_S, "unit_id": 2, "action": "compressor_restore"},
        ],
    })
    return ColdroomModel(settings, clock)


def _room() -> RoomSettings:
    return RoomSettings(
        name="room-2", setpoint_c=2.0, temperature_low_c=0.0, temperature_high_c=HIGH_C,
        alarms=AlarmTimings(high_on_delay_s=ON_DELAY_S, off_delay_s=OFF_DELAY_S, temperature_deadband_c=DEADBAND_C),
    )


def _truth_first(predicate_after: float, predicate: object) -> float:
    """First whole second after ``predicate_after`` when the true temperature meets ``predicate``."""
    clock = FakeClock()
    model = _sim(clock)
    while True:
        clock.t += 1.0
        if clock.t > predicate_after and predicate(model.room(2).temperature_celsius):  # type: ignore[operator]
            return clock.t


def _metrics(monitor: ColdchainMonitor, engine: AlarmEngine, clock: FakeClock) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(AlarmCollector(engine))
    registry.register(ColdroomCollector(SimpleNamespace(health={}), monitor, clock))  # type: ignore[arg-type]
    text = generate_latest(registry).decode()
    return {
        f"{s.name}{{{','.join(f'{k}={v}' for k, v in sorted(s.labels.items()))}}}": s.value
        for family in text_string_to_metric_families(text) for s in family.samples
    }


def test_compressor_failure_raises_after_on_delay_within_one_poll_then_acks_and_clears() -> None:
    clock = FakeClock()
    model = _sim(clock)
    sensor = SimulatedClimateSensor(model, 2)
    engine = AlarmEngine(clock=clock, wall_clock=clock.wall)
    monitor = ColdchainMonitor([_room()], engine, clock=clock, wall_clock=clock.wall)
    alarm = "room-2.temperature_high"
    # The register holds tenths: a reading above 4.0 means the truth reached 4.05; the alarm
    # clears below 4.0 - 0.3 = 3.7, and a reading below 3.7 (3.6) means the truth fell below 3.65.
    over_at = _truth_first(FAIL_AT_S, lambda t: t >= HIGH_C + 0.05)
    back_at = _truth_first(RESTORE_AT_S, lambda t: t < HIGH_C - DEADBAND_C - 0.05)
    raised_at = cleared_at = None
    acked = False
    while clock.t < RESTORE_AT_S + 3600:
        clock.t += POLL_S
        monitor.on_reading(sensor.name, sensor.read_now())
        monitor.tick()
        state = engine.state(alarm)
        if raised_at is None and state == AlarmState.UNACKNOWLEDGED:
            raised_at = clock.t
            metrics = _metrics(monitor, engine, clock)
            assert metrics[f"gradeline_alarm_active{{alarm={alarm},priority=high}}"] == 1.0
            assert metrics["gradeline_coldroom_temperature_celsius{room=room-2}"] > HIGH_C
            assert metrics["gradeline_coldroom_band_high_celsius{room=room-2}"] == HIGH_C
            engine.acknowledge(alarm, "张三")
            acked = True
            assert engine.state(alarm) == AlarmState.ACKNOWLEDGED
        if raised_at is not None and cleared_at is None and state == AlarmState.NORMAL:
            cleared_at = clock.t
    assert raised_at is not None and acked and cleared_at is not None
    assert over_at + ON_DELAY_S <= raised_at <= over_at + ON_DELAY_S + POLL_S
    assert back_at + OFF_DELAY_S <= cleared_at <= back_at + OFF_DELAY_S + POLL_S
    assert _metrics(monitor, engine, clock)[f"gradeline_alarm_active{{alarm={alarm},priority=high}}"] == 0.0
    causes = [t.cause for t in engine.drain() if t.alarm_id == alarm]
    assert causes == ["raised", "acknowledged", "cleared"]


def test_a_sensor_that_stops_answering_raises_its_stale_alarm_and_is_not_current() -> None:
    clock = FakeClock()
    model = _sim(clock)
    sensor = SimulatedClimateSensor(model, 2)
    engine = AlarmEngine(clock=clock, wall_clock=clock.wall)
    room = _room()
    monitor = ColdchainMonitor([room], engine, clock=clock, wall_clock=clock.wall)
    stale_after = room.alarms.stale_after_s
    last_ok = None
    stale_at = None
    while clock.t < 1200:
        clock.t += 1.0
        sensor.fail = clock.t > 400
        if clock.t % POLL_S == 0:
            try:
                monitor.on_reading(sensor.name, sensor.read_now())
                last_ok = clock.t
            except DeviceError:
                pass
        monitor.tick()
        if stale_at is None and engine.state("room-2.sensor_stale") == AlarmState.UNACKNOWLEDGED:
            stale_at = clock.t
        if last_ok is not None and clock.t <= 400:
            assert monitor.now()[0].temperature_c is not None
    assert last_ok == 400 and stale_at is not None
    assert last_ok + stale_after < stale_at <= last_ok + stale_after + 1.0
    now = monitor.now()[0]
    assert now.temperature_c is None and now.humidity_ratio is None and not now.air_sensor_up
    metrics = _metrics(monitor, engine, clock)
    assert not any(k.startswith("gradeline_coldroom_temperature_celsius") for k in metrics)
    assert metrics["gradeline_alarm_active{alarm=room-2.sensor_stale,priority=high}"] == 1.0
    # it answers again: the alarm returns (unacknowledged until someone acknowledges it)
    sensor.fail = False
    clock.t += 1
    monitor.on_reading(sensor.name, sensor.read_now())
    monitor.tick()
    assert engine.state("room-2.sensor_stale") == AlarmState.RETURNED_UNACKNOWLEDGED
    assert monitor.now()[0].temperature_c is not None


def test_door_open_too_long_raises_unless_the_room_is_being_loaded() -> None:
    clock = FakeClock()
    model = ColdroomModel(ColdroomSimSettings.model_validate({
        "rooms": [{"name": "room-1", "unit_id": 1}],
        "events": [
            {"at_s": 100, "unit_id": 1, "action": "door_open"}, {"at_s": 400, "unit_id": 1, "action": "door_close"},
            {"at_s": 1000, "unit_id": 1, "action": "door_open"}, {"at_s": 1500, "unit_id": 1, "action": "door_close"},
        ],
    }), clock)
    sensor = SimulatedClimateSensor(model, 1)
    engine = AlarmEngine(clock=clock, wall_clock=clock.wall)
    room = RoomSettings(name="room-1", door_sensor="room-1", alarms=AlarmTimings(door_open_max_s=240.0))
    monitor = ColdchainMonitor([room], engine, clock=clock, wall_clock=clock.wall)
    states: dict[float, AlarmState] = {}
    while clock.t < 1800:
        clock.t += POLL_S
        if clock.t == 900:
            monitor.set_loading("room-1", True)  # the second opening is a loading
        if clock.t == 1600:
            monitor.set_loading("room-1", False)
        monitor.on_reading(sensor.name, sensor.read_now())
        monitor.tick()
        states[clock.t] = engine.state("room-1.door_open")
    assert states[330] == AlarmState.NORMAL and states[340] == AlarmState.UNACKNOWLEDGED  # open at 100 s, held 240 s
    assert states[400] == AlarmState.RETURNED_UNACKNOWLEDGED
    assert all(states[t] == AlarmState.SUPPRESSED for t in range(900, 1600, 10))
    assert states[1600] == AlarmState.NORMAL  # back in view with the door shut: what the condition calls for
    causes = [t.cause for t in engine.drain() if t.alarm_id == "room-1.door_open"]
    assert causes == ["raised", "cleared", "suppressed", "unsuppressed"]
