"""The whole simulated line in-process, scored against the simulator's ground truth.

The line sees only pixels and scale readings; the test then compares what was recorded with the
fruit the simulator actually put in each cup, and what the PLC model actually fired.
"""

from __future__ import annotations

import asyncio
import statistics
from pathlib import Path

import pytest
from sqlalchemy import select

from api.compose import open_line
from api.config import parse_config
from grading.schema import fruit

pytestmark = pytest.mark.slow


def test_records_weights_and_drops_match_ground_truth(tmp_path: Path, until) -> None:  # type: ignore[no-untyped-def]
    config = parse_config(
        {
            "line": {"lanes": 2, "cups_per_second": 6.0},
            "camera": {"geometry": {"height_px": 320, "fps": 12.0}},
            "database": {"url": f"sqlite:///{tmp_path}/line.db"},
            "simulation": {"seed": 11},
        }
    )

    async def scenario():  # type: ignore[no-untyped-def]
        async with open_line(config) as handle:
            runtime, sim = handle.runtime, handle.simulation
            assert sim is not None and sim.plc_model is not None
            await until(lambda: runtime.counters.fruit_total >= 80, 90, "80 graded fruit")
            await runtime.stop_intake()
            # Keep the line (and its PLC heartbeat) alive until every decided cup has passed the
            # last outlet, so the PLC model's drop log is complete for them.
            stop_position = sim.plc_model.position_cups()
            last_offset = max(o.offset_cups for o in config.outlets)
            await until(lambda: sim.plc_model.position_cups() > stop_position + last_offset + 1, 30, "belt travel")
            sim.plc_model.advance()
            handle.writer.flush(30)
            with handle.engine.connect() as conn:
                rows = conn.execute(select(fruit)).mappings().all()
            return rows, list(sim.plc_model.drop_log), sim.conveyor, runtime.counters

    rows, drops, conveyor, counters = asyncio.run(scenario())
    assert len(rows) == counters.fruit_total >= 80

    # 1. Exactly one record per fruit-carrying cup the line graded; never a record for an empty cup.
    cups = [(r["lane"], r["cup_index"]) for r in rows]
    assert len(set(cups)) == len(cups), "a cup was recorded twice"
    truths = {c: conveyor.cup(*c) for c in cups}
    assert all(truths[c].fruit for c in cups), "a record for an empty cup"

    # 2. Every cup weighed after intake started has a weight (the first cups had already passed
    # the load cell), and each record carries its own cup's weight: neighbouring cups differ by
    # tens of grams, the simulated load cell's noise is 0.4 g.
    first_weighed = min(r["cup_index"] for r in rows if r["weight_g"] is not None)
    weighed = [r for r in rows if r["cup_index"] > first_weighed]
    assert all(r["weight_g"] is not None for r in weighed)
    single = [r for r in weighed if len(truths[(r["lane"], r["cup_index"])].fruit) == 1]
    errors_g = [abs(r["weight_g"] - truths[(r["lane"], r["cup_index"])].weight_g) for r in single]
    assert len(single) >= 0.9 * len(weighed) and len(single) >= 40
    assert max(errors_g) < 3.0

    # 3. Sizes measured from pixels agree with the fruit really in that cup.
    errors_mm = [
        abs(r["diameter_major_mm"] - truths[(r["lane"], r["cup_index"])].fruit[0].diameter_major_mm) for r in single
    ]
    assert statistics.median(errors_mm) < 1.5

    # 4. The PLC fired every written decision at the decided outlet, and nothing else.
    fired = {(d.lane, d.cup_index): d.outlet for d in drops if d.outlet != 0}
    decided = {(r["lane"], r["cup_index"]): r["outlet"] for r in rows if not r["late"] and r["outlet"] != 0}
    assert decided, "no decision landed in time"
    assert {c: fired.get(c) for c in decided} == decided
    assert set(fired) <= set(decided)
