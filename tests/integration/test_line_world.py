"""The line as its own process, real drivers, against the simulated world: scored by its truth.

These run the benchmarks' harness (``gradeline bench line`` and ``bench crash``) briefly.
They assert what must hold on any machine however busy (no mis-sort, no lost or doubled
record, no wrong weight, every cup sorted at an outlet has its record); how many decisions
were late or weights missing depends on the machine and is the benchmarks' to report.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from api.cli.bench_crash import run_crash_bench
from api.cli.bench_line import run_bench

pytestmark = pytest.mark.slow


def test_a_short_run_is_scored_clean_against_the_worlds_truth(tmp_path: Path) -> None:
    result = run_bench(lanes=4, cups_per_second=10.0, seconds=8.0, keep=tmp_path)
    assert result["fruit_offered"] > 150
    # vision finds every fruit the belt offered that it saw whole
    assert result["fruit_recorded"] >= 0.98 * result["fruit_offered"]
    assert result["mis_sorts"] == 0
    assert result["lost_records"] == 0
    assert result["duplicate_records"] == 0
    assert result["wrong_weights"] == 0
    assert result["decisions_timed"] > 0  # the world's ring-write log matched the records


def test_ten_sigkills_lose_no_record_of_a_sorted_fruit_and_double_none(tmp_path: Path) -> None:
    # kills 0.3-1.5 s into grading (the bench's default window is 0.5-3 s): the same moments
    # that matter, mid-frame and mid-commit, in less suite time
    result = run_crash_bench(cycles=10, lanes=4, cups_per_second=10.0, min_run_s=0.3, max_run_s=1.5, keep=tmp_path, seed=7)
    assert result["cycles"] == 10
    assert result["cups_dropped_at_outlets"] > 100
    assert result["dropped_without_record"] == 0
    assert result["duplicate_records"] == 0
