"""The pipeline's settings and its per-view output types, shared by every vision step.

Kept apart from ``vision.pipeline`` so the steps can import them without a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vision.colour import ColourClass

CANON_SIZE = 128  # side of the canonical surface-weight map; covers u, v in [-1, 1]
WEIGHT_SCALE = 48.0  # uint8 weight units per unit of surface/projected area


@dataclass(frozen=True)
class VisionSettings:
    mm_per_px: float
    lanes: int
    colour_classes: tuple[ColourClass, ...]
    min_fruit_diameter_mm: float = 12.0  # blobs smaller than this are debris, not fruit
    foreground_threshold: float = 18.0  # largest |BGR - background| over the channels, 8-bit levels
    edge_level: float = 0.4  # silhouette edge at this share of the local fruit/belt contrast
    stalk_width_mm: float = 4.5  # opening removes stalks thinner than this from the silhouette
    rim_fraction: float = 0.95  # colour and defects are read inside this share of the ellipse radius
    min_defect_area_mm2: float = 3.0  # smaller dark blobs are skin texture or noise
    highlight_l: float = 80.0  # CIELAB L above which a low-chroma pixel is a specular highlight
    highlight_chroma: float = 60.0
    highlight_grow: float = 1.5  # glare disk radius beyond the core, in core radii (2.5 radii in all)
    double_convexity: float = 0.90  # a silhouette less convex than this holds two fruit (or has a waist)
    misshapen_convexity: float = 0.95
    # A pinhole camera this high above the belt plane, looking down on the image centre:
    # sizes and positions are taken back from the fruit's height to the belt plane and the
    # natural (cos^4) vignetting is undone. None: a telecentric-like view (no correction).
    camera_height_mm: float | None = None
    # Skin this many CIELAB L* darker than the fruit's own skin of the same colour class
    # around it is a defect even inside a class box (a bruise on a red apple is dark red).
    own_skin_darker_l: float = 8.0


@dataclass(frozen=True)
class DefectView:
    """One defect blob in one view, located on the fitted spheroid."""

    theta: float  # polar angle from the top pole (rad)
    phi: float  # azimuth in the view frame (rad, 0 = facing the camera, + toward +x)
    area_mm2: float  # surface area (projection corrected by the spheroid's slope)
    partial: bool  # touches the edge of the analysed zone, so part of it is hidden
    # touches the analysed zone's rim (not only the glare): seen where the rim's own artefacts
    # are (cavities, limb shading, the belt at the outline), so one such sighting is not enough
    on_rim: bool = False


@dataclass(frozen=True)
class FruitView:
    lane: int
    x_px: float
    y_px: float
    diameter_major_mm: float
    diameter_minor_mm: float
    area_cm2: float
    colour_fractions: dict[str, float]
    mean_lab: tuple[float, float, float]
    defect_count: int
    defect_area_cm2: float
    elongation: float
    roundness: float
    convexity: float
    flags: frozenset[str]
    equatorial_mm: float = 0.0  # across the spin axis (image x), also the depth
    polar_mm: float = 0.0  # along the spin axis (image y)
    defects: tuple[DefectView, ...] = field(default=())
    quality_score: float | None = None  # from a taught model (0 = best), on scored views only
