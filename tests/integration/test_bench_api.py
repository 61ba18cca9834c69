"""`gradeline bench api` runs end to end and reports its figures in the last JSON line (no figure is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_bench_api_prints_latency_and_the_lines_counts_with_and_without_load() -> None:
    result = subprocess.run(
        [
            sys.executable, "-m", "api.cli", "bench", "api", "--json", "--rps", "40", "--seconds", "1.5",
            "--lanes", "2", "--warmup-seconds", "0.5",
        ],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    last = json.loads(result.stdout.splitlines()[-1])
    assert last["bench"] == "api" and last["endpoint"] == "GET /api/v1/line"
    assert last["requests"] == 60 and last["errors"] == 0
    for key in ("rps", "p99_ms", "baseline_late", "baseline_weights_missing", "load_late", "load_weights_missing"):
        assert key in last
    assert last["p99_ms"] > 0 and last["baseline_fruit_per_s"] > 0
