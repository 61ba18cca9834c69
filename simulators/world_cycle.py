"""The simulated world's repeating fruit cycle and its camera frames, rendered once and cached.

Rendering a frame costs tens of milliseconds per lane band, too slow for a live 12 frames/s
on a shared PC. So the world's fruit repeat: cup ``k`` carries the fruit of cup ``k mod N``.
The camera is triggered every ``pitch`` cups (``cups_per_second / fps``); when ``N / pitch``
is a whole number ``F`` the trigger positions repeat every ``N`` cups too, and the frame of
trigger ``m`` is frame ``m mod F`` of one cycle rendered ahead of time. The truth log and
the load cells use the same mapping, so ground truth stays exact for every cup index.

Owns: choosing ``N`` (``plan_cycle``), the cycle's fruit (``CycleFruit``), rendering the
cycle in a process pool and caching the JPEGs and per-cup truth on disk under a hash of
everything that changes the pixels (``load_or_render_cycle``). Knows nothing about wires.

Within a cycle each fruit turns continuously on its rollers. Where a cup is in view across
the cycle's seam its spin is kept continuous too (the frame near the end of the cycle and
the one after the seam show the same rotation of the same fruit); the per-frame sensor
noise and a lighting drift, if configured, do repeat with the cycle.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

import simulators.fruit as fruit_module
import simulators.scene as scene_module
from simulators.fruit import CupTruth, generate_cup
from simulators.scene import SceneGeometry, SceneRenderer
from simulators.settings import CameraLaneFault, SimulatedCameraSettings, SimulationSettings

# Register 5 of the PLC contract carries the pitch as cups x 10000 in a UINT16.
MAX_TRIGGER_PITCH_CUPS = 0xFFFF / 10000
_MAX_DENOMINATOR = 1000
CACHE_FORMAT = 1


class WorldConfigError(ValueError):
    """A line config the world cannot simulate exactly; names the config field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def _exact_fraction(value: float, field: str) -> Fraction:
    approx = Fraction(value).limit_denominator(_MAX_DENOMINATOR)
    if not math.isclose(float(approx), value, rel_tol=1e-12, abs_tol=0.0):
        raise WorldConfigError(
            field,
            f"{value!r} is not a fraction with a denominator up to {_MAX_DENOMINATOR}; the "
            "simulated world needs an exact ratio of belt speed to frame rate (e.g. 8, 12.5, 25/3)",
        )
    return approx


@dataclass(frozen=True, slots=True)
class CameraCycle:
    """The trigger pitch and the fruit cycle: ``frames * pitch == cycle_cups`` exactly."""

    pitch_cups: Fraction
    cycle_cups: int
    frames: int

    @property
    def pitch_cups_float(self) -> float:
        return float(self.pitch_cups)

    def frame_of_trigger(self, trigger: int) -> int:
        return trigger % self.frames

    def frame_position_cups(self, frame: int) -> float:
        return float(frame * self.pitch_cups)


def plan_cycle(
    cups_per_second: float, fps: float, requested_cycle_cups: int, max_frames: int
) -> CameraCycle:
    """The pitch ``cups_per_second / fps`` and the smallest cycle ``N >= requested`` it divides.

    Requires both to be exact fractions (denominator up to 1000). With the pitch ``a / b`` in
    lowest terms, ``N / pitch = N * b / a`` is whole exactly when ``a`` divides ``N``.
    """
    speed = _exact_fraction(cups_per_second, "line.cups_per_second")
    rate = _exact_fraction(fps, "camera.geometry.fps")
    pitch = speed / rate
    if pitch > MAX_TRIGGER_PITCH_CUPS:
        raise WorldConfigError(
            "camera.geometry.fps",
            f"{fps:g} frames/s at {cups_per_second:g} cups/s is a trigger every {float(pitch):.4g} "
            f"cups; register 5 of the PLC contract carries at most {MAX_TRIGGER_PITCH_CUPS} cups",
        )
    if pitch * 10000 < 1:
        raise WorldConfigError(
            "camera.geometry.fps", f"a trigger pitch of {float(pitch):.3g} cups is below 0.0001"
        )
    step = pitch.numerator
    cycle = -(-requested_cycle_cups // step) * step
    frames = int(cycle / pitch)
    if cycle > 4096 or frames > max_frames:
        raise WorldConfigError(
            "camera.geometry.fps",
            f"{fps:g} frames/s at {cups_per_second:g} cups/s gives a trigger pitch of {pitch} cups; "
            f"an exact cycle needs a multiple of {step} cups ({cycle} cups, {frames} frames), more "
            f"than simulation.world allows (4096 cups, max_frames_per_cycle {max_frames}); choose "
            "a speed and frame rate with a simpler ratio",
        )
    return CameraCycle(pitch, cycle, frames)


@dataclass(frozen=True)
class RenderSpec:
    """Everything that decides the cycle's pixels and truth (hashed for the cache key)."""

    product: str
    lanes: int
    width_px: int
    height_px: int
    mm_per_px: float
    cup_pitch_mm: float
    camera: SimulatedCameraSettings
    simulation: SimulationSettings
    pitch_numerator: int
    pitch_denominator: int
    cycle_cups: int
    frames: int
    jpeg_quality: int
    # Lanes drawn darkened in every frame of this cycle (a camera fault's cycle; the world
    # serves it instead of the clean one once the fault is on). Empty = the clean cycle.
    darkened_lanes: tuple[tuple[int, float], ...] = ()

    @property
    def cycle(self) -> CameraCycle:
        return CameraCycle(
            Fraction(self.pitch_numerator, self.pitch_denominator), self.cycle_cups, self.frames
        )

    def cache_key(self) -> str:
        # Only the settings that change the fruit or the pixels: the world's own knobs (ports,
        # latency, indicator resolution) must not invalidate a cache that is still right.
        # The faults are not pixels of the clean cycle: a fault's cycle adds its darkened lanes.
        flow = self.simulation.model_dump(mode="json", exclude={"world", "faults"})
        inputs = {
            "format": CACHE_FORMAT,
            "product": self.product,
            "lanes": self.lanes,
            "geometry": [self.width_px, self.height_px, self.mm_per_px, self.cup_pitch_mm],
            "camera": self.camera.model_dump(mode="json"),
            "simulation": flow,
            "pitch": [self.pitch_numerator, self.pitch_denominator],
            "cycle_cups": self.cycle_cups,
            "frames": self.frames,
            "jpeg_quality": self.jpeg_quality,
            **({"darkened_lanes": [list(d) for d in self.darkened_lanes]} if self.darkened_lanes else {}),
            "opencv": cv2.__version__,
            "numpy": np.__version__,
        }
        digest = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode())
        for module_file in (scene_module.__file__, fruit_module.__file__, __file__):
            digest.update(Path(str(module_file)).read_bytes())
        return digest.hexdigest()[:24]


class CycleFruit:
    """The cycle's fruit: what cup ``k`` of a lane holds, for the renderer and for the truth."""

    def __init__(self, spec: RenderSpec) -> None:
        self.spec = spec
        self._cups: dict[tuple[int, int], CupTruth] = {}

    def base_cup(self, lane: int, cycle_cup: int) -> CupTruth:
        key = (lane, cycle_cup)
        cup = self._cups.get(key)
        if cup is None:
            cup = generate_cup(self.spec.product, self.spec.simulation, lane, cycle_cup)
            self._cups[key] = cup
        return cup

    def generated(self) -> dict[tuple[int, int], CupTruth]:
        """Every cycle cup generated so far, by (lane, cycle cup)."""
        return dict(self._cups)

    def cup(self, lane: int, cup_index: int) -> CupTruth:
        """Cup ``cup_index`` as the renderer draws it inside the cycle's positions [0, N).

        Cups one cycle ahead or behind (in view at the seam) carry their fruit's spin shifted
        by the rotation of one cycle, so a fruit's rotation is continuous across the seam.
        """
        n = self.spec.cycle_cups
        lap, cycle_cup = divmod(cup_index, n)
        base = self.base_cup(lane, cycle_cup)
        if lap == 0 or not base.fruit:
            return base
        shifted = tuple(
            replace(
                f,
                spin_phase_rad=(f.spin_phase_rad - 2 * math.pi * f.spin_rev_per_cup * n * lap)
                % (2 * math.pi),
            )
            for f in base.fruit
        )
        return CupTruth(lane, cup_index, shifted)


def cup_truth_record(cup: CupTruth) -> dict[str, Any]:
    """One cup's ground truth as JSON: enough to score weight, size, colour and defects."""
    return {
        "fruit_count": len(cup.fruit),
        "weight_g": round(cup.weight_g, 4),
        "fruit": [
            {
                "weight_g": round(f.weight_g, 4),
                "diameter_major_mm": round(f.diameter_major_mm, 4),
                "diameter_minor_mm": round(f.diameter_minor_mm, 4),
                "volume_cm3": round(f.volume_cm3, 4),
                "colour_fractions": {k: round(v, 6) for k, v in f.colour_fractions.items()},
                "defect_count": len(f.defects),
                "defect_area_cm2": round(sum(d.area_mm2 for d in f.defects) / 100.0, 6),
                "defects": [{"kind": d.kind, "area_mm2": round(d.area_mm2, 4)} for d in f.defects],
            }
            for f in cup.fruit
        ],
    }


# -- rendering in worker processes ------------------------------------------------------------

_worker: tuple[RenderSpec, SceneRenderer, CycleFruit] | None = None


def cycle_renderer(spec: RenderSpec) -> tuple[SceneRenderer, CycleFruit]:
    """The renderer and the cycle's fruit, as the prerender workers draw frames."""
    geometry = SceneGeometry(
        width_px=spec.width_px,
        height_px=spec.height_px,
        lanes=spec.lanes,
        mm_per_px=spec.mm_per_px,
        cup_pitch_mm=spec.cup_pitch_mm,
    )
    faults = [CameraLaneFault(lane=lane, from_cup=0, gain=gain) for lane, gain in spec.darkened_lanes]
    return SceneRenderer(geometry, spec.camera, seed=spec.simulation.seed, faults=faults), CycleFruit(spec)


def camera_fault_spec(spec: RenderSpec) -> tuple[RenderSpec, int] | None:
    """The cycle to serve once the simulation's camera faults are on, and the belt position
    (cups) from which on; None without camera faults.

    The world prerenders frames, so it serves one faulted cycle: every darkened lane is on in
    it, from the faults' common ``from_cup`` (faults starting at different cups are refused).
    """
    faults = spec.simulation.faults.camera_darken
    if not faults:
        return None
    starts = {f.from_cup for f in faults}
    if len(starts) > 1:
        raise WorldConfigError(
            "simulation.faults.camera_darken",
            f"the simulated world switches its camera faults on together; give them one from_cup (got {sorted(starts)})",
        )
    for index, fault in enumerate(faults):
        if fault.lane >= spec.lanes:
            raise WorldConfigError(
                f"simulation.faults.camera_darken[{index}].lane", f"lane {fault.lane} of a {spec.lanes}-lane line"
            )
    darkened = tuple(sorted((f.lane, f.gain) for f in faults))
    return replace(spec, darkened_lanes=darkened), starts.pop()


def _init_worker(spec: RenderSpec) -> None:
    global _worker
    cv2.setNumThreads(1)  # one process per core already
    renderer, fruit = cycle_renderer(spec)
    _worker = (spec, renderer, fruit)


def render_frame(spec: RenderSpec, renderer: SceneRenderer, fruit: CycleFruit, frame: int) -> bytes:
    image = renderer.render(spec.cycle.frame_position_cups(frame), fruit.cup)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, spec.jpeg_quality])
    if not ok:
        raise RuntimeError(f"JPEG encoding of frame {frame} failed")
    return jpeg.tobytes()


def _render_chunk(frames: Sequence[int]) -> tuple[list[bytes], dict[tuple[int, int], Any]]:
    """JPEGs of these frames, and the truth of the cycle cups this worker generated first here
    (each worker reports a cup once; the truth costs as much as drawing, so it is not redone)."""
    assert _worker is not None, "worker not initialised"
    spec, renderer, fruit = _worker
    jpegs = [render_frame(spec, renderer, fruit, j) for j in frames]
    truth: dict[tuple[int, int], Any] = {}
    for key, cup in fruit.generated().items():
        if key not in _reported:
            _reported.add(key)
            truth[key] = cup_truth_record(cup)
    return jpegs, truth


_reported: set[tuple[int, int]] = set()


@dataclass(frozen=True)
class PrerenderedCycle:
    spec: RenderSpec
    frames: list[bytes]  # JPEG per frame of the cycle
    truth: list[list[dict[str, Any]]]  # [lane][cycle cup] -> cup_truth_record
    cache_path: Path
    rendered: bool  # False: loaded from the cache
    seconds: float

    @property
    def cycle(self) -> CameraCycle:
        return self.spec.cycle


def _load(path: Path, spec: RenderSpec) -> PrerenderedCycle | None:
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        return None
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("frames") != spec.frames or manifest.get("format") != CACHE_FORMAT:
        return None
    t0 = time.perf_counter()
    frames = [(path / f"frame-{j:05d}.jpg").read_bytes() for j in range(spec.frames)]
    truth = json.loads((path / "truth.json").read_text(encoding="utf-8"))["lanes"]
    return PrerenderedCycle(spec, frames, truth, path, False, time.perf_counter() - t0)


def load_or_render_cycle(
    spec: RenderSpec, cache_root: Path, *, workers: int = 0
) -> PrerenderedCycle:
    """The cycle's frames and truth: from ``cache_root/<key>`` if there, else rendered there.

    Rendering uses a pool of ``workers`` processes (0 = one per CPU), each drawing runs of
    consecutive frames so the fruit textures it paints are reused. The cache directory is
    written under a temporary name and renamed when complete, so a crash or a concurrent
    start never leaves a half cache that looks whole.
    """
    path = cache_root / spec.cache_key()
    cached = _load(path, spec)
    if cached is not None:
        return cached
    t0 = time.perf_counter()
    n_workers = workers or os.cpu_count() or 1
    # Runs of consecutive frames share most of their cups, which each worker generates once.
    chunk = max(1, math.ceil(spec.frames / (n_workers * 3)))
    chunks = [list(range(s, min(s + chunk, spec.frames))) for s in range(0, spec.frames, chunk)]
    # spawn, not fork: the parent may already hold OpenCV's or asyncio's threads.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=min(n_workers, len(chunks)),
        mp_context=context,
        initializer=_init_worker,
        initargs=(spec,),
    ) as pool:
        frames: list[bytes] = []
        records: dict[tuple[int, int], Any] = {}
        for jpegs, truth_part in pool.map(_render_chunk, chunks):
            frames += jpegs
            records.update(truth_part)
    # Every cup of the cycle is in view in some frame; draw any the renderer never asked for.
    fruit = CycleFruit(spec)
    truth = [
        [
            records[(lane, k)]
            if (lane, k) in records
            else cup_truth_record(fruit.base_cup(lane, k))
            for k in range(spec.cycle_cups)
        ]
        for lane in range(spec.lanes)
    ]
    cache_root.mkdir(parents=True, exist_ok=True)
    tmp = cache_root / f".{path.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for j, jpeg in enumerate(frames):
        (tmp / f"frame-{j:05d}.jpg").write_bytes(jpeg)
    (tmp / "truth.json").write_text(json.dumps({"lanes": truth}), encoding="utf-8")
    manifest = {
        "format": CACHE_FORMAT,
        "frames": spec.frames,
        "cycle_cups": spec.cycle_cups,
        "pitch_cups": [spec.pitch_numerator, spec.pitch_denominator],
        "product": spec.product,
        "lanes": spec.lanes,
        "geometry": [spec.width_px, spec.height_px, spec.mm_per_px, spec.cup_pitch_mm],
        "render_seconds": round(time.perf_counter() - t0, 3),
        "workers": min(n_workers, len(chunks)),
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    try:
        tmp.rename(path)
    except OSError:
        # Another world finished the same cache first; its copy is as good as ours.
        shutil.rmtree(tmp, ignore_errors=True)
    return PrerenderedCycle(spec, frames, truth, path, True, time.perf_counter() - t0)
