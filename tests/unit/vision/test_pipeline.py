"""Frame pipeline on synthetic images of exactly known geometry and colour."""

from __future__ import annotations

import dataclasses
import threading

import cv2
import numpy as np
import pytest

from vision.colour import CANONICAL_CLASSES
from vision.pipeline import FramePipeline, QualityScoring, VisionSettings
from vision.quality import QualityModel


def _lab_to_bgr(lab: tuple[float, float, float]) -> tuple[float, float, float]:
    bgr = cv2.cvtColor(np.array([[lab]], np.float32), cv2.COLOR_Lab2BGR)[0, 0] * 255.0
    return float(bgr[0]), float(bgr[1]), float(bgr[2])


def _paint_ellipse(
    img: np.ndarray, cx: float, cy: float, semi_x: float, semi_y: float, bgr: tuple[float, float, float]
) -> None:
    """Exact anti-aliased ellipse: coverage from 8x8 supersampling (cv2.ellipse draws ~1 % large)."""
    ss = 8
    y0, y1 = int(cy - semi_y - 2), int(cy + semi_y + 3)
    x0, x1 = int(cx - semi_x - 2), int(cx + semi_x + 3)
    ys = (np.arange(y0 * ss, y1 * ss) + 0.5) / ss - 0.5
    xs = (np.arange(x0 * ss, x1 * ss) + 0.5) / ss - 0.5
    inside = ((xs[None, :] - cx) / semi_x) ** 2 + ((ys[:, None] - cy) / semi_y) ** 2 < 1.0
    cover = inside.reshape(y1 - y0, ss, x1 - x0, ss).mean(axis=(1, 3))[..., None]
    region = img[y0:y1, x0:x1].astype(np.float64)
    img[y0:y1, x0:x1] = np.round(region * (1 - cover) + np.array(bgr) * cover).astype(np.uint8)


def _frame(background: tuple[int, int, int] = (40, 42, 46)) -> np.ndarray:
    img = np.empty((400, 800, 3), np.uint8)
    img[:] = background
    return img


SETTINGS = VisionSettings(mm_per_px=0.5, lanes=2, colour_classes=CANONICAL_CLASSES["apple"])


@pytest.mark.parametrize("background", [(40, 42, 46), (235, 235, 235)])
def test_ellipse_size_and_colour_on_uniform_background(background: tuple[int, int, int]) -> None:
    img = _frame(background)
    # a red ellipse 80 mm across (x) and 70 mm tall (y) in lane 0, drawn with sub-pixel precision
    _paint_ellipse(img, 300.0, 100.0, 80.0, 70.0, _lab_to_bgr((42, 52, 28)))
    views = FramePipeline(SETTINGS).measure(img)
    assert len(views) == 1
    v = views[0]
    assert v.lane == 0 and "edge" not in v.flags
    assert v.equatorial_mm == pytest.approx(80.0, abs=0.6)
    assert v.polar_mm == pytest.approx(70.0, abs=0.6)
    assert v.diameter_major_mm == pytest.approx(80.0, abs=0.6)
    assert v.colour_fractions["red"] == pytest.approx(1.0, abs=0.01)
    assert v.defect_count == 0
    assert v.x_px == pytest.approx(300.0, abs=0.5) and v.y_px == pytest.approx(100.0, abs=0.5)


def test_half_and_half_colour_and_a_defect() -> None:
    img = _frame()
    centre = (400, 300)
    cv2.circle(img, centre, 70, _lab_to_bgr((42, 52, 28)), -1)
    # right half yellow: on a sphere the surface shares of the two halves are equal
    half = np.zeros(img.shape[:2], np.uint8)
    cv2.circle(half, centre, 70, 255, -1)
    half[:, :400] = 0
    img[half > 0] = _lab_to_bgr((78, 3, 60))
    cv2.circle(img, (380, 300), 8, _lab_to_bgr((18, 1, 3)), -1)  # dark spot near the centre
    v = FramePipeline(SETTINGS).measure(img)[0]
    assert v.lane == 1
    assert v.colour_fractions["yellow"] == pytest.approx(0.5 * (1 - v.colour_fractions.get("none", 0)), abs=0.03)
    assert v.defect_count == 1
    # 8 px radius at 0.5 mm/px near the centre of a 35 mm sphere: ~50 mm2 of surface
    assert v.defect_area_cm2 == pytest.approx(np.pi * 4.0**2 / 100, rel=0.15)


def test_edge_flag_and_learned_background() -> None:
    bg = _frame()
    bg[:, :, 0] = np.linspace(20, 90, 800, dtype=np.uint8)[None, :]  # strong gradient
    img = bg.copy()
    cv2.circle(img, (20, 100), 60, _lab_to_bgr((62, -28, 48)), -1)  # cut by the left edge
    _paint_ellipse(img, 500.0, 300.0, 60.0, 60.0, _lab_to_bgr((62, -28, 48)))
    pipe = FramePipeline(SETTINGS)
    pipe.learn_background([bg, bg])
    views = sorted(pipe.measure(img), key=lambda v: v.x_px)
    assert len(views) == 2
    assert "edge" in views[0].flags and "edge" not in views[1].flags
    assert views[1].diameter_major_mm == pytest.approx(60.0, abs=0.5)


def test_measure_is_thread_safe() -> None:
    img = _frame()
    cv2.circle(img, (300, 100), 60, _lab_to_bgr((42, 52, 28)), -1)
    pipe = FramePipeline(SETTINGS)
    expected = pipe.measure(img)
    results: list[object] = []

    def work() -> None:
        for _ in range(5):
            results.append(pipe.measure(img))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r == expected for r in results) and len(results) == 15


def test_quality_model_scores_each_fruit_once_from_the_middle_of_the_frame(lightness_model: QualityModel) -> None:
    img = _frame()
    dark, light = (40.0, 50.0, 30.0), (70.0, 40.0, 40.0)  # CIELAB
    _paint_ellipse(img, 300.0, 100.0, 60.0, 55.0, _lab_to_bgr(dark))  # lane 0, in the window
    _paint_ellipse(img, 620.0, 100.0, 60.0, 55.0, _lab_to_bgr(dark))  # lane 0, outside it
    _paint_ellipse(img, 330.0, 300.0, 60.0, 55.0, _lab_to_bgr(light))  # lane 1, in the window
    model = lightness_model
    # without a belt position: the whole views within half a pitch past x = 250
    pipeline = FramePipeline(SETTINGS, QualityScoring(model, 250.0, 300.0, 700.0))
    scored = {round(v.x_px): v.quality_score for v in pipeline.measure(img)}
    assert scored[620] is None
    # the model's own score of each fruit, from an exact mask of the painted ellipse
    for x, y, lab in ((300, 100, dark), (330, 300, light)):
        mask = np.zeros(img.shape[:2], np.uint8)
        cv2.ellipse(mask, (x, y), (59, 54), 0, 0, 360, 255, -1)
        assert scored[x] == pytest.approx(model.score(img, mask), abs=0.01)
        assert scored[x] == pytest.approx((lab[0] / 10 - 1) / 9, abs=0.02)

    # with one: each cup once, in the first frame where it is whole past x = 250
    pipeline = FramePipeline(SETTINGS, QualityScoring(model, 250.0, 300.0, 700.0))
    first = {round(v.x_px): v.quality_score for v in pipeline.measure(img, 10.0)}
    assert all(first[x] is not None for x in (300, 330, 620))
    again = pipeline.measure(img, 10.0)  # the same cups (a belt that has not moved)
    assert all(v.quality_score is None for v in again)


def test_a_bruise_inside_the_skins_colour_class_is_found_against_the_fruits_own_skin() -> None:
    """A dark-red bruise on a red apple is red to the colour boxes: only the comparison with
    the fruit's own skin around it can find it."""
    img = _frame()
    red, bruise = (45.0, 50.0, 30.0), (31.0, 40.0, 22.0)  # both inside the red class (a* >= 20)
    _paint_ellipse(img, 300.0, 100.0, 80.0, 76.0, _lab_to_bgr(red))
    _paint_ellipse(img, 320.0, 95.0, 9.0, 9.0, _lab_to_bgr(bruise))  # 9 mm across at 0.5 mm/px
    boxes_only = dataclasses.replace(SETTINGS, own_skin_darker_l=1000.0)
    assert FramePipeline(boxes_only).measure(img)[0].defect_count == 0
    view = FramePipeline(SETTINGS).measure(img)[0]
    assert view.defect_count == 1
    assert view.defect_area_cm2 == pytest.approx(np.pi * 4.5**2 / 100, rel=0.35)
    assert view.colour_fractions["red"] > 0.95  # it is still red skin to the colour read


def test_a_darker_streak_of_the_skins_own_pigment_is_not_a_defect_but_a_duller_patch_is() -> None:
    """Mottling darkens the skin without dulling it; bruised tissue browns, so it is duller
    as well. Both patches are 10 L* darker than the red skin around them (more than the 8
    a defect needs); only the one that lost a fifth of its chroma is a bruise."""

    def with_patch(patch: tuple[float, float, float]) -> int:
        img = _frame()
        _paint_ellipse(img, 300.0, 100.0, 80.0, 76.0, _lab_to_bgr((45.0, 50.0, 30.0)))
        _paint_ellipse(img, 320.0, 95.0, 9.0, 9.0, _lab_to_bgr(patch))
        return FramePipeline(SETTINGS).measure(img)[0].defect_count

    assert with_patch((35.0, 51.0, 31.0)) == 0  # same chroma: the skin's own pigment
    assert with_patch((35.0, 40.0, 24.0)) == 1  # chroma 0.8 of the skin's: a bruise


def test_a_highlight_too_faint_to_be_glare_is_not_a_defect() -> None:
    """The skin mixed two thirds toward white is in no colour class and not glare either
    (``L*`` < 80): a blob the colour boxes would call a defect. It lies on the line from the
    skin's colour to white, so it is a highlight; a patch of the same size and lightness but
    another hue (a corky scar) is not."""

    def frame_with(patch_bgr: np.ndarray | None, mix: float) -> np.ndarray:
        img = _frame()
        red = np.array(_lab_to_bgr((45.0, 50.0, 30.0)))
        _paint_ellipse(img, 300.0, 100.0, 80.0, 76.0, tuple(red))
        yy, xx = np.mgrid[0:200, 200:400].astype(np.float32)
        weight = np.clip(1.6 * np.exp(-((xx - 290) ** 2 + (yy - 90) ** 2) / (2 * 7.0**2)), 0, 1)[..., None]
        target = 250.0 if patch_bgr is None else patch_bgr
        region = img[0:200, 200:400].astype(np.float32)
        img[0:200, 200:400] = np.clip(region + (target - region) * mix * weight, 0, 255).astype(np.uint8)
        return img

    sheen = frame_with(None, 0.66)
    code = FramePipeline(SETTINGS).measure(sheen)
    assert code[0].defect_count == 0
    scar = np.array(_lab_to_bgr((62.0, 8.0, 24.0)), np.float32)
    assert FramePipeline(SETTINGS).measure(frame_with(scar, 1.0))[0].defect_count == 1


def test_a_sliver_at_the_frame_edge_does_not_break_the_perspective_correction() -> None:
    """A mango cut by the bottom edge of a realistic frame (seed 7) left a 16 x 6 px outline
    whose exact-outline correction met a singular matrix and stopped the whole frame. The
    correction now keeps its estimate so far: finite sizes, no exception."""
    from vision.measure import Zone, _undo_perspective

    settings = dataclasses.replace(SETTINGS, mm_per_px=0.8, camera_height_mm=1000.0)
    zone = Zone(polar_px=6.0052008331994715, equatorial_px=16.16323933030101, axis_angle=0.5988875696213904,
                x0=172, y0=238, x1=202, y1=262)
    seen = _undo_perspective(zone, 186.24009324009324, 1047.3776223776224, settings, (640.0, 532.0))
    assert all(np.isfinite(v) for v in seen)
    assert 0 < seen.equatorial_mm < 2 * 16.2 * 0.8 * 1.5
