"""Synthetic fruit with exact ground truth: shape, skin colour map and defects.

Owns what a simulated cup holds (``generate_cup``) and the fruit's surface paint
(``paint_surface``), which the scene renderer samples and from which the truth numbers are
integrated. Knows nothing about cameras or pixels, and nothing about the vision pipeline.

Two kinds of fruit: ``generate_cup`` paints skin in flat colours well inside the colour-class
boxes and defects outside every box (exact, easy truth); ``generate_realistic_cup`` paints
skin whose colour varies from fruit to fruit and across the surface as on real photos,
anywhere inside its class box, and defects whose colours overlap the skin's classes: a
bruise is the skin beneath it darkened, russet is brown-yellow, as on real fruit.

Geometry: every fruit is a spheroid whose symmetry (stem-calyx) axis lies across the belt
(image y), because the cup rollers spin it about that axis. ``equatorial_mm`` is the diameter
perpendicular to the axis (seen along x), ``polar_mm`` the length along the axis (seen along
y). Surface coordinates are the polar angle ``theta`` from the stem pole (0..pi) and the
azimuth ``phi`` around the axis (0..2pi) in the fruit's own frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from simulators.settings import SimulationSettings

PRODUCTS = ("apple", "cherry", "mango", "pomegranate")

# Skin colours (CIELAB) well inside the canonical colour-class boxes; defects and the
# stem/calyx cavity are painted outside every class so truth needs no judgement call.
SKIN_LAB: dict[str, dict[str, tuple[float, float, float]]] = {
    "apple": {"red": (42.0, 52.0, 28.0), "yellow": (78.0, 3.0, 60.0), "green": (62.0, -28.0, 48.0)},
    "mango": {"red": (45.0, 45.0, 30.0), "yellow": (76.0, 6.0, 65.0), "green": (58.0, -25.0, 42.0)},
    "pomegranate": {"red": (40.0, 50.0, 25.0), "yellow": (74.0, 5.0, 52.0), "green": (60.0, -20.0, 40.0)},
    "cherry": {"dark_red": (24.0, 32.0, 10.0), "red": (45.0, 55.0, 28.0), "yellow": (78.0, 2.0, 58.0)},
}
DEFECT_LAB: dict[str, tuple[float, float, float]] = {
    "bruise": (38.0, 6.0, 16.0),
    "rot": (25.0, 8.0, 12.0),
    "dark_spot": (18.0, 1.0, 3.0),
    "crack": (28.0, 5.0, 9.0),
    "scar": (48.0, 7.0, 20.0),
}
CAVITY_LAB = (32.0, 4.0, 18.0)  # stem cavity / calyx: brownish, outside every class
STALK_LAB = (40.0, -6.0, 24.0)  # the stalk sticking out of the stem pole

DEFECT_KINDS = ("bruise", "rot", "dark_spot", "crack", "scar")
_LINE_KINDS = ("crack", "scar")

# The recipes' canonical colour-class boxes (CIELAB, half-open), as ``vision.colour`` defines
# them; a test checks the two agree. The realistic skin stays inside its class's box, so the
# truth shares are still exact, but anywhere in it, not only well inside.
_CLASS_BOXES: dict[str, dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]]] = {
    product: {
        "red": ((0.0, 20.0, -128.0), (100.01, 128.0, 128.0)),
        "yellow": ((55.0, -8.0, 35.0), (100.01, 20.0, 128.0)),
        "green": ((0.0, -128.0, 10.0), (100.01, -8.0, 128.0)),
    }
    for product in ("apple", "mango", "pomegranate")
}
_CLASS_BOXES["cherry"] = {
    "dark_red": ((0.0, 15.0, -128.0), (35.0, 128.0, 128.0)),
    "red": ((35.0, 20.0, -128.0), (100.01, 128.0, 128.0)),
    "yellow": ((55.0, -8.0, 35.0), (100.01, 20.0, 128.0)),
}
_BOX_MARGIN = 1.0  # CIELAB units kept inside a box: its border is where the classes meet

# Realistic skin, from the 60 freshest FGrade tomato photos (grades 1-2; see docs/vision.md):
# the spread of a fruit's median colour from fruit to fruit (sigma 7-10 per CIELAB channel,
# of which a grader's variety choice explains part: 5 is used), and the skin's own variation
# beyond shading: fine grain (sigma 1.2-1.5 over ~3 % of the fruit) and broad mottling
# (sigma 3, what the 7-9 over the whole fruit leaves once shading is taken out). The class
# means stay those of ``SKIN_LAB``: no photos of the four products were to hand.
_REAL_SKIN_SPREAD = 5.0
_REAL_MOTTLE_SIGMA = 3.0
_REAL_GRAIN_SIGMA = 1.3
_MOTTLE_WAVES = 8  # sinusoids per scale: broad (wavelength 12-30 mm) and grain (1.5-4 mm)

# Realistic defects [unverified: typical appearances, not measured on the four products]:
# a bruise is the skin beneath darkened (L* 8-20 lower, chroma 65-90 %), so on a red apple it
# is dark red and inside the red class; russet is brown-yellow, and often inside the yellow
# class; scars are corky, rot brown, spots near black, cracks dark.
REALISTIC_DEFECT_KINDS = ("bruise", "russet", "rot", "dark_spot", "crack", "scar")
_REALISTIC_KIND_SHARES = (0.3, 0.15, 0.1, 0.15, 0.15, 0.15)
_REALISTIC_DEFECT_LAB = {  # mean and sigma per CIELAB channel
    "russet": ((56.0, 9.0, 32.0), (4.0, 3.0, 4.0)),
    "rot": ((32.0, 12.0, 16.0), (4.0, 3.0, 3.0)),
    "dark_spot": ((22.0, 3.0, 6.0), (3.0, 1.5, 2.0)),
    "crack": ((30.0, 6.0, 11.0), (3.0, 2.0, 2.0)),
    "scar": ((58.0, 7.0, 21.0), (4.0, 2.0, 3.0)),
}


@dataclass(frozen=True)
class _Profile:
    equatorial_mm: tuple[float, float]
    polar_ratio: tuple[float, float]  # polar / equatorial
    density_g_cm3: float
    cavity_deg: float  # angular radius of the stem and calyx cavities
    stalk_mm: tuple[float, float]  # stalk length range (0 = none)
    stalk_width_mm: float
    spot_mm: tuple[float, float]  # diameter range of round defects
    line_mm: tuple[float, float]  # length range of cracks and scars


_PROFILES = {
    "apple": _Profile((60.0, 95.0), (0.86, 1.0), 0.808, 11.0, (6.0, 16.0), 2.5, (2.0, 14.0), (6.0, 20.0)),
    "cherry": _Profile((20.0, 34.0), (0.88, 1.0), 1.05, 10.0, (25.0, 45.0), 1.3, (1.5, 6.0), (4.0, 10.0)),
    "mango": _Profile((70.0, 110.0), (1.3, 1.6), 0.95, 7.0, (0.0, 6.0), 3.0, (2.0, 16.0), (8.0, 25.0)),
    "pomegranate": _Profile((85.0, 105.0), (0.85, 0.95), 1.0, 14.0, (5.0, 10.0), 9.0, (2.0, 16.0), (8.0, 25.0)),
}


@dataclass(frozen=True)
class DefectTruth:
    """One skin defect. Round kinds are the surface points within ``radius_mm`` (3-D distance) of
    the centre; line kinds (crack, scar) those within ``width_mm / 2`` of the chord from the
    centre to the end point."""

    kind: str
    area_mm2: float  # true area on the fruit surface, integrated on the spheroid
    theta: float  # centre, polar angle from the stem pole (rad)
    phi: float  # centre, azimuth in the fruit frame (rad)
    radius_mm: float  # round kinds: radius; line kinds: half the width
    end_theta: float = 0.0  # line kinds: the other end
    end_phi: float = 0.0
    lab: tuple[float, float, float] | None = None  # its own colour; None: the kind's in DEFECT_LAB

    @property
    def diameter_mm(self) -> float:
        """Equivalent circular diameter of the defect's surface area."""
        return math.sqrt(4.0 * self.area_mm2 / math.pi)


@dataclass(frozen=True)
class FruitTruth:
    product: str
    diameter_major_mm: float
    diameter_minor_mm: float
    weight_g: float
    colour_fractions: dict[str, float]  # class -> fraction of the surface outside the cavities
    defects: tuple[DefectTruth, ...]
    # rendering
    equatorial_mm: float
    polar_mm: float
    skin: tuple[tuple[str, tuple[float, float, float]], ...]  # sector class and Lab, in order
    sector_edges: tuple[float, ...]  # azimuth start of each sector (rad), increasing, 0..2pi
    wobble_rad: float  # sector borders shift by wobble*sin(wobble_k*theta + wobble_phase)
    wobble_k: int
    wobble_phase: float
    cavity_rad: float
    stalk_mm: float
    stalk_width_mm: float
    stalk_angle_rad: float  # in-image lean of the stalk from the axis
    spin_phase_rad: float  # rotation at belt position 0
    spin_rev_per_cup: float  # how far the rollers turn the fruit per cup of belt travel
    tilt_rad: float  # in-image rotation of the symmetry axis from vertical
    offset_mm: tuple[float, float]  # seat offset from the cup centre (x, y)
    # realistic skin: per sinusoid, wave vector (1/mm, 3), phase and CIELAB amplitude (3);
    # () = flat colours
    mottle: tuple[tuple[float, ...], ...] = ()
    # realistic lighting: specular strength (0..1) and Phong exponent of this fruit's skin
    gloss: tuple[float, float] = (0.85, 0.0)

    @property
    def volume_cm3(self) -> float:
        return math.pi / 6.0 * self.equatorial_mm**2 * self.polar_mm / 1000.0


@dataclass(frozen=True)
class CupTruth:
    lane: int
    cup_index: int
    fruit: tuple[FruitTruth, ...]  # () = empty cup, 2 items = double fruit in one cup

    @property
    def weight_g(self) -> float:
        return float(sum(f.weight_g for f in self.fruit))


def surface_point(equatorial_mm: float, polar_mm: float, theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """3-D point (x, y, z) in the fruit frame; y along the axis toward the calyx, z out of phi=0."""
    a = equatorial_mm / 2.0
    b = polar_mm / 2.0
    st = np.sin(theta)
    return np.stack([a * st * np.sin(phi), -b * np.cos(theta), a * st * np.cos(phi)], axis=-1)


def area_element(equatorial_mm: float, polar_mm: float, theta: np.ndarray) -> np.ndarray:
    """|dP/dtheta x dP/dphi| of the spheroid: surface area per unit theta*phi."""
    a = equatorial_mm / 2.0
    b = polar_mm / 2.0
    return a * np.sin(theta) * np.sqrt(a * a * np.cos(theta) ** 2 + b * b * np.sin(theta) ** 2)


def _defect_mask(fruit: FruitTruth, defect: DefectTruth, points: np.ndarray) -> np.ndarray:
    centre = surface_point(fruit.equatorial_mm, fruit.polar_mm, np.array(defect.theta), np.array(defect.phi))
    if defect.kind not in _LINE_KINDS:
        d2 = np.sum((points - centre) ** 2, axis=-1)
        return np.asarray(d2 <= defect.radius_mm**2)
    end = surface_point(fruit.equatorial_mm, fruit.polar_mm, np.array(defect.end_theta), np.array(defect.end_phi))
    seg = end - centre
    t = np.clip(np.sum((points - centre) * seg, axis=-1) / float(np.dot(seg, seg)), 0.0, 1.0)
    nearest = centre + t[..., None] * seg
    return np.asarray(np.sum((points - nearest) ** 2, axis=-1) <= defect.radius_mm**2)


def paint_surface(
    fruit: FruitTruth, theta: np.ndarray, phi: np.ndarray, points: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Lab colour (..., 3) float32 and a label (..., ) int8 per surface point.

    Label: index into ``fruit.skin`` for skin, -1 defect, -2 stem/calyx cavity.
    """
    if points is None:
        points = surface_point(fruit.equatorial_mm, fruit.polar_mm, theta, phi)
    idx = _skin_label(fruit, theta, phi)
    label = idx.copy()
    palette = np.asarray([lab for _, lab in fruit.skin], dtype=np.float32)
    lab = palette[idx]
    if fruit.mottle:
        lab = _mottled(fruit, lab, idx, points)
    for defect in fruit.defects:
        hit = _defect_mask(fruit, defect, points)
        if hit.any():
            lab[hit] = defect.lab if defect.lab is not None else DEFECT_LAB[defect.kind]
            label[hit] = -1
    cavity = (theta < fruit.cavity_rad) | (theta > np.pi - fruit.cavity_rad)
    lab[cavity] = CAVITY_LAB
    label[cavity] = -2
    return lab, label


def _mottled(fruit: FruitTruth, lab: np.ndarray, idx: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Skin colour varying over the surface by sums of sinusoids of the 3-D position, kept
    inside each sector's class box so the truth shares stay exact."""
    waves = np.asarray(fruit.mottle, dtype=np.float32)
    flat = points.reshape(-1, 3).astype(np.float32)
    phase = flat @ waves[:, :3].T + waves[:, 3]
    out = lab.reshape(-1, 3) + np.sin(phase) @ waves[:, 4:7]
    boxes = _CLASS_BOXES[fruit.product]
    lows = np.array([boxes[name][0] for name, _ in fruit.skin], np.float32) + _BOX_MARGIN
    highs = np.array([boxes[name][1] for name, _ in fruit.skin], np.float32) - _BOX_MARGIN
    sector = idx.reshape(-1)
    return np.clip(out, lows[sector], highs[sector]).reshape(lab.shape).astype(np.float32)


def _mottle_waves(rng: np.random.Generator) -> tuple[tuple[float, ...], ...]:
    """Random sinusoids whose amplitudes give the skin the measured broad and fine sigma:
    a sum of n sinusoids of amplitude A has sigma A sqrt(n / 2)."""
    waves = []
    for sigma, wavelength_mm in ((_REAL_MOTTLE_SIGMA, (12.0, 30.0)), (_REAL_GRAIN_SIGMA, (1.5, 4.0))):
        amplitude = sigma / math.sqrt(_MOTTLE_WAVES / 2)
        for _ in range(_MOTTLE_WAVES):
            direction = rng.normal(size=3)
            direction /= np.linalg.norm(direction)
            k = 2 * np.pi / rng.uniform(*wavelength_mm)
            # lightness varies most; hue follows it a little (a redder, darker streak)
            channel = rng.normal(size=3) * (1.0, 0.7, 0.7)
            channel *= amplitude / max(1e-9, float(np.sqrt(np.mean(channel**2))))
            waves.append((*(direction * k), rng.uniform(0, 2 * np.pi), *channel))
    return tuple(tuple(float(v) for v in w) for w in waves)


def _realistic_skin_colour(product: str, name: str, rng: np.random.Generator) -> tuple[float, float, float]:
    low, high = _CLASS_BOXES[product][name]
    base = np.array(SKIN_LAB[product][name]) + rng.normal(scale=_REAL_SKIN_SPREAD, size=3)
    clipped = np.clip(base, np.array(low) + _BOX_MARGIN, np.array(high) - _BOX_MARGIN)
    return float(clipped[0]), float(clipped[1]), float(clipped[2])


def _realistic_defect_colour(fruit: FruitTruth, defect: DefectTruth, rng: np.random.Generator) -> tuple[float, float, float]:
    if defect.kind == "bruise":
        sector = int(_skin_label(fruit, np.array([defect.theta]), np.array([defect.phi]))[0])
        skin_l, skin_a, skin_b = fruit.skin[sector][1]
        darker, chroma = rng.uniform(8.0, 20.0), rng.uniform(0.65, 0.9)
        return max(5.0, skin_l - darker), skin_a * chroma, skin_b * chroma
    mean, sigma = _REALISTIC_DEFECT_LAB[defect.kind]
    lab = rng.normal(mean, sigma)
    return float(lab[0]), float(lab[1]), float(lab[2])


def _integrate_defect(fruit: FruitTruth, defect: DefectTruth) -> tuple[float, dict[str, float]]:
    """Surface area of a defect by quadrature on a local theta/phi grid (to ~0.3 %), and how
    much of each skin class it covers."""
    a = fruit.equatorial_mm / 2.0
    reach = defect.radius_mm
    if defect.kind in _LINE_KINDS:
        reach += float(
            np.linalg.norm(
                surface_point(fruit.equatorial_mm, fruit.polar_mm, np.array(defect.end_theta), np.array(defect.end_phi))
                - surface_point(fruit.equatorial_mm, fruit.polar_mm, np.array(defect.theta), np.array(defect.phi))
            )
        )
    min_radius = min(a, fruit.polar_mm / 2.0)
    dtheta = min(np.pi, 1.6 * reach / min_radius + 0.02)
    th_lo = max(1e-4, defect.theta - dtheta)
    th_hi = min(np.pi - 1e-4, defect.theta + dtheta)
    sin_min = max(0.05, min(math.sin(th_lo), math.sin(th_hi)))
    dphi = min(np.pi, 1.6 * reach / (a * sin_min) + 0.02)
    n = 260
    th = th_lo + (np.arange(n) + 0.5) * (th_hi - th_lo) / n
    ph = defect.phi - dphi + (np.arange(n) + 0.5) * (2 * dphi) / n
    tt, pp = np.meshgrid(th, ph, indexing="ij")
    pts = surface_point(fruit.equatorial_mm, fruit.polar_mm, tt, pp)
    hit = _defect_mask(fruit, defect, pts)
    cell = (th_hi - th_lo) / n * (2 * dphi) / n
    dA = area_element(fruit.equatorial_mm, fruit.polar_mm, tt) * cell
    skin_label = _skin_label(fruit, tt, pp)
    outside_cavity = (tt >= fruit.cavity_rad) & (tt <= np.pi - fruit.cavity_rad)
    covered: dict[str, float] = {}
    for i, (name, _) in enumerate(fruit.skin):
        covered[name] = covered.get(name, 0.0) + float(dA[hit & (skin_label == i) & outside_cavity].sum())
    return float(dA[hit].sum()), covered


def _skin_label(fruit: FruitTruth, theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    shifted = (phi - fruit.wobble_rad * np.sin(fruit.wobble_k * theta + fruit.wobble_phase)) % (2 * np.pi)
    edges = np.asarray(fruit.sector_edges)
    return ((np.searchsorted(edges, shifted, side="right") - 1) % len(edges)).astype(np.int8)


def _surface_outside_cavities(fruit: FruitTruth) -> float:
    n = 4000
    th = fruit.cavity_rad + (np.arange(n) + 0.5) * (np.pi - 2 * fruit.cavity_rad) / n
    return float(area_element(fruit.equatorial_mm, fruit.polar_mm, th).sum() * (np.pi - 2 * fruit.cavity_rad) / n * 2 * np.pi)


def _colour_truth(fruit: FruitTruth, covered: list[dict[str, float]]) -> dict[str, float]:
    """Share of the surface outside the cavities painted in each class.

    Every sector border shifts by the same wobble at a given latitude, so each sector keeps its
    azimuth width at every latitude and its share of the surface is exactly width / 2pi; the
    defects painted over a class are then subtracted (their overlap is neglected).
    """
    total = _surface_outside_cavities(fruit)
    edges = list(fruit.sector_edges) + [fruit.sector_edges[0] + 2 * np.pi]
    fractions: dict[str, float] = {}
    for i, (name, _) in enumerate(fruit.skin):
        fractions[name] = fractions.get(name, 0.0) + (edges[i + 1] - edges[i]) / (2 * np.pi)
    for c in covered:
        for name, area in c.items():
            fractions[name] -= area / total
    return fractions


def _skin_layout(product: str, rng: np.random.Generator) -> tuple[list[str], list[float]]:
    """Sector classes and their azimuth shares: a blush over a ground colour, as fruit grow."""
    if product == "cherry":
        ripe = rng.uniform()
        if ripe < 0.6:
            shares = {"dark_red": rng.uniform(0.55, 1.0)}
            shares["red"] = 1.0 - shares["dark_red"]
        elif ripe < 0.9:
            shares = {"red": rng.uniform(0.5, 1.0)}
            shares["yellow"] = 1.0 - shares["red"]
        else:
            shares = {"yellow": rng.uniform(0.4, 0.8), "red": 0.0}
            shares["red"] = 1.0 - shares["yellow"]
        blush, grounds = ("dark_red" if "dark_red" in shares else "red"), None
        del grounds
    else:
        red = float(rng.choice([rng.uniform(0.0, 0.3), rng.uniform(0.3, 0.95)]))
        ground = rng.uniform()
        yellow = (1.0 - red) * ground
        shares = {"red": red, "yellow": yellow, "green": 1.0 - red - yellow}
        blush = "red"
    names = [n for n, s in shares.items() if s > 0.02]
    total = sum(shares[n] for n in names)
    # Split the blush into one to three patches so a single view rarely sees all of it.
    patches = int(rng.integers(1, 4))
    classes: list[str] = []
    widths: list[float] = []
    others = [n for n in names if n != blush]
    for p in range(patches):
        if blush in names:
            classes.append(blush)
            widths.append(shares[blush] / total / patches)
        for n in others:
            classes.append(n)
            widths.append(shares[n] / total / patches)
        if not names:
            break
        del p
    return classes, widths


def _make_defects(
    profile: _Profile, eq_mm: float, pol_mm: float, cavity: float, rng: np.random.Generator, realistic: bool = False
) -> list[DefectTruth]:
    count = 1 + int(rng.geometric(0.6)) - 1
    count = min(count, 3)
    out: list[DefectTruth] = []
    a = eq_mm / 2.0
    for _ in range(count):
        if realistic:
            kind = str(rng.choice(REALISTIC_DEFECT_KINDS, p=list(_REALISTIC_KIND_SHARES)))
        else:
            kind = str(rng.choice(DEFECT_KINDS, p=[0.3, 0.15, 0.25, 0.15, 0.15]))
        # Defects sit on the cheeks: the cavities and a margin around them are the stem and
        # calyx, which graders mask out anyway.
        margin = cavity + math.radians(14.0)
        theta = float(np.arccos(rng.uniform(math.cos(np.pi - margin), math.cos(margin))))
        phi = float(rng.uniform(0.0, 2 * np.pi))
        if kind in _LINE_KINDS:
            length = float(rng.uniform(*profile.line_mm))
            width = float(rng.uniform(1.2, 2.0) if kind == "crack" else rng.uniform(2.0, 4.0))
            width = min(width, max(0.9, 0.1 * eq_mm))
            direction = rng.uniform(0.0, 2 * np.pi)
            d_theta = length / a * math.cos(direction) * 0.9
            end_theta = float(np.clip(theta + d_theta, margin, np.pi - margin))
            end_phi = phi + length / (a * max(0.3, math.sin(theta))) * math.sin(direction) * 0.9
            out.append(DefectTruth(kind, 0.0, theta, phi, width / 2.0, end_theta, float(end_phi)))
        else:
            diameter = float(rng.uniform(*profile.spot_mm))
            out.append(DefectTruth(kind, 0.0, theta, phi, diameter / 2.0))
    del pol_mm
    return out


def _generate_fruit(product: str, rng: np.random.Generator, with_defects: bool, small: bool, realistic: bool = False) -> FruitTruth:
    profile = _PROFILES[product]
    lo, hi = profile.equatorial_mm
    # two fruit only fit one cup when they are small ones
    eq_mm = float(rng.uniform(lo, lo + 0.3 * (hi - lo)) if small else rng.uniform(lo, hi))
    pol_mm = eq_mm * float(rng.uniform(*profile.polar_ratio))
    classes, widths = _skin_layout(product, rng)
    palette = SKIN_LAB[product]
    skin = []
    for name in classes:
        base = palette[name]
        jitter = rng.uniform(-3.0, 3.0, size=3)
        skin.append((name, (float(base[0] + jitter[0]), float(base[1] + jitter[1]), float(base[2] + jitter[2]))))
    if realistic:
        # one colour per class on a fruit (its blush patches match), spread as on real fruit
        colour = {name: _realistic_skin_colour(product, name, rng) for name in dict.fromkeys(classes)}
        skin = [(name, colour[name]) for name in classes]
    start = float(rng.uniform(0.0, 2 * np.pi))
    edges = np.cumsum([0.0, *widths[:-1]]) * 2 * np.pi
    order = np.argsort((edges + start) % (2 * np.pi))
    edges_sorted = tuple(float(e) for e in ((edges + start) % (2 * np.pi))[order])
    skin_sorted = tuple(skin[i] for i in order)
    # searchsorted needs a sector starting at 0: the last sector wraps, handled by modulo.
    cavity = math.radians(profile.cavity_deg * float(rng.uniform(0.8, 1.2)))
    stalk = float(rng.uniform(*profile.stalk_mm))
    draft = FruitTruth(
        product=product,
        diameter_major_mm=max(eq_mm, pol_mm),
        diameter_minor_mm=min(eq_mm, pol_mm),
        weight_g=profile.density_g_cm3 * math.pi / 6.0 * eq_mm**2 * pol_mm / 1000.0,
        colour_fractions={},
        defects=(),
        equatorial_mm=eq_mm,
        polar_mm=pol_mm,
        skin=skin_sorted,
        sector_edges=edges_sorted,
        wobble_rad=float(rng.uniform(0.05, 0.35)),
        wobble_k=int(rng.integers(1, 4)),
        wobble_phase=float(rng.uniform(0.0, 2 * np.pi)),
        cavity_rad=cavity,
        stalk_mm=stalk,
        stalk_width_mm=profile.stalk_width_mm,
        stalk_angle_rad=float(rng.uniform(-0.35, 0.35)),
        spin_phase_rad=float(rng.uniform(0.0, 2 * np.pi)),
        spin_rev_per_cup=float(rng.uniform(0.45, 0.65)),
        tilt_rad=float(rng.uniform(-0.12, 0.12)),
        offset_mm=(float(rng.uniform(-3.0, 3.0)), float(rng.uniform(-2.0, 2.0))),
    )
    if realistic:
        # glossy (waxy apple, cherry) to matte (russeted, dusty): strength and sharpness
        draft = replace(draft, mottle=_mottle_waves(rng), gloss=(float(rng.uniform(0.5, 1.0)), float(rng.uniform(12.0, 90.0))))
    covered: list[dict[str, float]] = []
    if with_defects:
        defects = []
        for d in _make_defects(profile, eq_mm, pol_mm, cavity, rng, realistic):
            area, cover = _integrate_defect(draft, d)
            d = replace(d, area_mm2=area)
            if realistic:
                d = replace(d, lab=_realistic_defect_colour(draft, d, rng))
            defects.append(d)
            covered.append(cover)
        draft = replace(draft, defects=tuple(defects))
    return replace(draft, colour_fractions=_colour_truth(draft, covered))


def generate_cup(product: str, settings: SimulationSettings, lane: int, cup_index: int) -> CupTruth:
    """What sits in cup ``cup_index`` of ``lane``; deterministic in (seed, lane, cup_index)."""
    return _generate_cup(product, settings, lane, cup_index, realistic=False)


def generate_realistic_cup(product: str, settings: SimulationSettings, lane: int, cup_index: int) -> CupTruth:
    """Like ``generate_cup``, with skin and defect colours as on real fruit (see the module
    docstring); deterministic in (seed, lane, cup_index), and another fruit than
    ``generate_cup``'s for the same numbers."""
    return _generate_cup(product, settings, lane, cup_index, realistic=True)


def _generate_cup(product: str, settings: SimulationSettings, lane: int, cup_index: int, realistic: bool) -> CupTruth:
    if product not in _PROFILES:
        raise ValueError(f"unknown product {product!r}; expected one of {PRODUCTS}")
    stream = 0x5EA1 if realistic else 0x9E37
    rng = np.random.default_rng([settings.seed, lane, cup_index & 0xFFFFFFFF, stream])
    draw = rng.uniform()
    if draw < settings.empty_cup_rate:
        return CupTruth(lane, cup_index, ())
    count = 2 if draw < settings.empty_cup_rate + settings.double_fruit_rate else 1
    fruit = tuple(
        _generate_fruit(product, rng, rng.uniform() < settings.defect_rate, small=count > 1, realistic=realistic)
        for _ in range(count)
    )
    return CupTruth(lane, cup_index, fruit)
