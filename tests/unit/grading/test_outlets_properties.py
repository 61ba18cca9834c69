"""Property tests for outlet assignment: never a full or wrong outlet, 0 only when forced, balanced."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from grading.config import OutletSettings
from grading.grader import GradeResult
from grading.outlets import OutletAssigner

QUALITIES = ["extra", "class_i", "class_ii", "cull", "recheck"]
SIZES = ["S", "M", "L", None]


@st.composite
def outlets(draw: st.DrawFn) -> list[OutletSettings]:
    count = draw(st.integers(1, 8))
    numbers = draw(st.lists(st.integers(1, 12), min_size=count, max_size=count, unique=True))
    found = []
    for number in numbers:
        role = draw(st.sampled_from(["pack", "pack", "recheck", "cull"]))
        found.append(
            OutletSettings(
                number=number,
                offset_cups=number + 4,
                role=role,
                quality_classes=draw(st.lists(st.sampled_from(QUALITIES[:3]), max_size=2, unique=True)),
                size_classes=draw(st.lists(st.sampled_from(SIZES[:3]), max_size=2, unique=True)),
            )
        )
    return found


def accepts(outlet: OutletSettings, quality: str, size: str | None) -> bool:
    """The routing rule, stated independently of the assigner."""
    if quality in ("cull", "recheck"):
        return outlet.role == quality
    return (
        outlet.role == "pack"
        and (not outlet.quality_classes or quality in outlet.quality_classes)
        and (not outlet.size_classes or size in outlet.size_classes)
    )


fruit_stream = st.lists(
    st.tuples(st.sampled_from(QUALITIES), st.sampled_from(SIZES), st.lists(st.booleans(), max_size=12)),
    min_size=1,
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(outlets(), fruit_stream)
def test_assignment_is_valid_and_recirculates_only_when_forced(
    configured: list[OutletSettings], stream: list[tuple[str, str | None, list[bool]]]
) -> None:
    assigner = OutletAssigner(configured)
    by_number = {o.number: o for o in configured}
    for quality, size, full in stream:

        def is_full(number: int, full: list[bool] = full) -> bool:
            return number <= len(full) and full[number - 1]

        open_candidates = [o for o in configured if accepts(o, quality, size) and not is_full(o.number)]
        got = assigner.assign(GradeResult(quality, size, ()), full)
        if got == 0:
            assert open_candidates == []
        else:
            assert accepts(by_number[got], quality, size)
            assert not is_full(got)
    assert sum(assigner.assigned_counts.values()) == sum(
        1 for q, s, f in stream if any(accepts(o, q, s) and not (o.number <= len(f) and f[o.number - 1]) for o in configured)
    )


@settings(max_examples=200, deadline=None)
@given(outlets(), st.sampled_from(QUALITIES), st.sampled_from(SIZES), st.integers(1, 50))
def test_load_is_balanced_when_nothing_is_full(
    configured: list[OutletSettings], quality: str, size: str | None, fruit_count: int
) -> None:
    assigner = OutletAssigner(configured)
    for _ in range(fruit_count):
        assigner.assign(GradeResult(quality, size, ()), [])
    counts = assigner.assigned_counts
    taking = [counts[o.number] for o in configured if accepts(o, quality, size)]
    if taking:
        assert sum(taking) == fruit_count
        assert max(taking) - min(taking) <= 1
    else:
        assert sum(counts.values()) == 0
