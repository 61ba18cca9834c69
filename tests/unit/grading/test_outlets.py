"""Outlet assignment: routing by role and class, load balancing, full outlets, recirculation."""

from __future__ import annotations

from collections import Counter

import pytest

from api.config import LineConfig, OutletSettings
from grading.grader import GradeResult
from grading.outlets import OutletAssigner
from grading.recipe import load_recipe


def result(quality: str, size: str | None = None) -> GradeResult:
    return GradeResult(quality, size, ())


def demo() -> OutletAssigner:
    return OutletAssigner(LineConfig().outlets)


@pytest.mark.parametrize(
    ("quality", "outlet"),
    [("extra", 1), ("class_i", 2), ("class_ii", 3), ("recheck", 4), ("cull", 5)],
)
def test_demo_line_routes_each_class(quality: str, outlet: int) -> None:
    assert demo().assign(result(quality, "75-80"), []) == outlet


def test_full_outlet_recirculates_when_it_is_the_only_one() -> None:
    assigner = demo()
    assert assigner.assign(result("extra"), [True]) == 0
    assert assigner.assign(result("class_i"), [True]) == 2  # only outlet 1 is full
    assert assigner.assign(result("recheck"), [False, False, False, True, False]) == 0
    assert assigner.assigned_counts == {1: 0, 2: 1, 3: 0, 4: 0, 5: 0}


def test_unknown_class_recirculates() -> None:
    assert demo().assign(result("premium"), []) == 0


def two_extra_outlets() -> list[OutletSettings]:
    return [
        OutletSettings(number=1, offset_cups=5, quality_classes=["extra"]),
        OutletSettings(number=2, offset_cups=6, quality_classes=["extra"]),
        OutletSettings(number=3, offset_cups=7, quality_classes=["extra"], size_classes=["90+"]),
        OutletSettings(number=4, offset_cups=8),  # takes any quality and size
        OutletSettings(number=5, offset_cups=9, role="cull"),
        OutletSettings(number=6, offset_cups=10, role="cull"),
    ]


def test_balances_over_candidates_in_order() -> None:
    assigner = OutletAssigner(two_extra_outlets())
    got = [assigner.assign(result("extra", "75-80"), []) for _ in range(6)]
    # Outlets 1, 2 and the catch-all 4 take extra 75-80; ties go to the earlier-listed outlet.
    assert got == [1, 2, 4, 1, 2, 4]


def test_balancing_skips_full_and_catches_up_after() -> None:
    assigner = OutletAssigner(two_extra_outlets())
    full_1 = [True]
    got = [assigner.assign(result("extra", "75-80"), full_1) for _ in range(4)]
    assert got == [2, 4, 2, 4]
    # Outlet 1 empties: it is the least loaded and catches up, then ties go to the first listed.
    got = [assigner.assign(result("extra", "75-80"), []) for _ in range(5)]
    assert got == [1, 1, 1, 2, 4]


def test_size_filter() -> None:
    assigner = OutletAssigner(two_extra_outlets())
    got = Counter(assigner.assign(result("extra", "90+"), []) for _ in range(8))
    assert got == {1: 2, 2: 2, 3: 2, 4: 2}
    # A fruit without a size class only goes to outlets without a size filter.
    assert assigner.candidates("extra", None) == (0, 1, 3)
    # class_i goes only to the catch-all pack outlet, never to a cull outlet.
    assert {assigner.assign(result("class_i", "90+"), []) for _ in range(3)} == {4}


def test_cull_balances_over_cull_outlets_and_recheck_without_outlet_recirculates() -> None:
    assigner = OutletAssigner(two_extra_outlets())
    assert [assigner.assign(result("cull"), []) for _ in range(4)] == [5, 6, 5, 6]
    assert assigner.assign(result("recheck"), []) == 0


def test_full_sequence_longer_than_outlets_and_reset() -> None:
    assigner = demo()
    assert assigner.assign(result("extra"), [False] * 20) == 1
    assigner.reset_counts()
    assert assigner.assigned_counts == {n: 0 for n in range(1, 6)}


def test_duplicate_outlet_numbers_rejected() -> None:
    outlets = [OutletSettings(number=1, offset_cups=5), OutletSettings(number=1, offset_cups=6)]
    with pytest.raises(ValueError, match="unique"):
        OutletAssigner(outlets)


def test_coverage_of_demo_line_with_apple_recipe() -> None:
    assert demo().coverage_issues(load_recipe("apple")) == []


def test_coverage_reports_gaps_and_unknown_classes() -> None:
    outlets = [
        OutletSettings(number=1, offset_cups=5, quality_classes=["extra"], size_classes=["JJ", "XL"]),
        OutletSettings(number=2, offset_cups=6, quality_classes=["premium"]),
        OutletSettings(number=3, offset_cups=7, role="cull"),
    ]
    issues = OutletAssigner(outlets).coverage_issues(load_recipe("cherry"))
    assert "outlet 1: recipe 'cherry' has no size class 'XL'" in issues
    assert "outlet 2: recipe 'cherry' has no quality class 'premium'" in issues
    assert "no recheck outlet: recheck fruit will recirculate" in issues
    assert "no outlet takes quality extra with size J" in issues
    assert "no outlet takes quality extra with size JJ" not in issues
    assert "no outlet takes quality class_i with no size class" in issues


def test_a_group_is_balanced_by_fill_an_emptied_carton_fills_first() -> None:
    from grading.grader import GradeResult
    from grading.outlets import OutletAssigner

    assigner = OutletAssigner([
        OutletSettings(number=1, offset_cups=6, quality_classes=["extra"]),
        OutletSettings(number=2, offset_cups=8, quality_classes=["extra"]),
    ])
    extra = GradeResult("extra", "75-80", ())
    assert [assigner.assign(extra, ()) for _ in range(4)] == [1, 2, 1, 2]
    assigner.carton_swapped([2])  # outlet 2's carton was closed: the empty one fills first
    assert [assigner.assign(extra, ()) for _ in range(3)] == [2, 2, 1]
    assert [assigner.assign(extra, (False, True)) for _ in range(2)] == [1, 1]  # 2 full: the next of its group
    assert assigner.assign(extra, (True, True)) == 0  # the whole group full: recirculate
    assert assigner.assigned_counts == {1: 5, 2: 4}
