"""The vision chain against the simulator's exact truth, on a fixed seed set.

A small version of ``gradeline bench vision-accuracy``: renders fruit at 0.3 mm/px through
SceneRenderer -> FramePipeline -> CupTracker and scores the fused records against CupTruth
(truth is read only by the scorer). The seeds were fixed before the first run.
"""

from __future__ import annotations

import pytest

from simulators.settings import SimulatedCameraSettings, SimulationSettings
from vision.bench import evaluate_accuracy, summarise

CAMERA = SimulatedCameraSettings(blur_px=0.7, noise_sigma=2.0, lighting_drift=0.05)


@pytest.fixture(scope="module")
def figures() -> dict[str, float | int]:
    scores = []
    for product, seed in (("apple", 101), ("apple", 102), ("cherry", 103)):
        sim = SimulationSettings(seed=seed, defect_rate=0.5, empty_cup_rate=0.05, double_fruit_rate=0.03)
        scores.append(evaluate_accuracy(product, seed, 6, camera=CAMERA, simulation=sim))
    result = summarise(scores)
    print("accuracy figures:", result)
    return result


def test_enough_fruit_were_scored(figures: dict[str, float | int]) -> None:
    assert figures["fruit"] >= 60
    assert figures["defects_3mm_truth"] >= 20
    assert figures["clean_fruit"] >= 20


def test_size_and_colour(figures: dict[str, float | int]) -> None:
    assert figures["diameter_mae_mm"] <= 0.5
    assert figures["colour_mae_pp"] <= 3.0


def test_defects(figures: dict[str, float | int]) -> None:
    assert figures["defect_recall_3mm"] >= 0.95
    assert figures["clean_flagged_rate"] <= 0.02
    assert figures["defect_area_mean_rel_err"] <= 0.15


def test_tracking(figures: dict[str, float | int]) -> None:
    assert figures["tracking_one_record_rate"] >= 0.995
    assert figures["spurious_records"] == 0
