"""``gradeline vision measure|train`` and ``gradeline bench quality`` run as a user runs them:
the real entry point in a subprocess, on photos written to a temporary folder."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def gradeline(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def fruit_photo(
    axes_px: tuple[int, int] = (100, 80), *, size_wh: tuple[int, int] = (320, 260), wrinkles: int = 0
) -> np.ndarray:
    """A red, sphere-shaded ellipse on white; ``wrinkles`` adds fine lightness creases."""
    width, height = size_wh
    image = np.full((height, width, 3), 255, np.uint8)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    r2 = ((xx - width / 2) / axes_px[0]) ** 2 + ((yy - height / 2) / axes_px[1]) ** 2
    shade = np.sqrt(np.clip(1 - r2, 0, 1)) * 0.35 + 0.65
    if wrinkles:
        shade *= 1 - 0.12 * (np.sin(xx / width * wrinkles * 2 * np.pi) > 0.7)
    body = (shade[..., None] * np.array([40, 50, 200], np.float32)).clip(0, 255).astype(np.uint8)
    image[r2 < 1] = body[r2 < 1]
    cv2.circle(image, (int(width / 2 - 25), int(height / 2 - 20)), 5, (250, 250, 250), -1, cv2.LINE_AA)
    return image


def test_measure_reports_known_sizes_in_mm(tmp_path: Path) -> None:
    photo = tmp_path / "apple.png"
    cv2.imwrite(str(photo), fruit_photo((100, 80)))
    result = gradeline("vision", "measure", str(photo), "--mm-per-px", "0.4", "--json")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 1
    record = records[0]
    assert record["file"] == str(photo)
    assert record["fruit"] == 0
    assert record["diameter_major_mm"] == pytest.approx(2 * 100 * 0.4, rel=0.03)
    assert record["diameter_minor_mm"] == pytest.approx(2 * 80 * 0.4, rel=0.03)
    assert record["area_cm2"] == pytest.approx(np.pi * 40 * 32 / 100, rel=0.05)
    assert record["colour_fractions"]["red"] > 0.8
    assert record["scale_source"] == "--mm-per-px"
    assert "cut_by_image_edge" not in record["flags"]
    for key in ("defect_count", "defect_area_cm2", "flags"):
        assert key in record


def test_measure_without_scale_says_which_scale_it_assumed(tmp_path: Path) -> None:
    photo = tmp_path / "apple.png"
    cv2.imwrite(str(photo), fruit_photo((100, 80)))
    result = gradeline("vision", "measure", str(photo), "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout.splitlines()[0])
    assert record["scale_source"] == "demo-default"
    assert record["mm_per_px"] == 0.8
    assert "demo line" in result.stderr


def test_measure_reports_bad_files_and_carries_on(tmp_path: Path) -> None:
    good_a, good_b = tmp_path / "a.png", tmp_path / "b.jpg"
    cv2.imwrite(str(good_a), fruit_photo((90, 70)))
    cv2.imwrite(str(good_b), fruit_photo((70, 60)))
    text = tmp_path / "notes.txt"
    text.write_text("not an image\n")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    missing = tmp_path / "missing.jpg"

    result = gradeline(
        "vision", "measure", str(good_a), str(text), str(missing), str(empty), str(good_b), "--mm-per-px", "0.5", "--json"
    )

    assert result.returncode == 1
    files = [json.loads(line)["file"] for line in result.stdout.splitlines()]
    assert files == [str(good_a), str(good_b)]  # both good photos, in order, despite the bad ones between
    for bad in (text, missing, empty):
        assert str(bad) in result.stderr
    assert "No such file" in result.stderr
    assert "3 of 5" in result.stderr


def test_measure_fruit_cut_by_a_close_crop_is_flagged(tmp_path: Path) -> None:
    photo = tmp_path / "crop.png"
    full = fruit_photo((100, 80), size_wh=(320, 260))
    cv2.imwrite(str(photo), full[60:200, 40:280])  # cuts the top and bottom of the fruit
    result = gradeline("vision", "measure", str(photo), "--mm-per-px", "0.4", "--json")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 1
    assert "cut_by_image_edge" in records[0]["flags"]
    assert records[0]["diameter_major_mm"] == pytest.approx(80, rel=0.05)


def _labelled_set(folder: Path) -> Path:
    """Smooth fruit graded good, increasingly wrinkled fruit graded worse."""
    rows = []
    wrinkles_by_grade = {1: 0, 2: 0, 3: 4, 8: 12, 9: 15, 10: 18}
    for grade, wrinkles in wrinkles_by_grade.items():
        for k, axes in enumerate([(100, 80), (90, 75), (105, 85), (95, 70)]):
            name = f"photos/g{grade}_{k}.png"
            (folder / "photos").mkdir(exist_ok=True)
            cv2.imwrite(str(folder / name), fruit_photo(axes, wrinkles=wrinkles + k % 2))
            # every photo is a different fruit, which the group column says
            rows.append({"path": name, "folder": "x", "grade": grade, "group": f"fruit-{grade}-{k}"})
    labels = folder / "labels.csv"
    with labels.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "folder", "grade", "group"])
        writer.writeheader()
        writer.writerows(rows)
    return labels


def test_train_then_measure_with_the_model(tmp_path: Path) -> None:
    labels = _labelled_set(tmp_path)
    model = tmp_path / "model.json"
    trained = gradeline("vision", "train", "--labels", str(labels), "--out", str(model), "--variety", "test", "--json")
    assert trained.returncode == 0, trained.stderr
    summary = json.loads(trained.stdout.splitlines()[-1])
    assert summary["photos"] == 24 and summary["photos_left_out"] == 0
    stored = json.loads(model.read_text())
    assert stored["format_version"] == 3
    assert stored["notes"]["variety"] == "test"

    smooth, wrinkled = tmp_path / "smooth.png", tmp_path / "wrinkled.png"
    cv2.imwrite(str(smooth), fruit_photo((98, 78)))
    cv2.imwrite(str(wrinkled), fruit_photo((98, 78), wrinkles=16))
    measured = gradeline("vision", "measure", str(smooth), str(wrinkled), "--model", str(model), "--mm-per-px", "0.4", "--json")
    assert measured.returncode == 0, measured.stderr
    by_file = {json.loads(line)["file"]: json.loads(line) for line in measured.stdout.splitlines()}
    good, bad = by_file[str(smooth)], by_file[str(wrinkled)]
    assert 0.0 <= good["quality_score"] < bad["quality_score"] <= 1.0
    assert good["predicted_grade"] <= 3 and bad["predicted_grade"] >= 8


def test_train_leaves_out_unreadable_photos_and_says_so(tmp_path: Path) -> None:
    labels = _labelled_set(tmp_path)
    with labels.open("a", newline="") as handle:
        handle.write("photos/gone.png,x,5,gone\n")
    trained = gradeline("vision", "train", "--labels", str(labels), "--out", str(tmp_path / "m.json"), "--json")
    assert trained.returncode == 0, trained.stderr
    assert "gone.png" in trained.stderr
    assert json.loads(trained.stdout.splitlines()[-1])["photos_left_out"] == 1


def test_train_refuses_a_label_file_without_grades(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("path,quality\na.png,good\n")
    result = gradeline("vision", "train", "--labels", str(labels), "--out", str(tmp_path / "m.json"))
    assert result.returncode == 2
    assert "grade" in result.stderr
    assert not (tmp_path / "m.json").exists()


def test_measure_refuses_a_bad_model(tmp_path: Path) -> None:
    photo = tmp_path / "a.png"
    cv2.imwrite(str(photo), fruit_photo())
    model = tmp_path / "model.json"
    model.write_text('{"format": "gradeline-quality-model", "format_version": 99}')
    result = gradeline("vision", "measure", str(photo), "--model", str(model))
    assert result.returncode == 2
    assert "format version" in result.stderr


def test_bench_quality_prints_json_last(tmp_path: Path) -> None:
    labels = _labelled_set(tmp_path)
    result = gradeline("bench", "quality", "--labels", str(labels), "--folds", "4")
    assert result.returncode == 0, result.stderr
    last = json.loads(result.stdout.splitlines()[-1])
    assert last["bench"] == "quality" and last["folds"] == 4 and last["photos"] == 24
    assert len(last["roc_auc_per_fold"]) == 4 and len(last["spearman_per_fold"]) == 4
    assert 0.0 <= last["roc_auc_1_3_vs_8_10"] <= 1.0
    assert last["spearman"] > 0.5  # wrinkles are the only thing that differs, and they are learnable
    assert last["train_s_median"] > 0
    assert "baseline_colour_only" in last


TOMATOES = REPO.parent / "shared" / "datasets" / "fgrade_tomato_dev"


def test_measure_real_close_cropped_photos_finds_one_fruit_each() -> None:
    """Real photos: white background, fruit touching the edges, highlights that look white."""
    assert TOMATOES.is_dir(), f"dataset missing at {TOMATOES}"
    photos = [sorted((TOMATOES / "images" / str(folder)).glob("*.jpg"))[0] for folder in range(10)]
    result = gradeline("vision", "measure", *map(str, photos), "--mm-per-px", "0.3", "--json")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["file"] for r in records] == [str(p) for p in photos]
    for record in records:
        image = cv2.imread(record["file"])
        # The fruit fills most of a close crop; a fragment or the background would not.
        frame_cm2 = image.shape[0] * image.shape[1] * 0.3**2 / 100
        assert 0.55 * frame_cm2 < record["area_cm2"] < 0.98 * frame_cm2


def test_bench_quality_is_grouped_by_fruit_and_reports_the_baseline_from_the_same_folds(tmp_path: Path) -> None:
    labels = _labelled_set(tmp_path)
    grouped = json.loads(gradeline("bench", "quality", "--labels", str(labels), "--folds", "4", "--json").stdout.splitlines()[-1])
    assert grouped["protocol"].startswith("grouped by fruit (24 fruit, from the label file's group column")
    assert set(grouped["baseline_colour_only"]) >= {"roc_auc_1_3_vs_8_10", "spearman", "roc_auc_per_fold", "spearman_per_fold"}
    assert len(grouped["baseline_colour_only"]["spearman_per_fold"]) == 4
    low, high = grouped["pooled_spearman_95ci"]
    assert low <= grouped["pooled_spearman"] <= high
    stratified = gradeline("bench", "quality", "--labels", str(labels), "--folds", "4", "--protocol", "stratified", "--json")
    assert json.loads(stratified.stdout.splitlines()[-1])["protocol"].startswith("stratified")


def test_train_states_a_grouped_estimate_with_an_interval_not_a_promise(tmp_path: Path) -> None:
    labels = _labelled_set(tmp_path)
    trained = gradeline("vision", "train", "--labels", str(labels), "--out", str(tmp_path / "m.json"))
    assert trained.returncode == 0, trained.stderr
    assert "expected" not in trained.stdout and "new photos" not in trained.stdout
    assert "grouped 5-fold cross-validation" in trained.stdout and "95 % interval" in trained.stdout
    assert "colour-only baseline, same folds" in trained.stdout
    assert "24 of 24 photo(s) usable" in trained.stderr


def test_measure_says_which_photos_were_usable(tmp_path: Path) -> None:
    good, empty = tmp_path / "good.png", tmp_path / "empty.png"
    cv2.imwrite(str(good), fruit_photo())
    wood = np.full((260, 320, 3), (60, 95, 140), np.uint8)
    wood[:] = np.clip(wood + (np.sin(np.arange(260) / 3.0)[:, None, None] * 12), 0, 255).astype(np.uint8)
    cv2.imwrite(str(empty), wood)
    result = gradeline("vision", "measure", str(good), str(empty), "--mm-per-px", "0.4", "--json")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["file"] for line in result.stdout.splitlines()] == [str(good)]
    assert f"{empty}: no fruit measured" in result.stderr
    assert "1 of 2 photo(s) usable" in result.stderr


def test_measure_takes_the_scale_from_a_checkerboard_in_the_photo(tmp_path: Path) -> None:
    photo = np.full((600, 900, 3), 235, np.uint8)
    cv2.ellipse(photo, (620, 300), (150, 130), 0, 0, 360, (40, 50, 200), -1, cv2.LINE_AA)
    cv2.rectangle(photo, (48, 138), (48 + 9 * 24, 138 + 7 * 24), (255, 255, 255), -1)
    for row in range(6):
        for col in range(8):
            if (row + col) % 2 == 0:
                photo[150 + row * 24 : 174 + row * 24, 60 + col * 24 : 84 + col * 24] = 0
    path = tmp_path / "board.png"
    cv2.imwrite(str(path), photo)
    result = gradeline("vision", "measure", str(path), "--reference", "checkerboard:7x5:10", "--json")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 1  # the board is the reference, not a fruit
    assert records[0]["scale_source"] == "checkerboard 7x5 @ 10 mm"
    assert records[0]["mm_per_px"] == pytest.approx(10 / 24, rel=0.01)
    assert records[0]["diameter_major_mm"] == pytest.approx(300 * 10 / 24, rel=0.02)
    missing = gradeline("vision", "measure", str(tmp_path / "board.png"), "--reference", "checkerboard:9x6:10", "--json")
    assert "the reference was not found" in missing.stderr and missing.stdout == ""
    assert gradeline("vision", "measure", str(path), "--reference", "coin").returncode == 2
