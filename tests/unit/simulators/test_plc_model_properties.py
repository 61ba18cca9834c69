"""Property: the PLC model fires exactly what a simple oracle of the contract predicts.

Random interleavings of ring writes (including overwrites and late writes), clock steps and
speed changes. Times are multiples of 1/8 s and speeds whole cups/s, so positions are exact
in binary floating point and the oracle can compare positions exactly.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.plc import PlcModel, ring_word

OFFSETS = {1: 3, 2: 5, 3: 5, 4: 9}  # outlets 2 and 3 share a position: number order breaks the tie
ORDER = sorted(OFFSETS, key=lambda n: (OFFSETS[n], n))
LANES = 2

# a write names a cup relative to the belt: from 10 cups already past inspection (late for some
# outlets) to 6 cups not yet there
write = st.tuples(
    st.just("write"), st.integers(0, LANES - 1), st.integers(-6, 10), st.integers(0, 4)
)
step = st.tuples(st.just("step"), st.integers(1, 8))  # eighths of a second
speed = st.tuples(st.just("speed"), st.integers(0, 12))
ops_strategy = st.lists(st.one_of(write, write, step, step, speed), min_size=10, max_size=120)


class Clock:
    t_s = 0.0

    def __call__(self) -> float:
        return self.t_s


@settings(max_examples=200, deadline=None, derandomize=True)
@given(ops_strategy)
def test_fired_cups_match_the_oracle(ops: list[tuple]) -> None:  # type: ignore[type-arg]
    clock = Clock()
    model = PlcModel(LANES, OFFSETS, 4.0, clock, ring_size=256, watchdog_timeout_s=1e9)
    position, v = 0.0, 4.0
    writes: dict[tuple[int, int], list[tuple[float, int]]] = {}
    for op in ops:
        if op[0] == "write":
            _, lane, back, outlet = op
            cup = max(0, int(position) - back)
            model.write_slot(lane, cup % 256, ring_word(cup, outlet))
            writes.setdefault((lane, cup), []).append((position, outlet))
        elif op[0] == "step":
            clock.t_s += op[1] / 8
            position += v * op[1] / 8
        else:
            model.set_speed(float(op[1]))
            v = float(op[1])
    model.advance()
    assert model.position_cups() == position

    expected = set()
    for (lane, cup), history in writes.items():
        for n in ORDER:
            meet = cup + OFFSETS[n]
            if meet > position:
                break  # not there yet
            # the slot at the meeting holds the last write made strictly before the cup got there
            before = [o for (p, o) in history if p < meet]
            if before and before[-1] == n:
                expected.add((lane, cup, n))
                break
    fired = {(e.lane, e.cup_index, e.outlet) for e in model.drop_log if e.outlet}
    assert fired == expected
    # every cup that passed the last outlet left exactly once: fired or recirculated
    passed = int(position) - max(OFFSETS.values()) + 1 if position >= max(OFFSETS.values()) else 0
    for lane in range(LANES):
        lane_events = [e.cup_index for e in model.drop_log if e.lane == lane]
        assert len(lane_events) == len(set(lane_events))
        assert {c for c in lane_events} >= set(range(passed))
