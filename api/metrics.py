"""Prometheus collector over the line runtime's counters, read at scrape time.

Names follow Prometheus conventions: ``gradeline_`` prefix, base units, ``_total`` counters,
no per-fruit labels.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from grading.runtime import LineRuntime


class LineCollector(Collector):
    def __init__(self, runtime: LineRuntime) -> None:
        self._runtime = runtime

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
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
        yield counter("gradeline_weighing_failures", "Cups whose weight could not be read.", c.weigh_failures_total)
        yield counter("gradeline_plc_errors", "Failed PLC polls.", c.plc_errors_total)
        yield counter("gradeline_fruit_weight_grams", "Sum of graded fruit weights.", c.weight_g_sum)
        yield counter("gradeline_records_written", "Rows committed to the store.", rt.writer.rows_written)
        running = GaugeMetricFamily("gradeline_line_running", "1 while the line grades fruit.", labels=["line"])
        running.add_metric([line], 1.0 if rt.intake else 0.0)
        yield running
        rate = GaugeMetricFamily("gradeline_fruit_rate_per_second", "Fruit graded per second (5 s window).", labels=["line"])
        rate.add_metric([line], rt.fruit_per_second())
        yield rate


def build_registry(runtime: LineRuntime) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(LineCollector(runtime))
    ProcessCollector(registry=registry)
    return registry
