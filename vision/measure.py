"""Per-fruit measurement in one view: size and shape from the silhouette, colour and defects
from the skin, all referred to a spheroid fitted to the silhouette.

Owns the spheroid model of a view: the silhouette ellipse (from second moments) gives the
polar semi-axis (the near-vertical one, along the spin axis) and the equatorial one (also the
fruit's depth). From it each pixel gets its surface slope, so colour shares and defect areas
are surface areas, not projected ones. Pixels near the limb (outside ``rim_fraction``) are
left to other views: they are foreshortened, blurred into the belt, and hold the stem and
calyx cavities, which sit on the spin axis at the limb.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from vision.colour import classify_lab8
from vision.defects import find_defects, highlight_mask
from vision.segment import FruitBlob
from vision.views import FruitView, VisionSettings


def measure_fruit(
    band_bgr: np.ndarray,
    blob: FruitBlob,
    lane: int,
    band_y0: int,
    gain: float,
    image_width: int,
    s: VisionSettings,
) -> FruitView:
    mm = s.mm_per_px
    m = cv2.moments(blob.mask, binaryImage=True)
    area_px = m["m00"]
    cx, cy = m["m10"] / area_px, m["m01"] / area_px
    mu20, mu02, mu11 = m["mu20"] / area_px, m["mu02"] / area_px, m["mu11"] / area_px
    # eigen-decomposition of the 2x2 covariance; for an ellipse the semi-axis is 2*sqrt(lambda)
    half_diff = math.sqrt(max(0.0, ((mu20 - mu02) / 2) ** 2 + mu11**2))
    mean = (mu20 + mu02) / 2
    lam_major, lam_minor = mean + half_diff, max(mean - half_diff, 1e-9)
    angle_major = 0.5 * math.atan2(2 * mu11, mu20 - mu02)  # from +x
    semi_major, semi_minor = 2 * math.sqrt(lam_major), 2 * math.sqrt(lam_minor)
    # which axis is the spin axis: the one nearer the image vertical
    if abs(math.cos(angle_major)) < math.sqrt(0.5):
        polar_px, equatorial_px = semi_major, semi_minor
        axis_angle = angle_major - math.pi / 2 if math.sin(angle_major) > 0 else angle_major + math.pi / 2
    else:
        polar_px, equatorial_px = semi_minor, semi_major
        axis_angle = angle_major
    # axis_angle: rotation of the equatorial axis from +x (small)
    perimeter = cv2.arcLength(blob.contour, True)
    roundness = float(4 * math.pi * cv2.contourArea(blob.contour) / perimeter**2) if perimeter > 0 else 0.0

    flags: set[str] = set()
    if blob.touches_edge:
        flags.add("edge")
    if blob.convexity < s.double_convexity:
        flags.add("double")
    elif blob.convexity < s.misshapen_convexity:
        flags.add("misshapen")

    # --- skin: colour and defects on the fitted spheroid ---
    h, w = blob.mask.shape
    roi = band_bgr[blob.y0 : blob.y0 + h, blob.x0 : blob.x0 + w]
    if gain != 1.0:
        roi = cv2.convertScaleAbs(roi, alpha=1.0 / gain)
    lab8 = cv2.cvtColor(roi, cv2.COLOR_BGR2Lab)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dx, dy = xx - np.float32(cx), yy - np.float32(cy)
    ca, sa = math.cos(axis_angle), math.sin(axis_angle)
    u = (dx * ca + dy * sa) / np.float32(equatorial_px)
    v = (-dx * sa + dy * ca) / np.float32(polar_px)
    r2 = u * u + v * v
    zone = (r2 < s.rim_fraction**2) & (blob.mask > 0)
    depth = np.sqrt(np.maximum(1.0 - r2, 1e-6))
    # surface area per projected pixel: |normal| / normal_z on the spheroid
    ratio = equatorial_px / polar_px
    weight = np.sqrt(u * u + (v * ratio) ** 2 + depth * depth) / depth

    glare = highlight_mask(lab8, zone, s)
    usable = zone & ~glare
    labels = classify_lab8(lab8, s.colour_classes)
    w_usable = np.where(usable, weight, 0.0).astype(np.float32)
    total = float(w_usable.sum())
    fractions: dict[str, float] = {}
    mean_lab = (0.0, 0.0, 0.0)
    if total > 0:
        for i, cls in enumerate(s.colour_classes):
            fractions[cls.name] = float(w_usable[labels == i].sum()) / total
        lab_mean = [float((lab8[..., c] * w_usable).sum()) / total for c in range(3)]
        mean_lab = (lab_mean[0] * 100.0 / 255.0, lab_mean[1] - 128.0, lab_mean[2] - 128.0)
    else:
        fractions = {cls.name: 0.0 for cls in s.colour_classes}

    defects = find_defects(usable & (labels < 0), zone, weight, u, v, ratio, mm, s)
    defect_area_mm2 = sum(d.area_mm2 for d in defects)

    equatorial_mm = 2 * equatorial_px * mm
    polar_mm = 2 * polar_px * mm
    return FruitView(
        lane=lane,
        x_px=blob.x0 + cx,
        y_px=band_y0 + blob.y0 + cy,
        diameter_major_mm=max(equatorial_mm, polar_mm),
        diameter_minor_mm=min(equatorial_mm, polar_mm),
        area_cm2=area_px * mm * mm / 100.0,
        colour_fractions=fractions,
        mean_lab=mean_lab,
        defect_count=len(defects),
        defect_area_cm2=defect_area_mm2 / 100.0,
        elongation=max(equatorial_mm, polar_mm) / max(min(equatorial_mm, polar_mm), 1e-9),
        roundness=roundness,
        convexity=blob.convexity,
        flags=frozenset(flags),
        equatorial_mm=equatorial_mm,
        polar_mm=polar_mm,
        defects=tuple(defects),
    )
