"""The per-frame measurement pipeline: one BGR frame in, one ``FruitView`` per fruit out.

Owns the order of the steps (background -> segmentation per lane band -> per-fruit geometry,
colour and defects -> a taught model's score, when the recipe has one) and the settings that
tune them. The steps themselves live in ``vision.background``, ``vision.segment``,
``vision.measure``, ``vision.skin``, ``vision.defects`` and ``vision.quality``; all are pure
functions over numpy arrays. Never opens a device or a file.

Geometry convention (shared with the simulator and the line runtime): the belt runs along +x,
lanes are horizontal bands of equal height, and the cup rollers spin each fruit about its
stem-calyx axis, which lies across the belt (near image y). The silhouette is therefore the
same ellipse in every view: its near-vertical axis is the fruit's polar length, its
near-horizontal axis the equatorial diameter, which is also the depth.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from vision.background import BackgroundModel, estimate_band_background
from vision.colour import CANONICAL_CLASSES, classify_bgr, colour_lut
from vision.defects import warm_up as load_defect_kernel
from vision.measure import (
    LAB_STEP,
    Zone,
    analysed_zone,
    away_from_the_poles,
    darker_search_from_mm2,
    fruit_view,
    glare_threshold_l,
    read_skins,
    search_defects,
)
from vision.quality import QualityModel
from vision.segment import FrameBuffers, FruitBlob, fruit_blobs, silhouettes
from vision.skin import warm_up as load_skin_kernel
from vision.views import DefectView, FruitView, VisionSettings

__all__ = ["DefectView", "FramePipeline", "FruitView", "QualityScoring", "VisionSettings", "settings_for_product"]

# Widest protrusion at the stem pole to cut off the silhouette: stalks are a few millimetres
# thick; the pomegranate's calyx crown is a stub about a centimetre wide.
_STALK_WIDTH_MM = {"apple": 4.5, "cherry": 4.5, "mango": 4.5, "pomegranate": 14.0}
_DEFAULT_STALK_WIDTH_MM = 4.5


def settings_for_product(product: str, mm_per_px: float, lanes: int) -> VisionSettings:
    """Defaults for a product: canonical colour classes and stalk width.

    The four products of the first recipes have their own; any other product (a recipe may
    name one, e.g. kiwifruit) gets the fruit-family colour classes and a thin stalk. The line
    replaces the colour classes with the recipe's anyway (``api.compose``).
    """
    return VisionSettings(
        mm_per_px=mm_per_px,
        lanes=lanes,
        colour_classes=CANONICAL_CLASSES.get(product, CANONICAL_CLASSES["apple"]),
        stalk_width_mm=_STALK_WIDTH_MM.get(product, _DEFAULT_STALK_WIDTH_MM),
    )


@dataclass(frozen=True)
class QualityScoring:
    """A taught quality model (``vision.quality``) and which views it scores.

    Scoring a view costs some 7 ms (the model normalises the fruit's crop to a fixed size),
    so each fruit is scored once per pipeline: in the first frame where it is whole and its
    centre has reached ``from_x_px`` (the middle of the frame). The cup is told apart by the
    belt position (``pitch_px``, ``exit_x_px`` as for ``vision.tracking.CupTracker``); without
    one, every whole view within half a pitch of ``from_x_px`` is scored.
    """

    model: QualityModel
    from_x_px: float
    pitch_px: float
    exit_x_px: float

    def claim(self, blob: FruitBlob, lane: int, belt_position_cups: float | None, scored: set[tuple[int, int]]) -> bool:
        """Whether to score this view; records its cup in ``scored`` when it is."""
        if blob.touches_edge or blob.cx < self.from_x_px:
            return False
        if belt_position_cups is None:
            return blob.cx < self.from_x_px + self.pitch_px / 2
        cup = (lane, round(belt_position_cups - (blob.cx - self.exit_x_px) / self.pitch_px))
        if cup in scored:
            return False
        scored.add(cup)
        if len(scored) > 4096:  # forget cups long gone (a set shared by two threads at worst scores twice)
            scored.difference_update([c for c in scored if c[1] < cup[1] - 256])
        return True

    def score(self, band_bgr: np.ndarray, blob: FruitBlob) -> float:
        x0, y0, x1, y1 = blob.bbox
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.drawContours(mask, [blob.contour], 0, 255, cv2.FILLED, offset=(-x0, -y0))
        return self.model.score(band_bgr[y0:y1, x0:x1], mask)


@lru_cache(maxsize=8)
def natural_vignetting_gain(height_px: int, width_px: int, mm_per_px: float, camera_height_mm: float) -> np.ndarray:
    """Per pixel, 1 / cos^4 of the angle between the pixel's ray and the optical axis of a
    pinhole camera ``camera_height_mm`` above the image centre (3 channels, float32): what
    undoes the natural vignetting that geometry alone causes. A lens's own falloff is
    another matter, for a flat-field calibration."""
    yy, xx = np.mgrid[0:height_px, 0:width_px].astype(np.float32)
    radius2 = ((xx - width_px / 2) ** 2 + (yy - height_px / 2) ** 2) * mm_per_px**2
    gain = ((camera_height_mm**2 + radius2) / camera_height_mm**2) ** 2
    return np.ascontiguousarray(np.repeat(gain[..., None], 3, axis=2), dtype=np.float32)


def load_kernels() -> None:
    """Compile the numba kernels, or load them from numba's cache beside their modules.
    Compiling takes some 15 s on a slow core, loading well under one; ``make`` runs this
    once after installing, so neither the line nor the tests compile at start-up."""
    load_skin_kernel()
    load_defect_kernel()


class FramePipeline:
    """Stateless per frame apart from the learned background, which is replaced atomically,
    and, with a quality model, the cups it has scored.

    Safe to call from several threads: each thread gets its own full-frame scratch buffers
    (two threads sharing one pipeline may score a fruit twice; the line gives each worker
    its own).
    """

    def __init__(self, settings: VisionSettings, quality: QualityScoring | None = None) -> None:
        self.settings = settings
        self.quality = quality
        self._scored: set[tuple[int, int]] = set()  # (lane, cup) scored by the quality model
        self._background: BackgroundModel | None = None
        self._lock = threading.Lock()
        self._local = threading.local()
        # build the colour table (~0.2 s) and load the compiled kernels now rather than in
        # the first frames
        colour_lut(settings.colour_classes, glare_threshold_l(settings, 1.0), settings.highlight_chroma / 2)
        load_kernels()

    def learn_background(self, empty_frames: Sequence[np.ndarray]) -> None:
        model = BackgroundModel.learn(empty_frames)
        with self._lock:
            self._background = model

    def _buffers(self, height: int, width: int) -> FrameBuffers:
        buffers: FrameBuffers | None = getattr(self._local, "buffers", None)
        if buffers is None or buffers.shape != (height, width):
            buffers = self._local.buffers = FrameBuffers(height, width)
        return buffers

    def measure(self, image_bgr: np.ndarray, belt_position_cups: float | None = None) -> list[FruitView]:
        """The views of one frame; ``belt_position_cups`` (the encoder's, at exposure) lets a
        quality model score each fruit once."""
        with self._lock:
            background = self._background
        s = self.settings
        height, width = image_bgr.shape[:2]
        buffers = self._buffers(height, width)
        if s.camera_height_mm is not None:
            # the belt estimate and the colour then both see the light as at the image centre
            flat = natural_vignetting_gain(height, width, s.mm_per_px, s.camera_height_mm)
            image_bgr = cv2.multiply(image_bgr, flat, dtype=cv2.CV_8U)
        bands = [(lane * height // s.lanes, (lane + 1) * height // s.lanes) for lane in range(s.lanes)]
        if background is not None:
            gain = background.gain(image_bgr)
            belt = background.image_bgr
        else:
            gain = 1.0
            belt = buffers.belt
            for y0, y1 in bands:
                estimate_band_background(image_bgr[y0:y1], dst=belt[y0:y1])
        # colour is read after undoing the lighting drift measured on the belt
        corrected = (
            image_bgr if gain == 1.0 else cv2.convertScaleAbs(image_bgr, dst=buffers.corrected, alpha=1.0 / gain)
        )
        mask = silhouettes(corrected, belt, s, buffers)
        lut = colour_lut(s.colour_classes, glare_threshold_l(s, gain), s.highlight_chroma / 2)
        # colour codes on every second row and column (a nearest-neighbour resize at an exact
        # integer scale samples exactly those, and far faster than a strided copy)
        half_h, half_w = height // 2, width // 2
        small = cv2.resize(
            corrected[: 2 * half_h, : 2 * half_w], (half_w, half_h), dst=buffers.small, interpolation=cv2.INTER_NEAREST
        )
        code_half = buffers.code_half
        # every LAB_STEP-th pixel of each row and column, from the half grid likewise
        step = LAB_STEP // 2
        grid_h, grid_w = height // LAB_STEP, width // LAB_STEP
        lab_grid = cv2.cvtColor(
            cv2.resize(small[: grid_h * step, : grid_w * step], (grid_w, grid_h), interpolation=cv2.INTER_NEAREST),
            cv2.COLOR_BGR2Lab,
        )
        # silhouettes and zones lane by lane; the colour codes over the rows the zones span
        fruit: list[tuple[int, int, int, FruitBlob, Zone]] = []  # lane, band rows, blob, zone
        for lane, (y0, y1) in enumerate(bands):
            blobs = fruit_blobs(mask[y0:y1], s)
            if not blobs:
                continue
            zones = [analysed_zone(blob, s, y1 - y0, width) for blob in blobs]
            h0, h1 = (y0 + min(z.y0 for z in zones)) // 2, -(-(y0 + max(z.y1 for z in zones)) // 2)
            classify_bgr(small[h0:h1], lut, dst=code_half[h0:h1])
            fruit += [(lane, y0, y1, blob, zone) for blob, zone in zip(blobs, zones, strict=True)]
        # a defect needs at least its minimum area of unclassified skin; the half grid samples
        # a quarter of the pixels, so its estimate is noisy near the minimum: search from half
        search_from_mm2 = 0.5 * s.min_defect_area_mm2
        darker_from_mm2 = darker_search_from_mm2(s)
        names = [cls.name for cls in s.colour_classes]
        skins = read_skins(code_half, lab_grid, [(z, b.cx, y0 + b.cy, y0) for _, y0, _, b, z in fruit], s, search_from_mm2)
        views: list[FruitView] = []
        for (lane, y0, y1, blob, zone), skin in zip(fruit, skins, strict=True):
            defects = (
                search_defects(corrected[y0:y1], y0, blob, zone, skin, s, lut)
                if skin.unclassified_mm2 >= search_from_mm2 or skin.darker_mm2 >= darker_from_mm2
                else []
            )
            if defects and s.camera_height_mm is not None:
                defects = away_from_the_poles(defects, (y0 + blob.cy - height / 2) * s.mm_per_px, s)
            fractions = dict(zip(names, skin.fractions, strict=True))
            score = None
            if self.quality is not None and self.quality.claim(blob, lane, belt_position_cups, self._scored):
                score = self.quality.score(corrected[y0:y1], blob)
            views.append(
                fruit_view(blob, zone, lane, y0, s, fractions, skin.mean_lab, defects, score, (width / 2, height / 2))
            )
        return views
