"""The synthetic conveyor scene: lanes of cups on a dark belt seen by a top camera.

Owns the shared belt/image geometry (``SceneGeometry``) and the renderer that turns the
simulated cups (``simulators.fruit``) into BGR frames at a belt position. Fruit are spheroids
drawn with orthographic projection; they spin about their stem-calyx axis as the belt
advances, so every frame shows a different side. Nuisances the vision pipeline must ignore are
drawn on purpose: a specular highlight, the stem/calyx cavity and stalk, a dark non-uniform
belt, blur, sensor noise and lighting drift. Knows nothing about the vision pipeline.

``RealisticSceneRenderer`` is the opt-in harder scene (``scene_renderer("realistic", ...)``,
``gradeline bench vision-accuracy --scene realistic``): perspective from the camera's
height, vignetting, uneven light across lanes and a highlight that differs per fruit. The
default scene's frames do not change with it.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from simulators.fruit import STALK_LAB, CupTruth, FruitTruth, paint_surface
from simulators.settings import CameraLaneFault, SimulatedCameraSettings

_BELT_BGR = (46.0, 42.0, 40.0)  # dark grey-blue demo belt
_DIVIDER_BGR = (70.0, 68.0, 66.0)  # lane dividers between the cup rows
_TEXTURE_THETA = 384
_TEXTURE_PHI = 768


@dataclass(frozen=True)
class SceneGeometry:
    """Belt convention shared with the line runtime: belt moves along +x, cup ``k`` is at the
    inspection point (``exit_x_px``) when the encoder position ``P == k``."""

    width_px: int
    height_px: int
    lanes: int
    mm_per_px: float
    cup_pitch_mm: float

    @property
    def pitch_px(self) -> float:
        return self.cup_pitch_mm / self.mm_per_px

    @property
    def exit_x_px(self) -> float:
        return self.width_px - self.pitch_px / 2.0

    def lane_band(self, lane: int) -> tuple[int, int]:
        return lane * self.height_px // self.lanes, (lane + 1) * self.height_px // self.lanes

    def cup_centre_px(self, lane: int, cup: int, position: float) -> tuple[float, float]:
        y0, y1 = self.lane_band(lane)
        return self.exit_x_px + (position - cup) * self.pitch_px, (y0 + y1) / 2.0


class SceneRenderer:
    """Renders frames deterministically in (seed, position) and the cups it is given."""

    def __init__(
        self,
        geometry: SceneGeometry,
        camera: SimulatedCameraSettings,
        seed: int,
        faults: Sequence[CameraLaneFault] = (),
    ) -> None:
        self.geometry = geometry
        self.camera = camera
        self.seed = seed
        self.faults = tuple(faults)
        self._background = self._make_background()
        self._textures: OrderedDict[tuple[float, ...], np.ndarray] = OrderedDict()
        self._drift_phase = float(np.random.default_rng([seed, 7]).uniform(0, 2 * np.pi))

    # -- geometry -------------------------------------------------------------------------
    def visible_cups(self, position_cups: float) -> list[tuple[int, int]]:
        g = self.geometry
        # a cup is in view while its centre is within one pitch of the image
        k_lo = math.ceil(position_cups - (g.width_px + g.pitch_px - g.exit_x_px) / g.pitch_px)
        k_hi = math.floor(position_cups + (g.exit_x_px + g.pitch_px) / g.pitch_px)
        out: list[tuple[int, int]] = []
        for lane in range(g.lanes):
            for k in range(k_lo, k_hi + 1):
                x, _ = g.cup_centre_px(lane, k, position_cups)
                if -g.pitch_px < x < g.width_px + g.pitch_px:
                    out.append((lane, k))
        return out

    # -- rendering ------------------------------------------------------------------------
    def background(self) -> np.ndarray:
        """The empty belt as the camera would see it before noise (float32 BGR)."""
        return self._background.copy()

    def render(self, position_cups: float, cup: Callable[[int, int], CupTruth]) -> np.ndarray:
        g = self.geometry
        image = self._background.copy()
        for lane, k in self.visible_cups(position_cups):
            truth = cup(lane, k)
            if not truth.fruit:
                continue
            cx, cy = g.cup_centre_px(lane, k, position_cups)
            offsets = _seat_offsets(truth.fruit)
            for fruit, dx_mm in zip(truth.fruit, offsets, strict=True):
                fx = cx + (dx_mm + fruit.offset_mm[0]) / g.mm_per_px
                fy = cy + fruit.offset_mm[1] / g.mm_per_px
                spin = fruit.spin_phase_rad + 2 * np.pi * fruit.spin_rev_per_cup * position_cups
                self._draw_fruit(image, fruit, fx, fy, spin)
        self._darken_faulty_lanes(image, position_cups)
        return self._finish(image, position_cups)

    def _darken_faulty_lanes(self, image: np.ndarray, position_cups: float) -> None:
        # Less light reaches the sensor from that lane's band; the sensor noise is added after
        # (in ``_finish``), so it does not darken with it.
        for fault in self.faults:
            if position_cups >= fault.from_cup and fault.lane < self.geometry.lanes:
                y0, y1 = self.geometry.lane_band(fault.lane)
                image[y0:y1] *= np.float32(fault.gain)

    def _make_background(self) -> np.ndarray:
        g = self.geometry
        rng = np.random.default_rng([self.seed, 3])
        yy, xx = np.mgrid[0 : g.height_px, 0 : g.width_px].astype(np.float32)
        # illumination falls off toward the image corners; a learned background absorbs it
        r2 = ((xx - g.width_px / 2) / g.width_px) ** 2 + ((yy - g.height_px / 2) / g.height_px) ** 2
        shade = 1.0 - 0.35 * r2
        image = np.empty((g.height_px, g.width_px, 3), np.float32)
        for c in range(3):
            image[..., c] = _BELT_BGR[c] * shade
        for lane in range(g.lanes):
            tint = rng.uniform(-3.0, 3.0)
            y0, y1 = g.lane_band(lane)
            image[y0:y1] += tint
        for lane in range(1, g.lanes):
            y0, _ = g.lane_band(lane)
            image[max(0, y0 - 1) : y0 + 1] = _DIVIDER_BGR
        return image

    def _texture(self, fruit: FruitTruth) -> np.ndarray:
        """The fruit's skin as BGR float32 on a theta x phi grid, painted once and cached."""
        # FruitTruth holds a dict, so key the cache on numbers that identify the fruit
        key = (fruit.equatorial_mm, fruit.polar_mm, fruit.spin_phase_rad, fruit.wobble_phase, float(len(fruit.defects)))
        tex = self._textures.get(key)
        if tex is not None:
            self._textures.move_to_end(key)
            return tex
        # About one texel per image pixel around the equator: finer buys nothing in the image,
        # and painting cost grows with the texel count (the demo paints ~30 new fruit a second).
        radius_px = max(fruit.equatorial_mm, fruit.polar_mm) / 2.0 / self.geometry.mm_per_px
        n_phi = int(min(_TEXTURE_PHI, max(64, math.ceil(2.0 * math.pi * radius_px / 32.0) * 32)))
        n_theta = n_phi // 2
        th = (np.arange(n_theta) + 0.5) * np.pi / n_theta
        ph = (np.arange(n_phi) + 0.5) * 2 * np.pi / n_phi
        tt, pp = np.meshgrid(th, ph, indexing="ij")
        lab, _ = paint_surface(fruit, tt, pp)
        tex = cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_Lab2BGR) * 255.0
        self._textures[key] = tex
        if len(self._textures) > 96:
            self._textures.popitem(last=False)
        return tex

    def _skin_at(self, fruit: FruitTruth, u: np.ndarray, v: np.ndarray, w: np.ndarray, spin: float) -> np.ndarray:
        """The skin's colour (BGR float32) where the view meets the fruit at (u, v, w), in its
        semi-axes (u across the spin axis, v along it toward the calyx, w toward the camera)."""
        theta = np.arccos(np.clip(-v, -1.0, 1.0))  # v = -1 (top of the image) is the stem pole
        phi = (np.arctan2(u, w) - spin) % (2 * np.pi)
        texture = self._texture(fruit)
        n_theta, n_phi = texture.shape[:2]
        ti = np.minimum((theta * (n_theta / np.pi)).astype(np.int32), n_theta - 1)
        pi_ = np.minimum((phi * (n_phi / (2 * np.pi))).astype(np.int32), n_phi - 1)
        colour: np.ndarray = texture[ti, pi_]
        return colour

    def _draw_fruit(self, image: np.ndarray, fruit: FruitTruth, fx: float, fy: float, spin: float) -> None:
        g = self.geometry
        a_px = fruit.equatorial_mm / 2.0 / g.mm_per_px
        b_px = fruit.polar_mm / 2.0 / g.mm_per_px
        cos_t, sin_t = math.cos(fruit.tilt_rad), math.sin(fruit.tilt_rad)
        self._draw_stalk(image, fruit, fx, fy, b_px, cos_t, sin_t)
        reach = max(a_px, b_px) + 2
        x0 = max(0, int(math.floor(fx - reach)))
        x1 = min(g.width_px, int(math.ceil(fx + reach)) + 1)
        y0 = max(0, int(math.floor(fy - reach)))
        y1 = min(g.height_px, int(math.ceil(fy + reach)) + 1)
        if x0 >= x1 or y0 >= y1:
            return
        dy, dx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        dx -= fx
        dy -= fy
        # axis frame: v along the stem-calyx axis (stem up), u across it
        u = (dx * cos_t + dy * sin_t) / a_px
        v = (-dx * sin_t + dy * cos_t) / b_px
        r2 = u * u + v * v
        inside = r2 < 1.0
        if not inside.any():
            return
        u = u[inside]
        v = v[inside]
        w = np.sqrt(np.maximum(1.0 - u * u - v * v, 0.0))
        colour = self._skin_at(fruit, u, v, w, spin)
        # Lambertian shading from a light near the camera, plus a specular spot up-left
        nx, ny, nz = u / a_px, v / b_px, w / a_px
        norm = np.sqrt(nx * nx + ny * ny + nz * nz)
        nz_unit = nz / norm
        colour *= (0.8 + 0.2 * nz_unit)[:, None]
        hu, hv = u + 0.35, v + 0.38
        spec = 0.85 * np.exp(-(hu * hu + hv * hv) / (2 * 0.11**2))
        colour += (250.0 - colour) * spec[:, None]
        region = image[y0:y1, x0:x1]
        region[inside] = colour

    def _draw_stalk(
        self, image: np.ndarray, fruit: FruitTruth, fx: float, fy: float, b_px: float, cos_t: float, sin_t: float
    ) -> None:
        if fruit.stalk_mm <= 0:
            return
        g = self.geometry
        # the stem pole in image coordinates (v = -1 along the tilted axis)
        px, py = fx + b_px * sin_t, fy - b_px * cos_t
        angle = fruit.tilt_rad + fruit.stalk_angle_rad
        length_px = (fruit.stalk_mm + 3.0) / g.mm_per_px
        # start a little inside the body so the stalk is attached
        sx, sy = px - 3.0 / g.mm_per_px * math.sin(angle), py + 3.0 / g.mm_per_px * math.cos(angle)
        ex, ey = sx + length_px * math.sin(angle), sy - length_px * math.cos(angle)
        bgr = cv2.cvtColor(np.array([[STALK_LAB]], np.float32), cv2.COLOR_Lab2BGR)[0, 0] * 255.0
        thickness = max(1, int(round(fruit.stalk_width_mm / g.mm_per_px)))
        shift = 4
        cv2.line(
            image,
            (int(round(sx * (1 << shift))), int(round(sy * (1 << shift)))),
            (int(round(ex * (1 << shift))), int(round(ey * (1 << shift)))),
            tuple(float(c) for c in bgr),
            thickness,
            cv2.LINE_8,
            shift,
        )

    def _finish(self, image: np.ndarray, position_cups: float) -> np.ndarray:
        cam = self.camera
        if cam.lighting_drift > 0:
            gain = 1.0 + cam.lighting_drift * math.sin(2 * math.pi * position_cups / 23.7 + self._drift_phase)
            image *= gain
        if cam.blur_px > 0:
            image = cv2.GaussianBlur(image, (0, 0), cam.blur_px)
        if cam.noise_sigma > 0:
            key = int(round(position_cups * 4096)) & 0xFFFFFFFFFFFF
            rng = np.random.default_rng([self.seed, 11, key])
            image += rng.standard_normal(image.shape, dtype=np.float32) * np.float32(cam.noise_sigma)
        return np.clip(image + 0.5, 0, 255).astype(np.uint8)


def _seat_offsets(fruit: tuple[FruitTruth, ...]) -> list[float]:
    """x offsets (mm) of the fruit in one cup: a double is squeezed into one cup, the two
    overlapping in view (one rides on the other), their centres 0.7 of a width apart."""
    if len(fruit) == 1:
        return [0.0]
    widths = [f.equatorial_mm for f in fruit]
    gap = 0.35 * (widths[0] + widths[1])
    return [-gap * widths[1] / (widths[0] + widths[1]), gap * widths[0] / (widths[0] + widths[1])][: len(fruit)]


# --- the realistic scene -------------------------------------------------------------------


@dataclass(frozen=True)
class RealisticOptics:
    """What a real camera over a real belt adds to the plain scene."""

    camera_height_mm: float = 1000.0  # lens above the belt plane, on the image centre
    lens_vignetting: float = 0.12  # falloff at the image corners beyond the natural cos^4
    lane_light_spread: float = 0.08  # light on each lane's centre line: 1 - spread .. 1 + spread / 2
    lamp_offset: tuple[float, float] = (-0.25, -0.3)  # the lamp beside the lens, in image widths/heights


class RealisticSceneRenderer(SceneRenderer):
    """The scene as a real top camera sees it, for fruit from ``generate_realistic_cup``.

    A pinhole camera ``camera_height_mm`` above the image centre: every pixel's ray is cast
    against the fruit's spheroid, which rests on the belt (its centre one equatorial radius
    up), so fruit look larger than at the belt plane, more so toward the image edges, and
    are seen a little from the side away from the centre. Light falls off by cos^4 of the
    ray's angle (natural vignetting) and by the lens's own ``lens_vignetting``, and differs
    from lane to lane; the specular highlight is a Blinn-Phong reflection of a lamp beside
    the lens, of the fruit's own strength and sharpness (``FruitTruth.gloss``), so it moves
    with the fruit across the field and differs from fruit to fruit. The cup geometry
    (``SceneGeometry``) is at the belt plane, as calibration with a flat reference gives it.
    """

    def __init__(
        self,
        geometry: SceneGeometry,
        camera: SimulatedCameraSettings,
        seed: int,
        faults: Sequence[CameraLaneFault] = (),
        optics: RealisticOptics | None = None,
    ) -> None:
        super().__init__(geometry, camera, seed, faults)
        self.optics = optics or RealisticOptics()
        self._light = self._illumination()

    def _illumination(self) -> np.ndarray:
        g, o = self.geometry, self.optics
        yy, xx = np.mgrid[0 : g.height_px, 0 : g.width_px].astype(np.float32)
        x_mm = (xx - g.width_px / 2) * g.mm_per_px
        y_mm = (yy - g.height_px / 2) * g.mm_per_px
        radius2 = x_mm * x_mm + y_mm * y_mm
        cos_ray = o.camera_height_mm / np.sqrt(o.camera_height_mm**2 + radius2)
        corner2 = float(radius2.max())
        light = cos_ray**4 * (1.0 - o.lens_vignetting * radius2 / corner2)
        rng = np.random.default_rng([self.seed, 13])
        centres = [(sum(g.lane_band(lane)) / 2.0) for lane in range(g.lanes)]
        gains = rng.uniform(1.0 - o.lane_light_spread, 1.0 + o.lane_light_spread / 2, size=g.lanes)
        row_gain = np.interp(np.arange(g.height_px), centres, gains).astype(np.float32)
        return np.asarray(light * row_gain[:, None], np.float32)

    def _draw_stalk(
        self, image: np.ndarray, fruit: FruitTruth, fx: float, fy: float, b_px: float, cos_t: float, sin_t: float
    ) -> None:
        # the stalk sits at the fruit's centre height: magnified about the image centre
        g = self.geometry
        m = self._magnification(fruit)
        cx, cy = g.width_px / 2.0, g.height_px / 2.0
        super()._draw_stalk(image, fruit, cx + (fx - cx) * m, cy + (fy - cy) * m, b_px * m, cos_t, sin_t)

    def _magnification(self, fruit: FruitTruth) -> float:
        height = self.optics.camera_height_mm
        return height / (height - fruit.equatorial_mm / 2.0)

    def _draw_fruit(self, image: np.ndarray, fruit: FruitTruth, fx: float, fy: float, spin: float) -> None:
        g, o = self.geometry, self.optics
        s = g.mm_per_px
        a_mm, b_mm = fruit.equatorial_mm / 2.0, fruit.polar_mm / 2.0
        height = o.camera_height_mm
        cos_t, sin_t = math.cos(fruit.tilt_rad), math.sin(fruit.tilt_rad)
        self._draw_stalk(image, fruit, fx, fy, b_mm / s, cos_t, sin_t)
        centre = np.array([(fx - g.width_px / 2) * s, (fy - g.height_px / 2) * s, a_mm])
        # the box that holds the silhouette: the centre's image, and the largest semi-axis
        # magnified as if at the fruit's top
        m = self._magnification(fruit)
        px, py = g.width_px / 2 + (fx - g.width_px / 2) * m, g.height_px / 2 + (fy - g.height_px / 2) * m
        reach = max(a_mm, b_mm) / s * height / (height - 2 * a_mm) * 1.15 + 3
        x0, x1 = max(0, int(px - reach)), min(g.width_px, int(px + reach) + 1)
        y0, y1 = max(0, int(py - reach)), min(g.height_px, int(py + reach) + 1)
        if x0 >= x1 or y0 >= y1:
            return
        # rays from the lens through each pixel's point on the belt plane, in the fruit's
        # frame scaled to the unit sphere (u across the axis, v along it, w up); written per
        # component on rows and columns, as whole-box matrix products cost far more
        dx = ((np.arange(x0, x1) - g.width_px / 2) * s).astype(np.float32)[None, :]
        dy = ((np.arange(y0, y1) - g.height_px / 2) * s).astype(np.float32)[:, None]
        frame = np.array([[cos_t / a_mm, sin_t / a_mm, 0.0], [-sin_t / b_mm, cos_t / b_mm, 0.0], [0.0, 0.0, 1.0 / a_mm]])
        lens = np.array([0.0, 0.0, height])
        q0 = frame @ (lens - centre)
        qd_u = (cos_t / a_mm) * dx + (sin_t / a_mm) * dy
        qd_v = (-sin_t / b_mm) * dx + (cos_t / b_mm) * dy
        qd_w = np.float32(-height / a_mm)
        qa = qd_u * qd_u + qd_v * qd_v + qd_w * qd_w
        qb = 2.0 * (qd_u * q0[0] + qd_v * q0[1] + qd_w * q0[2])
        qc = float(q0 @ q0) - 1.0
        disc = qb * qb - 4 * qa * qc
        inside = disc > 0
        if not inside.any():
            return
        t = (-qb[inside] - np.sqrt(disc[inside])) / (2 * qa[inside])
        u = q0[0] + t * qd_u[inside]
        v = q0[1] + t * qd_v[inside]
        w = np.maximum(q0[2] + t * qd_w, 0.0)
        q = np.stack([u, v, w], axis=1)
        d = np.stack(
            [np.broadcast_to(dx, inside.shape)[inside], np.broadcast_to(dy, inside.shape)[inside], np.full(t.shape, -height, np.float32)],
            axis=1,
        )
        colour = self._skin_at(fruit, u, v, w, spin)
        # the surface normal (gradient of the implicit spheroid) and the directions to the
        # lens and to the lamp, in belt coordinates
        normal = (q @ frame.astype(np.float32)).astype(np.float32)
        normal /= np.linalg.norm(normal, axis=1, keepdims=True)
        point = lens.astype(np.float32) + t[:, None] * d
        view = lens - point
        view /= np.linalg.norm(view, axis=1, keepdims=True)
        lamp = np.array([o.lamp_offset[0] * g.width_px * s, o.lamp_offset[1] * g.height_px * s, height])
        light = lamp - point
        light /= np.linalg.norm(light, axis=1, keepdims=True)
        facing = np.clip(np.einsum("ij,ij->i", normal, view), 0.0, 1.0)
        colour *= (0.8 + 0.2 * facing)[:, None]
        half = view + light
        half /= np.linalg.norm(half, axis=1, keepdims=True)
        strength, exponent = fruit.gloss
        spec = strength * np.clip(np.einsum("ij,ij->i", normal, half), 0.0, 1.0) ** max(exponent, 1.0)
        colour += (250.0 - colour) * spec[:, None]
        region = image[y0:y1, x0:x1]
        region[inside] = colour

    def _finish(self, image: np.ndarray, position_cups: float) -> np.ndarray:
        image *= self._light[..., None]
        return super()._finish(image, position_cups)


def scene_renderer(
    scene: str,
    geometry: SceneGeometry,
    camera: SimulatedCameraSettings,
    seed: int,
    faults: Sequence[CameraLaneFault] = (),
) -> SceneRenderer:
    """The renderer of a named scene: ``plain`` (``SceneRenderer``) or ``realistic``."""
    if scene == "plain":
        return SceneRenderer(geometry, camera, seed, faults)
    if scene == "realistic":
        return RealisticSceneRenderer(geometry, camera, seed, faults)
    raise ValueError(f"unknown scene {scene!r}; expected plain or realistic")
