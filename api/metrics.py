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
from grading.lots.stats import LotStatistics
from grading.runtime import LATENCY_BUCKETS_S, LineRuntime


class LineCollector(Collector):
    def __init__(self, runtime: LineRuntime) -> None:
        self._runtime = runtime

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily]:
        rt = self._runtime
        c = rt.counters
        line = rt.settings.line_name

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            family = CounterMetricFamily(name, doc, labels=["line"])
            family.add_metric([line], value)
            return family

        fruits = CounterMetricFamily(
            "gradeline_fruits", "Fruit graded, by quality class.", labels=["line", "quality_class"]
        )
        for quality, n in sorted(c.by_quality.items()):
            fruits.add_metric([line, quality], n)
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


class ColdroomCollector(Collector):
    """Cold-room sensors: last temperature and humidity, freshness and faults per device."""

    def __init__(self, poller: SensorPoller, clock: Callable[[], float]) -> None:
        self._poller = poller
        self._clock = clock

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        now = self._clock()
        wall_offset_s = time.time() - now  # monotonic -> Unix time, for the timestamp series
        temperature = GaugeMetricFamily(
            "gradeline_coldroom_temperature_celsius", "Last temperature read.", labels=["device"]
        )
        humidity = GaugeMetricFamily(
            "gradeline_coldroom_relative_humidity_ratio", "Last relative humidity read (0-1).", labels=["device"]
        )
        up = GaugeMetricFamily("gradeline_sensor_up", "1 while the sensor's readings are fresh.", labels=["device"])
        last = GaugeMetricFamily(
            "gradeline_sensor_last_read_timestamp_seconds", "Unix time of the last good reading.", labels=["device"]
        )
        failures = CounterMetricFamily("gradeline_sensor_poll_failures", "Failed polls.", labels=["device"])
        for name, health in sorted(self._poller.health.items()):
            reading = health.last_reading
            if reading is not None and reading.temperature_celsius is not None:
                temperature.add_metric([name], reading.temperature_celsius)
            if reading is not None and reading.relative_humidity_ratio is not None:
                humidity.add_metric([name], reading.relative_humidity_ratio)
            up.add_metric([name], 1.0 if health.is_up(now) else 0.0)
            if health.last_ok_t is not None:
                last.add_metric([name], health.last_ok_t + wall_offset_s)
            failures.add_metric([name], health.failures)
        yield from (temperature, humidity, up, last, failures)


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
    lot_stats: LotStatistics | None = None,
) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(LineCollector(runtime))
    if lot_stats is not None:
        registry.register(CartonCollector(lot_stats, runtime.settings.line_name))
    if sensors is not None:
        registry.register(ColdroomCollector(sensors, clock))
    ProcessCollector(registry=registry)
    return registry
