"""Cup tracking and multi-view fusion: many ``FruitView``s of one cup become one ``FusedFruit``.

Owns the association of views to cups (by encoder position when the frame carries one,
otherwise by nearest centroid along the lane), the moment a cup is complete (it has left the
field of view), and the fusion rules:

- size, area and shape: mean over the full views (views touching an image edge are partial
  and only prove the cup was seen);
- colour fractions: mean over full views. Each view reports surface-weighted shares of the
  visible zone; as the fruit spins every surface point is visible in the same share of views,
  so the mean estimates the share of the whole surface;
- defects: each physical defect is counted once. Detections are chained from view to view by
  latitude (unchanged by the spin) and by the spin step, which is estimated per fruit from
  the detections themselves; a chain's area is the median of its unoccluded sightings.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from vision.views import DefectView, FruitView


@dataclass(frozen=True)
class FusedDefect:
    """One physical defect, counted once over the views that saw it."""

    theta: float  # polar angle from the top pole (rad); the spin leaves it unchanged
    area_mm2: float  # surface area
    sightings: int


@dataclass(frozen=True)
class FusedFruit:
    lane: int
    cup_index: int
    views: int
    diameter_major_mm: float
    diameter_minor_mm: float
    area_cm2: float
    volume_cm3: float
    colour_fractions: dict[str, float]
    defect_count: int
    defect_area_cm2: float
    elongation: float
    flags: frozenset[str]
    quality_score: float | None
    mean_lab: tuple[float, float, float] = (0.0, 0.0, 0.0)
    defects: tuple[FusedDefect, ...] = ()  # one per physical defect


@dataclass
class _Track:
    lane: int
    cup_index: int
    frames: list[list[FruitView]] = field(default_factory=list)  # views per frame, in order
    times: list[float] = field(default_factory=list)  # belt position (cups) or frame number, per frame
    last_x_px: float = 0.0
    last_update: int = 0
    step_px: float = 0.0  # free-running mode: belt motion per frame


def fuse(
    lane: int,
    cup_index: int,
    frames: Sequence[Sequence[FruitView]],
    times: Sequence[float] | None = None,
) -> FusedFruit | None:
    """One record from the views of one cup, grouped by frame; None when nothing was seen.

    ``times`` (belt position in cups, or frame number) lets colour be averaged over whole
    turns of the fruit; without it the views weigh equally."""
    all_views = [v for f in frames for v in f]
    if not all_views:
        return None
    flags: set[str] = set()
    for frame_views in frames:
        # two separate whole fruit in one cup; a partial sliver at the image edge can land
        # on the neighbouring cup's index and proves nothing
        if sum(1 for v in frame_views if "edge" not in v.flags) > 1:
            flags.add("double")
    # shape flags from single views are noisy (a stalk stub, a dark spot on the limb): keep
    # one when at least a third of the whole views agree
    whole = [v for f in frames for v in f if "edge" not in v.flags]
    for flag in ("double", "misshapen"):
        if whole and sum(1 for v in whole if flag in v.flags) * 3 >= len(whole):
            flags.add(flag)
    for v in all_views:
        flags |= v.flags - {"edge", "double", "misshapen"}
    stamps = list(times) if times is not None and len(times) == len(frames) else [float(i) for i in range(len(frames))]
    per_frame_t = [(t, max(f, key=lambda v: v.area_cm2)) for t, f in zip(stamps, frames, strict=True) if f]
    per_frame = [v for _, v in per_frame_t]
    full_t = [(t, v) for t, v in per_frame_t if "edge" not in v.flags]
    full = [v for _, v in full_t]
    if not full:
        # only partial views: the cup held fruit, but one sliver alone is not evidence enough
        if len(per_frame) < 2:
            return None
        full = per_frame
        full_t = per_frame_t
        flags.add("edge")
    n = len(full)
    major = sum(v.diameter_major_mm for v in full) / n
    minor = sum(v.diameter_minor_mm for v in full) / n
    eq = sum(v.equatorial_mm for v in full) / n
    pol = sum(v.polar_mm for v in full) / n
    names = {k for v in full for k in v.colour_fractions}
    colour = whole_turn_colour([t for t, _ in full_t], [v.colour_fractions for v in full], sorted(names))
    mean_lab = (
        sum(v.mean_lab[0] for v in full) / n,
        sum(v.mean_lab[1] for v in full) / n,
        sum(v.mean_lab[2] for v in full) / n,
    )
    defects = fuse_defects([v.defects for v in full])
    # the taught model scores a few views per fruit (see FramePipeline): their mean
    scores = [v.quality_score for v in full if v.quality_score is not None]
    volume_cm3 = math.pi / 6.0 * eq * eq * pol / 1000.0 if eq > 0 else math.pi / 6 * minor * minor * major / 1000.0
    return FusedFruit(
        lane=lane,
        cup_index=cup_index,
        views=len(per_frame),
        diameter_major_mm=major,
        diameter_minor_mm=minor,
        area_cm2=sum(v.area_cm2 for v in full) / n,
        volume_cm3=volume_cm3,
        colour_fractions=colour,
        defect_count=len(defects),
        defect_area_cm2=sum(d.area_mm2 for d in defects) / 100.0,
        elongation=major / minor if minor > 0 else 1.0,
        flags=frozenset(flags),
        quality_score=sum(scores) / len(scores) if scores else None,
        mean_lab=mean_lab,
        defects=tuple(defects),
    )


def whole_turn_colour(
    times: Sequence[float], fractions: Sequence[Mapping[str, float]], names: Sequence[str]
) -> dict[str, float]:
    """Colour shares of the whole surface from a spinning fruit's views.

    Each view reports the shares of the side it faces. Averaged over exactly whole turns,
    every azimuth weighs the same; averaged over 1.4 turns, the side seen twice weighs
    double. The spin period is found as the shift (in ``times``) that best repeats the
    sequence of view shares, and the shares are then averaged over windows one period long.
    A fruit of one colour all round has nothing to find and gets the plain mean.
    """
    x = np.array([[f.get(k, 0.0) for k in names] for f in fractions], dtype=np.float64)
    t = np.asarray(times, dtype=np.float64)
    plain = {k: float(x[:, i].mean()) for i, k in enumerate(names)} if len(x) else {}
    n = len(t)
    if n < 5 or not np.all(np.diff(t) > 0):
        return plain
    variance = float(((x - x.mean(axis=0)) ** 2).sum(axis=1).mean())
    if variance < 1e-4:  # the same shares all round (within 1 point)
        return plain
    span = t[-1] - t[0]
    step = float(np.median(np.diff(t)))
    # all candidate periods at once: shift every view time by every period, interpolate
    periods = np.arange(3 * step, span - step + 1e-9, step / 4)
    if len(periods) == 0:
        return plain
    shifted_t = t[None, :] + periods[:, None]  # periods x views
    valid = shifted_t <= t[-1] + 1e-9
    err = np.zeros(shifted_t.shape)
    for i in range(x.shape[1]):
        err += (np.interp(shifted_t, t, x[:, i]) - x[None, :, i]) ** 2
    counts = valid.sum(axis=1)
    mean_err = np.where(counts >= 2, (err * valid).sum(axis=1) / np.maximum(counts, 1), np.inf)
    best = int(np.argmin(mean_err))
    best_period, best_err = float(periods[best]), float(mean_err[best])
    # accept only a convincing repeat: far better than two unrelated views would match
    if not np.isfinite(best_err) or best_err > 0.3 * 2 * variance:
        return plain
    grid = np.linspace(t[0], t[-1], 241)
    dense = np.stack([np.interp(grid, t, x[:, i]) for i in range(x.shape[1])], axis=1)
    cumulative = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum((dense[1:] + dense[:-1]) / 2 * np.diff(grid)[:, None], axis=0)])
    starts = grid[grid + best_period <= t[-1] + 1e-9]
    ends = starts + best_period
    window = np.stack([np.interp(ends, grid, cumulative[:, i]) - np.interp(starts, grid, cumulative[:, i]) for i in range(x.shape[1])], axis=1)
    means = window.mean(axis=0) / best_period
    return {k: float(means[i]) for i, k in enumerate(names)}


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


def fuse_defects(views: Sequence[Sequence[DefectView]], max_dtheta: float = 0.2) -> list[FusedDefect]:
    """The distinct defects seen across consecutive views of one spinning fruit.

    Between two views every defect moves by the same spin step in azimuth and keeps its
    latitude. The step is taken as the median azimuth shift over plausible pairs; detections
    then link to the nearest one in the next view at that shift.
    """
    if not any(views):
        return []
    # estimate the spin step per view from all same-latitude pairs of consecutive views
    shifts: list[float] = []
    for a, b in zip(views, views[1:], strict=False):
        for da in a:
            for db in b:
                if abs(da.theta - db.theta) < max_dtheta:
                    shift = _wrap(db.phi - da.phi)
                    if 0.05 < abs(shift) < 2.0:
                        shifts.append(shift)
    step = statistics.median(shifts) if shifts else 0.0
    if shifts:
        # keep the sign the majority agrees on; the rollers spin every fruit the same way
        sign = 1.0 if sum(1 for s in shifts if s > 0) >= len(shifts) / 2 else -1.0
        same = [s for s in shifts if s * sign > 0]
        step = statistics.median(same) if same else step
    chains: list[list[tuple[int, DefectView]]] = []
    for index, frame in enumerate(views):
        taken: set[int] = set()
        for d in frame:
            best, best_cost = -1, 1e9
            for ci, chain in enumerate(chains):
                last_index, last = chain[-1]
                gap = index - last_index
                # a defect can vanish for a view (under the glare, or on the rim) and come back
                if ci in taken or not 1 <= gap <= 3:
                    continue
                dtheta = abs(d.theta - last.theta)
                dphi = abs(_wrap(d.phi - last.phi - gap * step))
                if dtheta < max_dtheta and dphi < 0.35 + 0.1 * gap:
                    cost = dtheta + dphi + 0.2 * (gap - 1)
                    if cost < best_cost:
                        best, best_cost = ci, cost
            if best >= 0:
                taken.add(best)
                chains[best].append((index, d))
            else:
                taken.add(len(chains))
                chains.append([(index, d)])
    chains = _merge_chains(chains, step, max_dtheta)
    # One sighting at the rim of the analysed zone is not evidence enough. The rim is where
    # the view itself makes dark or light patches (a stem or calyx cavity an oblique view
    # brings in, the limb's shading, the belt blurred into the outline, a highlight sliding
    # off the limb); they come and go with the fruit's place in the field, not with its spin,
    # so they rarely chain from one view to the next. A defect on the skin there turns inward
    # and is seen again. A defect seen once, away from the rim, stands on its own (small
    # defects are often found only while they face the camera).
    chains = [c for c in chains if len(c) > 1 or not c[0][1].on_rim]
    out: list[FusedDefect] = []
    for chain in chains:
        seen = [d for _, d in chain]
        whole = [d.area_mm2 for d in seen if not d.partial]
        area = statistics.median(whole) if whole else max(d.area_mm2 for d in seen)
        out.append(FusedDefect(statistics.median(d.theta for d in seen), area, len(seen)))
    return out


def _merge_chains(
    chains: list[list[tuple[int, DefectView]]], step: float, max_dtheta: float
) -> list[list[tuple[int, DefectView]]]:
    """Join chains that are one defect seen before and after a longer gap (the glare or the
    rim hid it): same latitude, no shared view, and the azimuth the spin step predicts."""
    chains = sorted(chains, key=lambda c: c[0][0])
    merged: list[list[tuple[int, DefectView]]] = []
    for chain in chains:
        first_index, first = chain[0]
        target = None
        for earlier in merged:
            last_index, last = earlier[-1]
            gap = first_index - last_index
            if gap < 1 or abs(first.theta - last.theta) > max_dtheta / 2:
                continue
            predicted = step != 0.0 and abs(_wrap(first.phi - last.phi - gap * step)) < 0.25 + 0.1 * gap
            # after a whole turn the step's error has piled up; a defect of the same size on
            # the same latitude is then taken as the same one coming round again
            same_spot = abs(first.theta - last.theta) < 0.06 and _similar_area(earlier, chain)
            if predicted or same_spot:
                target = earlier
                break
        if target is None:
            merged.append(list(chain))
        else:
            target.extend(chain)
    return merged


def _similar_area(a: list[tuple[int, DefectView]], b: list[tuple[int, DefectView]]) -> bool:
    area_a = max(d.area_mm2 for _, d in a)
    area_b = max(d.area_mm2 for _, d in b)
    return max(area_a, area_b) <= 1.35 * min(area_a, area_b)


class CupTracker:
    """Collects views per cup and emits each cup's fused record once, when it leaves the field.

    Lives on the runtime's event loop: ``update`` is called once per frame, in frame order.
    """

    def __init__(self, lanes: int, pitch_px: float, exit_x_px: float) -> None:
        self.lanes = lanes
        self.pitch_px = pitch_px
        self.exit_x_px = exit_x_px
        self._cups: dict[tuple[int, int], _Track] = {}
        self._emitted: set[tuple[int, int]] = set()  # cups already reported, to ignore late slivers
        self._free: dict[int, list[_Track]] = {lane: [] for lane in range(lanes)}
        self._next_free_index = dict.fromkeys(range(lanes), 0)
        self._frame = 0

    def update(self, views: Sequence[FruitView], belt_position_cups: float | None) -> list[FusedFruit]:
        self._frame += 1
        if belt_position_cups is None:
            return self._update_free(views)
        return self._update_encoder(views, belt_position_cups)

    def flush(self) -> list[FusedFruit]:
        out: list[FusedFruit] = []
        for key in sorted(self._cups):
            out += self._emit(self._cups[key])
        self._cups.clear()
        for lane in range(self.lanes):
            for track in self._free[lane]:
                out += self._emit(track)
            self._free[lane] = []
        return out

    # -- encoder mode ---------------------------------------------------------------------
    def _update_encoder(self, views: Sequence[FruitView], position: float) -> list[FusedFruit]:
        this_frame: dict[tuple[int, int], list[FruitView]] = {}
        for v in views:
            k = round(position - (v.x_px - self.exit_x_px) / self.pitch_px)
            this_frame.setdefault((v.lane, k), []).append(v)
        for key, group in this_frame.items():
            if key in self._emitted:
                continue  # the sliver of a cup that already left and was reported
            track = self._cups.get(key)
            if track is None:
                track = self._cups[key] = _Track(lane=key[0], cup_index=key[1])
            track.frames.append(group)
            track.times.append(position)
        out: list[FusedFruit] = []
        for key in sorted(k for k in self._cups if position - k[1] > 0.5):
            out += self._emit(self._cups.pop(key))
            self._emitted.add(key)
        # a cup more than two pitches past the exit cannot be in view any more
        self._emitted = {k for k in self._emitted if position - k[1] < 3.0}
        return out

    # -- free-running mode ----------------------------------------------------------------
    def _update_free(self, views: Sequence[FruitView]) -> list[FusedFruit]:
        out: list[FusedFruit] = []
        gate = 0.5 * self.pitch_px
        for lane in range(self.lanes):
            tracks = self._free[lane]
            lane_views = sorted((v for v in views if v.lane == lane), key=lambda v: -v.x_px)
            claimed: dict[int, list[FruitView]] = {}
            for v in lane_views:
                best, best_d = -1, gate
                for ti, t in enumerate(tracks):
                    predicted = t.last_x_px + t.step_px * (self._frame - t.last_update)
                    d = abs(v.x_px - predicted)
                    if d < best_d and ti not in claimed:
                        best, best_d = ti, d
                if best < 0:
                    # a second fruit right beside one matched this frame is a double in that cup
                    for ti, group in claimed.items():
                        if abs(group[0].x_px - v.x_px) < gate:
                            best = ti
                            break
                if best < 0:
                    tracks.append(_Track(lane=lane, cup_index=self._next_free_index[lane]))
                    self._next_free_index[lane] += 1
                    best = len(tracks) - 1
                claimed.setdefault(best, []).append(v)
            for ti, group in claimed.items():
                t = tracks[ti]
                x = max(g.x_px for g in group)
                if t.frames:
                    moved = (x - t.last_x_px) / max(1, self._frame - t.last_update)
                    t.step_px = moved if t.step_px == 0 else 0.5 * (t.step_px + moved)
                t.frames.append(group)
                t.times.append(float(self._frame))
                t.last_x_px = x
                t.last_update = self._frame
            keep: list[_Track] = []
            for t in tracks:
                predicted = t.last_x_px + t.step_px * (self._frame - t.last_update)
                gone = predicted - self.exit_x_px > 0.5 * self.pitch_px or self._frame - t.last_update > 2
                if gone:
                    out += self._emit(t)
                else:
                    keep.append(t)
            self._free[lane] = keep
        return out

    def _emit(self, track: _Track) -> list[FusedFruit]:
        fused = fuse(track.lane, track.cup_index, track.frames, track.times)
        return [] if fused is None else [fused]
