"""A lot's cold-chain history against the cold-room simulator's truth, on both backends: a lot
moved through two rooms (one with its door left open, one whose compressor fails) has minutes
out of band that match the simulator's, second by second, within one sampling interval; the
minute rows, a room's excursions and the retention; and pre-cooling: on a batch with a known
cooling constant, the seven-eighths-cooling time is predicted within 10 % once half cooled."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from grading.alarms import AlarmEngine
from grading.coldchain.config import RoomSettings
from grading.coldchain.history import ColdchainStore
from grading.coldchain.monitor import ColdchainMonitor
from grading.coldchain.precooling import estimate
from grading.store import create_store_engine, migrate, open_lot
from simulators.coldroom import (
    ColdroomModel,
    ColdroomSimSettings,
    SimulatedClimateSensor,
    SimulatedCoreProbe,
)

T0 = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
POLL_S = 10.0
HIGH_C, LOW_C = 3.0, 0.0


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def wall(self) -> datetime:
        return T0 + timedelta(seconds=self.t)


def _model(clock: FakeClock) -> ColdroomModel:
    return ColdroomModel(ColdroomSimSettings.model_validate({
        "rooms": [{"name": "room-1", "unit_id": 1}, {"name": "room-2", "unit_id": 2}],
        "events": [
            {"at_s": 900, "unit_id": 1, "action": "door_open"},
            {"at_s": 1500, "unit_id": 1, "action": "door_close"},
            {"at_s": 1200, "unit_id": 2, "action": "compressor_fail"},
            {"at_s": 4200, "unit_id": 2, "action": "compressor_restore"},
        ],
    }), clock)


# the lot: into room-1 at 330 s, to room-2 at 2010 s (already warm), out at 6030 s
MOVES = [(330.0, "room-1"), (2010.0, "room-2"), (6030.0, None)]


def _truth_out_of_band_s() -> dict[str, float]:
    """Seconds each stay's room was out of band, from the simulator stepped second by second, as
    its sensor's 0.1 degC register shows the temperature."""
    clock = FakeClock()
    model = _model(clock)
    out = {"room-1": 0.0, "room-2": 0.0}
    room = None
    units = {"room-1": 1, "room-2": 2}
    while clock.t < MOVES[-1][0]:
        for at, where in MOVES:
            if clock.t == at:
                room = where
        if room is not None:
            shown = round(model.room(units[room]).temperature_celsius, 1)
            out[room] += not LOW_C <= shown <= HIGH_C
        clock.t += 1.0
    return out


def test_a_lot_moved_through_two_rooms_has_the_simulators_minutes_out_of_band(database_url: str) -> None:
    engine = create_store_engine(database_url)
    migrate(engine)
    lot = open_lot(engine, code="L-1", grower="张三", variety="", product="apple", recipe="apple", line="line-1")
    clock = FakeClock()
    model = _model(clock)
    sensors = [SimulatedClimateSensor(model, 1), SimulatedClimateSensor(model, 2)]
    rooms = [RoomSettings(name=n, setpoint_c=2.0, temperature_low_c=LOW_C, temperature_high_c=HIGH_C) for n in ("room-1", "room-2")]
    monitor = ColdchainMonitor(rooms, AlarmEngine(clock=clock, wall_clock=clock.wall), clock=clock, wall_clock=clock.wall)
    store = ColdchainStore(engine, wall_clock=clock.wall)
    moves = list(MOVES)
    while clock.t < 6600:
        if moves and clock.t == moves[0][0]:
            store.move(lot.id, moves.pop(0)[1], user="张三")
        if clock.t % POLL_S == 0:
            for sensor in sensors:
                monitor.on_reading(sensor.name, sensor.read_now())
        if clock.t % 60 == 0:
            store.write(monitor.finished_minutes())
        clock.t += 1.0
    store.write(monitor.finished_minutes(everything=True))

    truth = _truth_out_of_band_s()
    assert truth["room-1"] > 300 and truth["room-2"] > 1200  # both stays really had excursions
    stays = store.lot_history(lot.id)
    assert [(s.room, s.entered_at, s.left_at) for s in stays] == [
        ("room-1", T0 + timedelta(seconds=330), T0 + timedelta(seconds=2010)),
        ("room-2", T0 + timedelta(seconds=2010), T0 + timedelta(seconds=6030)),
    ]
    for stay in stays:
        assert abs(stay.minutes_out_of_band * 60 - truth[stay.room]) <= POLL_S, (stay, truth)
        assert stay.temperature_max_c is not None and stay.temperature_max_c > HIGH_C
    total = sum(s.minutes_out_of_band for s in stays) * 60
    assert abs(total - sum(truth.values())) <= POLL_S

    # the room's own view: minute rows and excursions
    rows = store.history("room-2", T0, T0 + timedelta(hours=2))
    assert len(rows) == 110 and all(r["samples"] == 6 for r in rows)  # one row per minute, 6 polls each
    runs = store.excursions("room-2", T0, T0 + timedelta(hours=2))
    assert len(runs) == 1 and runs[0]["max"] > 6.0
    # a replayed minute is not doubled; retention deletes what is older than it
    assert store.write(monitor.finished_minutes(everything=True)) == 0
    clock.t += 86400 * 2
    assert store.prune(retention_days=1) == 2 * 2 * 110  # two rooms, temperature and humidity
    engine.dispose()


def test_seven_eighths_cooling_is_predicted_within_ten_percent_once_half_cooled() -> None:
    tau_s = 3000.0
    clock = FakeClock()
    model = ColdroomModel(ColdroomSimSettings.model_validate({"rooms": [{
        "name": "pre-1", "unit_id": 1, "setpoint_celsius": 1.0,
        "core_probes": [{"name": "core-1", "initial_celsius": 26.0, "time_constant_s": tau_s, "noise_celsius": 0.1, "seed": 4}],
    }]}), clock)
    air, probe = SimulatedClimateSensor(model, 1), SimulatedCoreProbe(model, 1, "core-1")
    room = RoomSettings(name="pre-1", purpose="precooling", core_probes=["core-1"], setpoint_c=1.0,
                        temperature_low_c=-0.5, temperature_high_c=3.0)
    monitor = ColdchainMonitor([room], AlarmEngine(clock=clock, wall_clock=clock.wall), clock=clock, wall_clock=clock.wall)
    monitor.start_batch("pre-1")
    result = None
    while result is None or result.half_cooling_measured_s is None:
        monitor.on_reading(air.name, air.read_now())
        monitor.on_reading(probe.name, probe.read_now())
        result = monitor.cooling("pre-1")["core-1"]
        clock.t += 30.0
    assert result.seven_eighths_predicted_s is not None and result.half_cooling_predicted_s is not None
    true_half, true_eighth = tau_s * math.log(2), tau_s * math.log(8)
    assert abs(result.half_cooling_measured_s - true_half) <= 60  # noise may cross a sample early
    assert abs(result.seven_eighths_predicted_s - true_eighth) <= 0.10 * true_eighth
    assert result.seven_eighths_measured_s is None and 0.5 < result.progress < 0.62
    # and the fit is not the measurement: a pure curve gives back its constant exactly
    times = [30.0 * i for i in range(100)]
    fit = estimate(times, [1.0 + 25.0 * math.exp(-t / tau_s) for t in times], 1.0)
    assert fit is not None and fit.cooling_rate_per_s is not None
    assert abs(fit.cooling_rate_per_s * tau_s - 1) < 1e-9
