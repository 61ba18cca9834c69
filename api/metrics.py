"""Prometheus collector over the line runtime's counters, read at scrape time.

Names follow Prometheus conventions: ``gradeline_`` prefix, base units, ``_total`` counters,
no per-fruit labels.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from drivers.modbus.sensor import SensorPoller
from grading.alarms import HIDDEN_STATES, AlarmEngine, AlarmState
from grading.coldchain.monitor import ColdchainMonitor
from grading.lots.stats import LotStatistics
from grading.runtime import LATENCY_BUCKETS_S, LineRuntime


class LineCollector(Collector):
    def __init__(
        self, runtime: LineRuntime, sensors: SensorPoller | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._runtime = runtime
        self._sensors = sensors
        self._clock = clock

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily]:
        rt = self._runtime
        c = rt.counters
        line = rt.settings.line_name

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            family = CounterMetricFamily(name, doc, labels=["line"])
            family.add_metric([line], value)
            return family

        fruits = CounterMetricFamily(
            "gradeline_fruits", "Fruit graded, by quality class and size class.", labels=["line", "quality", "size"]
        )
        for (quality, size), n in sorted(c.by_quality_size.items()):
            fruits.add_metric([line, quality, size], n)
        yield fruits
        sizes = CounterMetricFamily("gradeline_fruits_by_size", "Fruit graded, by size class.", labels=["line", "size_class"])
        for size, n in sorted(c.by_size.items()):
            sizes.add_metric([line, size], n)
        yield sizes
        outlets = CounterMetricFamily(
            "gradeline_fruits_by_outlet", "Fruit sent to each outlet (0 = recirculated).", labels=["line", "outlet"]
        )
        for outlet, n in sorted(c.by_outlet.items()):
            outlets.add_metric([line, str(outlet)], n)
        yield outlets
        yield counter("gradeline_outlet_late_decisions", "Decisions that would have landed too late.", c.late_total)
        yield counter("gradeline_frames", "Camera frames measured.", c.frames_total)
        yield counter("gradeline_frames_dropped", "Frames skipped because vision was behind.", c.frames_dropped_total)
        yield counter("gradeline_fruit_views", "Fruit views measured.", c.views_total)
        weigh = CounterMetricFamily(
            "gradeline_weighing_failures", "Recorded fruit without a weight, by cause.", labels=["line", "cause"]
        )
        for cause, n in sorted(c.weigh_failures.items()):
            weigh.add_metric([line, cause], n)
        yield weigh
        yield counter(
            "gradeline_decisions_unsorted_after_commit",
            "Decisions in time when made but not sorted: the record was committed too late or the PLC write failed.",
            c.unsorted_after_commit_total,
        )
        yield counter("gradeline_records_quarantined", "Fruit records the store refused (kept in its quarantine).", c.quarantined_total)
        yield counter("gradeline_frames_unplaced", "Frames without a belt position (no PLC timing, or off the trigger grid).", c.frames_unplaced_total)
        yield counter("gradeline_plc_errors", "Failed PLC polls.", c.plc_errors_total)
        yield counter("gradeline_plc_write_failures", "Failed writes of decisions to the PLC.", c.plc_write_failures_total)
        yield counter("gradeline_fruit_weight_grams", "Sum of graded fruit weights.", c.weight_g_sum)
        yield counter("gradeline_records_written", "Rows committed to the store.", rt.writer.rows_written)
        writer = rt.writer.health()
        for name, doc, value in (
            ("gradeline_writer_pending_rows", "Rows waiting to be committed.", writer.pending_rows),
            ("gradeline_writer_oldest_pending_age_seconds", "Age of the oldest row waiting to be committed.", writer.oldest_pending_age_s),
        ):
            gauge = GaugeMetricFamily(name, doc, labels=["line"])
            gauge.add_metric([line], value)
            yield gauge
        yield counter("gradeline_writer_retries", "Store transactions retried after a transient error.", writer.retries_total)
        if rt.outbox_health is not None:
            outbox = rt.outbox_health()
            for name, doc, value in (
                ("gradeline_outbox_depth", "Rows in the local outbox not yet forwarded to the central database.", outbox.depth),
                ("gradeline_outbox_oldest_age_seconds", "Age of the oldest row not yet forwarded.", outbox.oldest_age_s),
                ("gradeline_central_database_up", "1 while forwarding to the central database works.", 1.0 if outbox.state != "down" else 0.0),
            ):
                gauge = GaugeMetricFamily(name, doc, labels=["line"])
                gauge.add_metric([line], value)
                yield gauge
            yield counter("gradeline_outbox_forwarded_rows", "Rows forwarded to the central database.", outbox.forwarded_total)
        latency = HistogramMetricFamily(
            "gradeline_decision_latency_seconds",
            "From a frame's exposure to the PLC's acknowledgement of its decisions.",
            labels=["line"],
        )
        buckets = [(str(b), n) for b, n in zip(LATENCY_BUCKETS_S, c.latency_bucket_counts, strict=True)]
        latency.add_metric([line], [*buckets, ("+Inf", c.latency_count)], sum_value=c.latency_sum_s)
        yield latency
        running = GaugeMetricFamily("gradeline_line_running", "1 while the line grades fruit.", labels=["line"])
        running.add_metric([line], 1.0 if rt.intake else 0.0)
        yield running
        rate = GaugeMetricFamily("gradeline_fruit_rate_per_second", "Fruit graded per second (5 s window).", labels=["line"])
        rate.add_metric([line], rt.fruit_per_second())
        yield rate
        lot_open = GaugeMetricFamily("gradeline_lot_open", "1 while a lot is open on the line.", labels=["line", "lot"])
        if rt.lot is not None:  # no series while no lot is open, so max by line is 1 or absent
            lot_open.add_metric([line, rt.lot.code], 1.0)
        yield lot_open
        up = GaugeMetricFamily("gradeline_device_up", "1 while the device answers (line devices and sensors).", labels=["device"])
        for device, state in sorted(rt.device_health().items()):
            up.add_metric([device], 1.0 if state == "ok" else 0.0)
        if self._sensors is not None:
            now = self._clock()
            for name, health in sorted(self._sensors.health.items()):
                up.add_metric([name], 1.0 if health.is_up(now) else 0.0)
        yield up


class ColdroomCollector(Collector):
    """Cold rooms and their sensors: current temperature and humidity per room (only from a
    fresh sensor: a stale one's last value is not current and is not exported), each room's band,
    each sensor's last good read and failed polls."""

    def __init__(self, poller: SensorPoller, monitor: ColdchainMonitor | None, clock: Callable[[], float]) -> None:
        self._poller = poller
        self._monitor = monitor
        self._clock = clock

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        now = self._clock()
        wall_offset_s = time.time() - now  # monotonic -> Unix time, for the timestamp series
        temperature = GaugeMetricFamily(
            "gradeline_coldroom_temperature_celsius", "Room air temperature now (absent while its sensor is stale).",
            labels=["room"],
        )
        humidity = GaugeMetricFamily(
            "gradeline_coldroom_relative_humidity_ratio", "Room relative humidity now, 0-1 (absent while stale).",
            labels=["room"],
        )
        band_high = GaugeMetricFamily("gradeline_coldroom_band_high_celsius", "Room's upper temperature limit.", labels=["room"])
        band_low = GaugeMetricFamily("gradeline_coldroom_band_low_celsius", "Room's lower temperature limit.", labels=["room"])
        setpoint = GaugeMetricFamily("gradeline_coldroom_setpoint_celsius", "Room's setpoint.", labels=["room"])
        humidity_low = GaugeMetricFamily(
            "gradeline_coldroom_band_humidity_low_ratio", "Room's lower humidity limit, 0-1.", labels=["room"]
        )
        if self._monitor is not None:
            for room in self._monitor.now():
                if room.temperature_c is not None:
                    temperature.add_metric([room.room], room.temperature_c)
                if room.humidity_ratio is not None:
                    humidity.add_metric([room.room], room.humidity_ratio)
                band_high.add_metric([room.room], room.band.temperature_high_c)
                band_low.add_metric([room.room], room.band.temperature_low_c)
                setpoint.add_metric([room.room], room.band.setpoint_c)
                humidity_low.add_metric([room.room], room.band.humidity_low_ratio)
        last = GaugeMetricFamily(
            "gradeline_sensor_last_read_timestamp_seconds", "Unix time of the last good reading.", labels=["device"]
        )
        failures = CounterMetricFamily("gradeline_sensor_poll_failures", "Failed polls.", labels=["device"])
        for name, health in sorted(self._poller.health.items()):
            if health.last_ok_t is not None:
                last.add_metric([name], health.last_ok_t + wall_offset_s)
            failures.add_metric([name], health.failures)
        yield from (temperature, humidity, band_high, band_low, setpoint, humidity_low, last, failures)


class AlarmCollector(Collector):
    """Every alarm of the line's engine, whatever its source, and flood counts."""

    def __init__(self, alarms: AlarmEngine) -> None:
        self._alarms = alarms

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        active = GaugeMetricFamily(
            "gradeline_alarm_active", "1 while the alarm is raised (acknowledged or not); 0 otherwise, also when hidden.",
            labels=["alarm", "priority"],
        )
        unacked = GaugeMetricFamily(
            "gradeline_alarm_unacknowledged", "1 while the alarm waits for an acknowledgement.", labels=["alarm", "priority"]
        )
        hidden = GaugeMetricFamily(
            "gradeline_alarm_hidden", "1 while shelved, suppressed by design or out of service.", labels=["alarm", "state"]
        )
        for a in self._alarms.alarms():
            labels = [a.alarm_id, a.definition.priority]
            active.add_metric(labels, 1.0 if a.annunciated else 0.0)
            unacked.add_metric(
                labels, 1.0 if a.state in (AlarmState.UNACKNOWLEDGED, AlarmState.RETURNED_UNACKNOWLEDGED) else 0.0
            )
            if a.state in HIDDEN_STATES:
                hidden.add_metric([a.alarm_id, str(a.state)], 1.0)
        raised = CounterMetricFamily("gradeline_alarms_raised", "Alarms raised since start.")
        raised.add_metric([], self._alarms.raised_total)
        floods = CounterMetricFamily("gradeline_alarm_floods", "Alarm floods (over 10 alarms in 10 minutes) since start.")
        floods.add_metric([], self._alarms.floods_total)
        rate = GaugeMetricFamily("gradeline_alarm_rate", "Alarms raised within the last flood window (10 minutes).")
        rate.add_metric([], self._alarms.flood_rate())
        yield from (active, unacked, hidden, raised, floods, rate)


class CartonCollector(Collector):
    """Cartons closed since start and those out of their class's tolerance, by quality class."""

    def __init__(self, stats: LotStatistics, line: str) -> None:
        self._stats = stats
        self._line = line

    def collect(self) -> Iterator[CounterMetricFamily]:
        closed = CounterMetricFamily("gradeline_cartons_closed", "Cartons closed.", labels=["line", "quality_class"])
        bad = CounterMetricFamily(
            "gradeline_cartons_out_of_tolerance",
            "Closed cartons whose off-grade share or size uniformity is out of the class's tolerance.",
            labels=["line", "quality_class"],
        )
        for quality in sorted(self._stats.cartons_closed):
            closed.add_metric([self._line, quality], self._stats.cartons_closed[quality])
            bad.add_metric([self._line, quality], self._stats.cartons_out_of_tolerance[quality])
        yield closed
        yield bad


def build_registry(
    runtime: LineRuntime,
    sensors: SensorPoller | None = None,
    clock: Callable[[], float] = time.monotonic,
    *,
    alarms: AlarmEngine | None = None,
    coldchain: ColdchainMonitor | None = None,
    lot_stats: LotStatistics | None = None,
) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(LineCollector(runtime, sensors, clock))
    if lot_stats is not None:
        registry.register(CartonCollector(lot_stats, runtime.settings.line_name))
    if sensors is not None:
        registry.register(ColdroomCollector(sensors, coldchain, clock))
    if alarms is not None:
        registry.register(AlarmCollector(alarms))
    ProcessCollector(registry=registry)
    return registry
