"""The colour read on the skin of every fruit in a frame, in compiled passes.

Owns the per-pixel arithmetic behind each view's colour shares, unclassified surface, glare
disk and mean CIELAB, on the frame's grid of every second row and column, and the search for
skin darker than the fruit's own skin around it (``darker_than_own_skin``), which tells the
defect search where to look for bruises the colour classes cannot see. Per fruit this is
a dozen small OpenCV and numpy calls when written in Python (a warp of the surface-weight
map, the glare core, a weighted histogram, a masked mean), and their call overhead cost more
than the arithmetic; one loop compiled by numba does all fruit of a frame in a fraction of
the time, and releases the GIL while it runs, so vision worker threads overlap.

The spheroid model is the one in ``vision.measure``: a pixel at (u, v) in semi-axes of the
silhouette ellipse (u across the spin axis, v along it) stands for
``dS/dA = sqrt((1 + (k^2 - 1) v^2) / (1 - u^2 - v^2))`` of surface, k = equatorial / polar,
and only pixels inside ``rim_fraction`` of the ellipse are read.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from vision.colour import LUT_GLARE

# columns of the per-fruit parameter array handed to the kernel
PARAMS = ("cx", "cy", "cos", "sin", "inv_equatorial", "inv_polar", "k2_minus_1")
NO_GLARE = -1.0


@numba.njit(cache=True, nogil=True, inline="always")
def _surface_weight(
    dx: float, dy: float, ca: float, sa: float, inv_e: float, inv_p: float, k2m1: float, rim2: float
) -> float:
    """Surface per projected area of the spheroid at offset (dx, dy) frame pixels from its
    centre (axes turned by cos/sin ``ca``/``sa``, inverse semi-axes ``inv_e``/``inv_p``);
    0 outside the analysed rim (squared radius ``rim2`` on the unit ellipse)."""
    u = (ca * dx + sa * dy) * inv_e
    v = (ca * dy - sa * dx) * inv_p
    r2 = u * u + v * v
    if r2 >= rim2:
        return 0.0
    return math.sqrt((1.0 + k2m1 * v * v) / (1.0 - r2))


@numba.njit(cache=True, nogil=True)
def read_pixels(
    code: np.ndarray,
    lab_grid: np.ndarray,
    params: np.ndarray,
    boxes: np.ndarray,
    rim: float,
    n_classes: int,
    glare_grow: float,
    dark_in_glare_l8: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read every fruit of a frame.

    ``code`` holds the colour codes of the frame's half grid (``vision.colour.classify_bgr``:
    0 = in no class, 1..n = class, + ``LUT_GLARE`` for glare); half-grid pixel (x, y) is frame
    pixel (2 x, 2 y). ``lab_grid`` is the frame's 8-bit CIELAB on every fourth row and column.
    Row i of ``params`` (columns ``PARAMS``, frame pixels) gives fruit i's ellipse; row i of
    ``boxes`` its zone on the half grid (x0, y0, x1, y1, exclusive).

    Returns per fruit: surface sums (weight units of projected half-grid pixels) for code 0,
    each class, and glare outside the disk, shape (N, classes + 2); CIELAB sums and pixel
    count on the quarter grid, (N, 4); the glare disk on the half grid (x, y, radius;
    radius ``NO_GLARE`` when none), (N, 3); the box of the unclassified skin on the half grid
    (x0, y0, x1, y1, inclusive; x1 = -1 when none), (N, 4).

    Inside the glare disk, skin in no class that is more than ``dark_in_glare_l8`` (8-bit L)
    darker than the fruit's mean is unclassified skin all the same: a highlight only adds
    light, so its fringe is lighter than the skin, and what is darker there is the skin's own
    (a bruise the highlight happens to sit beside). Read on the quarter grid, where L is.
    """
    n = params.shape[0]
    sums = np.zeros((n, n_classes + 2))
    lab = np.zeros((n, 4))
    glare = np.full((n, 3), NO_GLARE)
    unclassified = np.full((n, 4), -1, np.int64)
    rim2 = rim * rim
    grid_h, grid_w = lab_grid.shape[0], lab_grid.shape[1]
    for i in range(n):
        cx, cy, ca, sa, inv_e, inv_p, k2m1 = (
            params[i, 0], params[i, 1], params[i, 2], params[i, 3], params[i, 4], params[i, 5], params[i, 6],
        )
        x0, y0, x1, y1 = boxes[i, 0], boxes[i, 1], boxes[i, 2], boxes[i, 3]
        # pass 1: the glare core inside the zone, as a pixel count and a bounding box
        core = 0
        gx0, gy0, gx1, gy1 = x1, y1, -1, -1
        for y in range(y0, y1):
            dy = 2.0 * y - cy
            for x in range(x0, x1):
                if code[y, x] < LUT_GLARE:
                    continue
                if _surface_weight(2.0 * x - cx, dy, ca, sa, inv_e, inv_p, k2m1, rim2) == 0.0:
                    continue
                core += 1
                gx0, gx1 = min(gx0, x), max(gx1, x)
                gy0, gy1 = min(gy0, y), max(gy1, y)
        disk_x, disk_y, disk_r2 = 0.0, 0.0, -1.0
        if core > 0:
            # grown by the glare's own size so its desaturated fringe (skin blended toward
            # white) goes with it; widened to cover an elongated core
            w, h = gx1 - gx0 + 1, gy1 - gy0 + 1
            core_radius = math.sqrt(core / math.pi)
            radius = math.ceil((1 + glare_grow) * core_radius + 3 + max(0.0, max(w, h) / 2 - core_radius))
            disk_x, disk_y = float(round(gx0 + (w - 1) / 2)), float(round(gy0 + (h - 1) / 2))
            disk_r2 = radius * radius
            glare[i, 0], glare[i, 1], glare[i, 2] = disk_x, disk_y, radius
        # pass 2: every skin pixel outside the glare disk, weighed by its surface
        ux0, uy0, ux1, uy1 = x1, y1, -1, -1
        for y in range(y0, y1):
            dy = 2.0 * y - cy
            on_grid_row = y % 2 == 0 and y // 2 < grid_h
            for x in range(x0, x1):
                weight = _surface_weight(2.0 * x - cx, dy, ca, sa, inv_e, inv_p, k2m1, rim2)
                if weight == 0.0 or (x - disk_x) ** 2 + (y - disk_y) ** 2 <= disk_r2:
                    continue
                c = code[y, x]
                column = n_classes + 1 if c >= LUT_GLARE else c
                sums[i, column] += weight
                if column == 0:
                    ux0, ux1 = min(ux0, x), max(ux1, x)
                    uy0, uy1 = min(uy0, y), max(uy1, y)
                if on_grid_row and x % 2 == 0 and x // 2 < grid_w:
                    for channel in range(3):
                        lab[i, channel] += lab_grid[y // 2, x // 2, channel]
                    lab[i, 3] += 1.0
        if core > 0 and lab[i, 3] > 0:
            # pass 3: skin in no class inside the disk, darker than the fruit's mean
            dark_below = lab[i, 0] / lab[i, 3] - dark_in_glare_l8
            radius = glare[i, 2]
            for y in range(max(y0, int(disk_y - radius)), min(y1, int(disk_y + radius) + 1)):
                if y % 2 != 0 or y // 2 >= grid_h:
                    continue
                dy = 2.0 * y - cy
                for x in range(max(x0, int(disk_x - radius)), min(x1, int(disk_x + radius) + 1)):
                    if x % 2 != 0 or x // 2 >= grid_w or code[y, x] != 0:
                        continue
                    if (x - disk_x) ** 2 + (y - disk_y) ** 2 > disk_r2 or lab_grid[y // 2, x // 2, 0] >= dark_below:
                        continue
                    weight = _surface_weight(2.0 * x - cx, dy, ca, sa, inv_e, inv_p, k2m1, rim2)
                    if weight == 0.0:
                        continue
                    sums[i, 0] += 4.0 * weight  # a quarter-grid sample stands for four half-grid pixels
                    ux0, ux1 = min(ux0, x), max(ux1, x + 1)
                    uy0, uy1 = min(uy0, y), max(uy1, y + 1)
        if ux1 >= 0:
            unclassified[i, 0], unclassified[i, 1], unclassified[i, 2], unclassified[i, 3] = ux0, uy0, ux1, uy1
    return sums, lab, glare, unclassified


def warm_up() -> None:
    """Compile (or load from numba's on-disk cache) the kernels now, not on the first frame:
    compiling takes seconds, loading the cache a fraction of one."""
    code, grid = np.zeros((2, 2), np.uint8), np.zeros((1, 1, 3), np.uint8)
    params, boxes = np.ones((1, len(PARAMS))), np.array([[0, 0, 2, 2]], np.int64)
    read_pixels(code, grid, params, boxes, 0.95, 1, 1.0, 20.0)
    darker_than_own_skin(code, grid, params, boxes, np.full((1, 3), NO_GLARE), 0.95, 1, 20.0, 3.5)


# Cells per side of the grid over a fruit's zone on which its own skin is summarised: six
# cells make each local reference (3 x 3 cells) about half the fruit wide, wider than any
# defect worth grading yet narrow enough to follow the shading across a round fruit.
OWN_SKIN_CELLS = 6
# How far out a pixel must lie, in robust standard deviations of the fruit's own skin around
# its local reference, to be a candidate darker than its skin: a mottled skin is judged
# against its own mottling, an even one against a floor (half of ``own_skin_darker_l``, see
# ``vision.measure.read_skins``). Loose on purpose: whether a candidate blob is a defect is
# decided against the ring of skin right around it (``vision.defects``), which mottling
# does not fool, and a second sighting where it sits at the rim (``vision.tracking``).
OWN_SKIN_SPREAD = 2.0
# A blob is a defect only when it stands out from the median of the ring of skin 2-3 pixels
# around it by this many robust standard deviations of that ring's own L (and by
# ``own_skin_darker_l`` at least): the skin's variation where the blob is, not over half
# the fruit.
RING_CONTRAST_SPREADS = 2.0


@numba.njit(cache=True, nogil=True)
def darker_than_own_skin(
    code: np.ndarray,
    lab_grid: np.ndarray,
    params: np.ndarray,
    boxes: np.ndarray,
    glare: np.ndarray,
    rim: float,
    n_classes: int,
    min_l8: float,
    spread: float,
) -> np.ndarray:
    """Per fruit of a frame: the surface (weight units of projected half-grid pixels) of skin
    that is in a colour class yet clearly darker than the fruit's own skin of that class
    around it, and the darkening (8-bit L) that counted as clear.

    Read on the quarter grid (``lab_grid``; its pixel (x, y) is half-grid pixel (2 x, 2 y)),
    outside each fruit's glare disk (``glare``, from ``read_pixels``). The fruit's zone is cut
    into ``OWN_SKIN_CELLS`` x ``OWN_SKIN_CELLS`` cells; a sample's reference is the mean L of
    the same class over the 3 x 3 cells around its own. The threshold is ``min_l8`` or
    ``spread`` robust standard deviations (1.4826 MAD) of the residuals, the larger.
    Samples within two half-grid pixels of another class's skin are on a blurred border of
    two skins: they count toward the references, not toward the darker surface or the spread.
    Returns (N, 3): surface, threshold, that robust standard deviation (8-bit L).
    """
    n = params.shape[0]
    out = np.zeros((n, 3))
    grid_h, grid_w = lab_grid.shape[0], lab_grid.shape[1]
    cells = OWN_SKIN_CELLS
    rim2 = rim * rim
    for i in range(n):
        cx, cy, ca, sa, inv_e, inv_p, k2m1 = (
            params[i, 0], params[i, 1], params[i, 2], params[i, 3], params[i, 4], params[i, 5], params[i, 6],
        )
        x0, y0, x1, y1 = boxes[i, 0], boxes[i, 1], boxes[i, 2], boxes[i, 3]
        disk_x, disk_y, radius = glare[i, 0], glare[i, 1], glare[i, 2]
        disk_r2 = radius * radius if radius >= 0 else -1.0
        cell_w = max(1.0, (x1 - x0) / cells)
        cell_h = max(1.0, (y1 - y0) / cells)
        sums = np.zeros((n_classes + 1, cells, cells))
        counts = np.zeros((n_classes + 1, cells, cells))
        m = (x1 - x0) * (y1 - y0) // 4 + 4
        light = np.empty(m)
        weight = np.empty(m)
        klass = np.empty(m, np.int64)
        border = np.zeros(m, np.bool_)
        cell_x = np.empty(m, np.int64)
        cell_y = np.empty(m, np.int64)
        k = 0
        for y in range(y0 + (y0 % 2), y1, 2):
            if y // 2 >= grid_h:
                break
            dy = 2.0 * y - cy
            for x in range(x0 + (x0 % 2), x1, 2):
                if x // 2 >= grid_w:
                    break
                c = code[y, x]
                if c == 0 or c >= 128:  # in no class (the box test's), or glare
                    continue
                pixel_surface = _surface_weight(2.0 * x - cx, dy, ca, sa, inv_e, inv_p, k2m1, rim2)
                if pixel_surface == 0.0 or (x - disk_x) ** 2 + (y - disk_y) ** 2 <= disk_r2:
                    continue
                gx = min(cells - 1, int((x - x0) / cell_w))
                gy = min(cells - 1, int((y - y0) / cell_h))
                light[k] = lab_grid[y // 2, x // 2, 0]
                weight[k] = pixel_surface
                klass[k], cell_x[k], cell_y[k] = c, gx, gy
                # a sample next to skin of another class sits on a blurred border of two
                # skins, darker or lighter than either: it counts toward its class's
                # reference, not as darker skin
                # (within the zone's box: only the rows the frame's zones span are coded, the
                # rest of the buffer holds an earlier frame's codes)
                for ny in range(max(y0, y - 2), min(y1, y + 3)):
                    for nx in range(max(x0, x - 2), min(x1, x + 3)):
                        other = code[ny, nx]
                        if 0 < other < 128 and other != c:
                            border[k] = True
                sums[c, gy, gx] += light[k]
                counts[c, gy, gx] += 1.0
                k += 1
        if k < 8:
            continue
        residual = np.empty(k)
        inner = 0
        for j in range(k):
            total = 0.0
            count = 0.0
            for gy in range(max(0, cell_y[j] - 1), min(cells, cell_y[j] + 2)):
                for gx in range(max(0, cell_x[j] - 1), min(cells, cell_x[j] + 2)):
                    total += sums[klass[j], gy, gx]
                    count += counts[klass[j], gy, gx]
            residual[j] = light[j] - total / count
            inner += not border[j]
        if inner < 8:
            continue
        spread_of = np.empty(inner)
        n_inner = 0
        for j in range(k):
            if not border[j]:
                spread_of[n_inner] = residual[j]
                n_inner += 1
        sigma = 1.4826 * np.median(np.abs(spread_of - np.median(spread_of)))
        threshold = max(min_l8, spread * sigma)
        surface = 0.0
        for j in range(k):
            if residual[j] < -threshold and not border[j]:
                surface += 4.0 * weight[j]  # a quarter-grid sample stands for four half-grid pixels
        out[i, 0] = surface
        out[i, 1] = threshold
        out[i, 2] = sigma
    return out
