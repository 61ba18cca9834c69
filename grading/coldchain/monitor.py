"""The cold rooms now: readings in, freshness, bands, alarms out, minute history, pre-cooling.

``ColdchainMonitor`` is fed by the sensor poller (``on_reading``, on the event loop) and ticked
about once a second (``tick``). It defines each room's alarms in the line's ``AlarmEngine``:

* ``<room>.temperature_high`` / ``<room>.temperature_low`` (setpoint = the band's limits),
* ``<room>.humidity_low``,
* ``<room>.door_open`` (a door open longer than its on-delay; suppressed by design while the
  room is being loaded),
* ``<device>.sensor_stale`` for every sensor a room uses: no reading for ``stale_after_s``.

A stale sensor's last value is history, not the present: ``RoomNow.temperature_c`` is None
then, so neither the API nor ``/metrics`` shows it as current. Time: a monotonic clock for
freshness and alarm delays, a wall clock for history minutes.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from drivers.interfaces import SensorReading
from grading.alarms import AlarmDefinition, AlarmEngine
from grading.coldchain.bands import Band
from grading.coldchain.config import RoomSettings
from grading.coldchain.history import MinuteAggregator, MinuteRow
from grading.coldchain.precooling import CoolingEstimate, estimate

TREND_POINTS = 60  # the HMI's short trend: one point per TREND_STEP_S
TREND_STEP_S = 30.0


@dataclass
class _Device:
    name: str
    last_ok_s: float | None = None
    last: SensorReading | None = None


@dataclass
class Batch:
    """A batch cooling in a pre-cooling room, followed by one core probe."""

    probe: str
    started_s: float
    started_at: datetime
    times_s: list[float] = field(default_factory=list)
    core_c: list[float] = field(default_factory=list)
    air_c: list[float] = field(default_factory=list)


@dataclass
class Room:
    settings: RoomSettings
    band: Band
    loading: bool = False
    trend: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=TREND_POINTS))
    batches: dict[str, Batch] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.settings.name

    def devices(self) -> list[str]:
        names = [self.settings.air]
        if self.settings.door_sensor:
            names.append(self.settings.door_sensor)
        return [*names, *self.settings.core_probes]


@dataclass(frozen=True, slots=True)
class RoomNow:
    room: str
    purpose: str
    band: Band
    temperature_c: float | None  # None while the air sensor is stale: never a stale value as current
    humidity_ratio: float | None
    door_open: bool | None
    air_sensor: str
    air_sensor_up: bool
    last_read_age_s: float | None
    loading: bool
    trend: tuple[tuple[float, float], ...]  # (seconds ago, temperature)
    cooling: dict[str, CoolingEstimate | None]


def _wall_now() -> datetime:
    return datetime.now(UTC)


class ColdchainMonitor:
    def __init__(
        self,
        rooms: Sequence[RoomSettings],
        alarms: AlarmEngine,
        *,
        default_product: str = "apple",
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = _wall_now,
    ) -> None:
        self._clock = clock
        self._wall_clock = wall_clock
        self.alarms = alarms
        self.rooms: dict[str, Room] = {r.name: Room(r, r.band(default_product)) for r in rooms}
        self.devices: dict[str, _Device] = {}
        self._rooms_of: dict[str, list[tuple[Room, str]]] = {}  # device -> (room, role)
        self.history = MinuteAggregator(hold_max_s=max(r.alarms.stale_after_s for r in rooms) if rooms else 300.0)
        self._started_s = clock()
        for room in self.rooms.values():
            self._define(room)

    def _define(self, room: Room) -> None:
        s, b, t = room.settings, room.band, room.settings.alarms
        define = self.alarms.define
        define(AlarmDefinition(
            f"{s.name}.temperature_high", "temperature_high", s.name, t.high_priority, "high", b.temperature_high_c,
            t.temperature_deadband_c, t.high_on_delay_s, t.off_delay_s, f"{s.name}: temperature above {b.temperature_high_c} °C",
        ))
        define(AlarmDefinition(
            f"{s.name}.temperature_low", "temperature_low", s.name, t.low_priority, "low", b.temperature_low_c,
            t.temperature_deadband_c, t.low_on_delay_s, t.off_delay_s, f"{s.name}: temperature below {b.temperature_low_c} °C",
        ))
        define(AlarmDefinition(
            f"{s.name}.humidity_low", "humidity_low", s.name, t.humidity_priority, "low", b.humidity_low_ratio,
            t.humidity_deadband_ratio, t.humidity_on_delay_s, t.off_delay_s,
            f"{s.name}: relative humidity below {round(b.humidity_low_ratio * 100)} %",
        ))
        if s.door_sensor:
            define(AlarmDefinition(
                f"{s.name}.door_open", "door_open", s.name, t.door_priority, "state", None, 0.0, t.door_open_max_s, 0.0,
                f"{s.name}: door open longer than {t.door_open_max_s:g} s",
            ))
        for role, device in (("air", s.air), ("door", s.door_sensor), *(("core", p) for p in s.core_probes)):
            if device is None:
                continue
            self.devices.setdefault(device, _Device(device))
            self._rooms_of.setdefault(device, []).append((room, role))
            # stale: the source decides (no reading for stale_after_s); no extra delay on top
            define(AlarmDefinition(
                f"{device}.sensor_stale", "sensor_stale", device, t.stale_priority, "state", None, 0.0, 0.0, 0.0,
                f"sensor {device}: no reading for {t.stale_after_s:g} s",
            ))

    # -- readings --------------------------------------------------------------------------

    def on_reading(self, device: str, reading: SensorReading) -> None:
        """A good reading from a sensor (the poller's callback)."""
        entry = self.devices.get(device)
        if entry is None:
            return  # a sensor no room uses
        now = self._clock()
        at = self._wall_clock()
        entry.last_ok_s, entry.last = now, reading
        self.alarms.report(f"{device}.sensor_stale", False)
        for room, role in self._rooms_of[device]:
            name = room.name
            if role == "air":
                if reading.temperature_celsius is not None:
                    t = reading.temperature_celsius
                    self.alarms.report_value(f"{name}.temperature_high", t)
                    self.alarms.report_value(f"{name}.temperature_low", t)
                    self.history.add(name, "temperature", at, t, room.band.temperature_out(t))
                    if not room.trend or now - room.trend[-1][0] >= TREND_STEP_S:
                        room.trend.append((now, t))
                    for batch in room.batches.values():
                        batch.air_c.append(t)
                if reading.relative_humidity_ratio is not None:
                    self.alarms.report_value(f"{name}.humidity_low", reading.relative_humidity_ratio)
                    self.history.add(name, "humidity", at, reading.relative_humidity_ratio)
            if role == "door" and reading.door_open is not None:
                self.alarms.report(f"{name}.door_open", reading.door_open, 1.0 if reading.door_open else 0.0)
            if role == "core" and reading.temperature_celsius is not None:
                self.history.add(name, f"core:{device}", at, reading.temperature_celsius)
                followed = room.batches.get(device)
                if followed is not None:
                    followed.times_s.append(now - followed.started_s)
                    followed.core_c.append(reading.temperature_celsius)

    def tick(self) -> None:
        """Freshness (stale alarms) and the alarm engine's delays and expiries."""
        now = self._clock()
        for device, entry in self.devices.items():
            stale_after = min(room.settings.alarms.stale_after_s for room, _ in self._rooms_of[device])
            since = entry.last_ok_s if entry.last_ok_s is not None else self._started_s
            stale = now - since > stale_after
            if stale != self.alarms.status(f"{device}.sensor_stale").condition:
                self.alarms.report(f"{device}.sensor_stale", stale, now - since)
        self.alarms.tick()

    def is_fresh(self, device: str) -> bool:
        entry = self.devices.get(device)
        if entry is None or entry.last_ok_s is None:
            return False
        stale_after = min(room.settings.alarms.stale_after_s for room, _ in self._rooms_of[device])
        return self._clock() - entry.last_ok_s <= stale_after

    def finished_minutes(self, *, everything: bool = False) -> list[MinuteRow]:
        """Minute rows ready for the store (``ColdchainStore.write``)."""
        return self.history.flush(self._wall_clock(), everything=everything)

    # -- loading and pre-cooling -----------------------------------------------------------

    def room(self, name: str) -> Room:
        try:
            return self.rooms[name]
        except KeyError:
            raise LookupError(f"no room {name!r}") from None

    def set_loading(self, name: str, loading: bool) -> None:
        """A room being loaded: its door alarm is suppressed by design until loading ends."""
        room = self.room(name)
        room.loading = loading
        if room.settings.door_sensor:
            self.alarms.suppress(f"{name}.door_open", loading, "loading" if loading else "")

    def start_batch(self, name: str) -> list[str]:
        """Start following a new batch on every core probe of the room; the probes' names."""
        room = self.room(name)
        now, at = self._clock(), self._wall_clock()
        room.batches = {p: Batch(p, now, at) for p in room.settings.core_probes}
        return list(room.batches)

    def cooling(self, name: str) -> dict[str, CoolingEstimate | None]:
        room = self.room(name)
        out: dict[str, CoolingEstimate | None] = {}
        for probe, batch in room.batches.items():
            air = sum(batch.air_c) / len(batch.air_c) if batch.air_c else room.band.setpoint_c
            out[probe] = estimate(batch.times_s, batch.core_c, air)
        return out

    # -- the present -----------------------------------------------------------------------

    def now(self) -> list[RoomNow]:
        now = self._clock()
        out = []
        for room in self.rooms.values():
            air = self.devices[room.settings.air]
            fresh = self.is_fresh(air.name)
            reading = air.last if fresh else None
            door = None
            if room.settings.door_sensor and self.is_fresh(room.settings.door_sensor):
                door_reading = self.devices[room.settings.door_sensor].last
                door = door_reading.door_open if door_reading else None
            out.append(RoomNow(
                room=room.name, purpose=room.settings.purpose, band=room.band,
                temperature_c=reading.temperature_celsius if reading else None,
                humidity_ratio=reading.relative_humidity_ratio if reading else None,
                door_open=door, air_sensor=air.name, air_sensor_up=fresh,
                last_read_age_s=None if air.last_ok_s is None else round(now - air.last_ok_s, 1),
                loading=room.loading, trend=tuple((round(now - t, 1), v) for t, v in room.trend),
                cooling=self.cooling(room.name) if room.batches else {},
            ))
        return out
