"""Speed benchmark and ground-truth accuracy evaluation of the vision chain.

Owns the two harnesses behind ``gradeline bench vision`` and ``gradeline bench
vision-accuracy``. Both drive the real chain (``SceneRenderer`` -> ``FramePipeline`` ->
``CupTracker``); the simulator's truth is only read here, after the fact, to score the
records -- it is never handed to the pipeline or the tracker. This is the one vision module
that imports ``simulators``; the measuring code does not.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from simulators.fruit import CupTruth, FruitTruth, generate_cup, generate_realistic_cup
from simulators.scene import RealisticSceneRenderer, SceneGeometry, SceneRenderer
from simulators.settings import SimulatedCameraSettings, SimulationSettings
from vision.pipeline import FramePipeline, settings_for_product
from vision.tracking import CupTracker, FusedFruit

# Geometry per product at the evaluation scale: the pitch of the product's cups and a lane
# band tall enough for its largest fruit plus the stalk.
_PRODUCT_GEOMETRY_MM = {  # product: (cup pitch, lane band height)
    "apple": (110.0, 125.0),
    "pomegranate": (125.0, 125.0),
    "cherry": (45.0, 90.0),
    "mango": (130.0, 190.0),
}
MIN_DEFECT_DIAMETER_MM = 3.0


# Under perspective a fruit looks larger than at the belt plane and, in the outer lanes,
# sits further out: the realistic scene's camera is framed with this much more room per lane
# so the largest fruit of each product stays inside its band, as an installer would frame it.
_PERSPECTIVE_ROOM = 1.12


def accuracy_geometry(
    product: str, mm_per_px: float, lanes: int = 4, width_px: int = 1280, scene: str = "plain"
) -> SceneGeometry:
    pitch_mm, band_mm = _PRODUCT_GEOMETRY_MM[product]
    if scene == "realistic":
        band_mm *= _PERSPECTIVE_ROOM
    band_px = int(math.ceil(band_mm / mm_per_px))
    return SceneGeometry(width_px, band_px * lanes, lanes, mm_per_px, pitch_mm)


@dataclass
class _Scores:
    fruit: int = 0
    cups: int = 0
    cups_one_record: int = 0
    spurious_records: int = 0
    diameter_abs_err_mm: list[float] = field(default_factory=list)
    diameter_err_mm: list[float] = field(default_factory=list)
    colour_abs_err: list[float] = field(default_factory=list)
    defects_truth: int = 0  # >= 3 mm, on single-fruit cups
    defects_found: int = 0
    defect_area_rel_err: list[float] = field(default_factory=list)
    clean_fruit: int = 0
    clean_flagged: int = 0
    double_cups: int = 0
    double_flagged: int = 0
    single_flagged_double: int = 0
    views: int = 0
    frames: int = 0


def _match_defects(truth: FruitTruth, record: FusedFruit) -> tuple[int, int, list[float]]:
    """Greedy match of true defects >= 3 mm to fused ones by latitude (the pipeline's polar angle
    from the top pole is the simulator's from the stem) and area. Returns (truth count, found,
    relative area errors of the matches)."""
    wanted = [d for d in truth.defects if d.diameter_mm >= MIN_DEFECT_DIAMETER_MM]
    found = list(record.defects)
    errors: list[float] = []
    hits = 0
    pairs = []
    for i, d in enumerate(wanted):
        for j, f in enumerate(found):
            dtheta = abs(d.theta - f.theta)
            if dtheta < 0.35:
                pairs.append((dtheta + 0.3 * abs(math.log(max(f.area_mm2, 1e-3) / d.area_mm2)), i, j))
    used_i: set[int] = set()
    used_j: set[int] = set()
    for _, i, j in sorted(pairs):
        if i in used_i or j in used_j:
            continue
        used_i.add(i)
        used_j.add(j)
        hits += 1
        errors.append(abs(found[j].area_mm2 - wanted[i].area_mm2) / wanted[i].area_mm2)
    return len(wanted), hits, errors


def evaluate_accuracy(
    product: str,
    seed: int,
    cups_per_lane: int,
    mm_per_px: float = 0.3,
    step_cups: float = 0.25,
    camera: SimulatedCameraSettings | None = None,
    simulation: SimulationSettings | None = None,
    lanes: int = 4,
    learn_background: bool = False,
    scene: str = "plain",
) -> _Scores:
    """Run the chain over ``cups_per_lane`` cups per lane and score every record.

    ``scene``: ``plain`` (``SceneRenderer``, ``generate_cup``) or ``realistic``
    (``RealisticSceneRenderer``, ``generate_realistic_cup``; the pipeline is then told the
    camera's height, as a line's config would). By default the belt is estimated from every
    frame, as the line does; ``learn_background`` first learns it from empty frames.
    """
    camera = camera or SimulatedCameraSettings(blur_px=0.7, noise_sigma=2.0, lighting_drift=0.05)
    sim = simulation or SimulationSettings(seed=seed, defect_rate=0.3, empty_cup_rate=0.03, double_fruit_rate=0.02)
    geometry = accuracy_geometry(product, mm_per_px, lanes, scene=scene)
    settings = settings_for_product(product, mm_per_px, lanes)
    renderer: SceneRenderer
    if scene == "plain":
        renderer, make_cup = SceneRenderer(geometry, camera, seed), generate_cup
    elif scene == "realistic":
        realistic = RealisticSceneRenderer(geometry, camera, seed)
        renderer, make_cup = realistic, generate_realistic_cup
        settings = dataclasses.replace(settings, camera_height_mm=realistic.optics.camera_height_mm)
    else:
        raise ValueError(f"unknown scene {scene!r}; expected plain or realistic")
    cache: dict[tuple[int, int], CupTruth] = {}

    def cup(lane: int, k: int) -> CupTruth:
        if not 0 <= k < cups_per_lane:
            return CupTruth(lane, k, ())
        got = cache.get((lane, k))
        if got is None:
            got = cache[(lane, k)] = make_cup(product, sim, lane, k)
        return got

    pipeline = FramePipeline(settings)
    empty = CupTruth(0, 0, ())
    if learn_background:
        pipeline.learn_background([renderer.render(p, lambda lane, k: empty) for p in (-50.0, -49.5, -49.0)])
    tracker = CupTracker(lanes, geometry.pitch_px, geometry.exit_x_px)
    first = -math.ceil(geometry.exit_x_px / geometry.pitch_px) - 2
    records: list[FusedFruit] = []
    scores = _Scores()
    steps = int(round((cups_per_lane + 1 - first) / step_cups))
    for i in range(steps):
        position = first + i * step_cups
        views = pipeline.measure(renderer.render(position, cup))
        scores.frames += 1
        scores.views += len(views)
        records += tracker.update(views, position)
    records += tracker.flush()
    _score(records, cup, lanes, cups_per_lane, scores)
    return scores


def _score(
    records: Sequence[FusedFruit], cup: Callable[[int, int], CupTruth], lanes: int, cups_per_lane: int, s: _Scores
) -> None:
    by_cup: dict[tuple[int, int], list[FusedFruit]] = {}
    for r in records:
        by_cup.setdefault((r.lane, r.cup_index), []).append(r)
    for lane in range(lanes):
        for k in range(cups_per_lane):
            truth = cup(lane, k)
            got = by_cup.pop((lane, k), [])
            if not truth.fruit:
                s.spurious_records += len(got)
                continue
            s.cups += 1
            s.fruit += len(truth.fruit)
            if len(got) == 1:
                s.cups_one_record += 1
            if not got:
                continue
            record = got[0]
            if len(truth.fruit) == 2:
                s.double_cups += 1
                s.double_flagged += "double" in record.flags
                continue
            fruit = truth.fruit[0]
            s.single_flagged_double += "double" in record.flags
            for est, true in (
                (record.diameter_major_mm, fruit.diameter_major_mm),
                (record.diameter_minor_mm, fruit.diameter_minor_mm),
            ):
                s.diameter_err_mm.append(est - true)
                s.diameter_abs_err_mm.append(abs(est - true))
            for name, share in fruit.colour_fractions.items():
                s.colour_abs_err.append(abs(record.colour_fractions.get(name, 0.0) - share))
            if not fruit.defects:
                s.clean_fruit += 1
                s.clean_flagged += record.defect_count > 0
            n_truth, n_found, errors = _match_defects(fruit, record)
            s.defects_truth += n_truth
            s.defects_found += n_found
            s.defect_area_rel_err += errors
    s.spurious_records += sum(len(v) for v in by_cup.values())


def summarise(scores: Sequence[_Scores]) -> dict[str, float | int]:
    def cat(name: str) -> list[float]:
        return [x for s in scores for x in getattr(s, name)]

    def tot(name: str) -> int:
        return int(sum(getattr(s, name) for s in scores))

    def mean(xs: list[float]) -> float:
        return float(np.mean(xs)) if xs else float("nan")

    cups = tot("cups")
    return {
        "fruit": tot("fruit"),
        "cups": cups,
        "frames": tot("frames"),
        "fruit_views": tot("views"),
        "diameter_mae_mm": round(mean(cat("diameter_abs_err_mm")), 3),
        "diameter_bias_mm": round(mean(cat("diameter_err_mm")), 3),
        "diameter_p95_abs_err_mm": round(float(np.percentile(cat("diameter_abs_err_mm"), 95)), 3)
        if cat("diameter_abs_err_mm")
        else float("nan"),
        "colour_mae_pp": round(100 * mean(cat("colour_abs_err")), 3),
        "defects_3mm_truth": tot("defects_truth"),
        "defect_recall_3mm": round(tot("defects_found") / max(1, tot("defects_truth")), 4),
        "clean_fruit": tot("clean_fruit"),
        "clean_flagged_rate": round(tot("clean_flagged") / max(1, tot("clean_fruit")), 4),
        "defect_area_mean_rel_err": round(mean(cat("defect_area_rel_err")), 4),
        "tracking_one_record_rate": round(tot("cups_one_record") / max(1, cups), 4),
        "spurious_records": tot("spurious_records"),
        "double_cups": tot("double_cups"),
        "double_flag_recall": round(tot("double_flagged") / max(1, tot("double_cups")), 4),
        "single_flagged_double": tot("single_flagged_double"),
    }


# -- speed -------------------------------------------------------------------------------
BENCH_GEOMETRY = SceneGeometry(width_px=1280, height_px=480, lanes=4, mm_per_px=0.8, cup_pitch_mm=110.0)


def bench_frames(count: int, seed: int = 1, product: str = "apple") -> list[np.ndarray]:
    """Distinct 1280x480 four-lane frames of the simulator's default product flow."""
    return [bench_renderer(seed).render(i * 0.37, _bench_cups(product, seed)) for i in range(count)]


def bench_renderer(seed: int) -> SceneRenderer:
    return SceneRenderer(BENCH_GEOMETRY, SimulatedCameraSettings(blur_px=0.5, noise_sigma=2.0), seed)


def _bench_cups(product: str, seed: int) -> Callable[[int, int], CupTruth]:
    sim = SimulationSettings(seed=seed)

    def cup(lane: int, k: int) -> CupTruth:
        return generate_cup(product, sim, lane, k)

    return cup


def baseline_count(image_bgr: np.ndarray, lanes: int, threshold: float) -> int:
    """The bare-OpenCV baseline: colour conversion, a threshold and contours per lane band.

    Thresholds Lab chroma against the grey belt, which finds the same fruit; it measures
    nothing, so it bounds what any pipeline built on OpenCV can reach on this machine.
    """
    lab = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2Lab)
    height = image_bgr.shape[0]
    count = 0
    for lane in range(lanes):
        band = lab[lane * height // lanes : (lane + 1) * height // lanes]
        chroma = cv2.absdiff(band[..., 1], 128) + cv2.absdiff(band[..., 2], 128)  # type: ignore[call-overload]
        _, fg = cv2.threshold(chroma, threshold, 255, cv2.THRESH_BINARY)
        contours, _ = cv2.findContours(fg, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        count += sum(1 for c in contours if cv2.contourArea(c) > 200)
    return count


def bench_speed(
    frames: Sequence[np.ndarray],
    repeats: int = 5,
    product: str = "apple",
    empty_frames: Sequence[np.ndarray] = (),
) -> dict[str, float | int]:
    """Fruit-views per second of the pipeline and of the baseline on the same frames, on one
    core, medians over repeats (interleaved, so both see the same machine load). Without
    ``empty_frames`` the pipeline estimates the belt from each frame; with them it first
    learns the belt, as the runtime can at start-up."""
    cv2.setNumThreads(1)
    g = BENCH_GEOMETRY
    pipeline = FramePipeline(settings_for_product(product, g.mm_per_px, g.lanes))
    if empty_frames:
        pipeline.learn_background(empty_frames)
    views_per_pass = sum(len(pipeline.measure(f)) for f in frames)
    baseline_per_pass = sum(baseline_count(f, g.lanes, 12) for f in frames)
    pipe_rates: list[float] = []
    base_rates: list[float] = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for f in frames:
            pipeline.measure(f)
        t1 = time.perf_counter()
        for f in frames:
            baseline_count(f, g.lanes, 12)
        t2 = time.perf_counter()
        pipe_rates.append(views_per_pass / (t1 - t0))
        base_rates.append(views_per_pass / (t2 - t1))
    pipe = statistics.median(pipe_rates)
    base = statistics.median(base_rates)
    return {
        "fruit_views_per_s": round(pipe, 1),
        "baseline_fruit_views_per_s": round(base, 1),
        "ratio": round(pipe / base, 3),
        "frames": len(frames),
        "fruit_views_per_frame": round(views_per_pass / len(frames), 2),
        "baseline_blobs_per_frame": round(baseline_per_pass / len(frames), 2),
        "ms_per_frame": round(1000 * views_per_pass / pipe / len(frames), 3),
        "baseline_ms_per_frame": round(1000 * views_per_pass / base / len(frames), 3),
        "learned_background": bool(empty_frames),
        "repeats": repeats,
        "threads": 1,
    }
