"""Pedicle morphometry: the isthmus (narrowest cross-section) and axis of each pedicle, LPS mm.

Transpedicular needles go through the pedicle's isthmus, so the planner needs where it is,
which way the pedicle runs and how wide it is (a needle wider than the isthmus breaches a
wall). Everything is measured from the vertebra's label on the `Anatomy` grid, whatever its
source (demo truth, a label map, the automatic segmentation), in the vertebra's local frame.

Method, per level and side:

1. The canal's front-to-back span near the vertebra (local anterior coordinate) bounds the
   pedicle: it is the bone between the body (in front of the canal) and the posterior
   elements (behind it), lateral to the canal.
2. The vertebra and canal masks are resampled (trilinear, 0.5 level) on coronal sections of
   the local frame, every half millimetre across that span. In each section the pedicle is
   the bone component that shares the longest border with the canal; it is followed
   forwards and backwards by overlap. A line through the components' centroids around the
   narrowest one is the first axis.
3. Sections perpendicular to that axis (a quarter millimetre grid) give the transverse
   (medial–lateral) and cranio-caudal extents at sub-voxel precision (0.5 crossings of the
   interpolated mask through each centroid); the narrowest section is the isthmus, and the
   axis is refitted through the perpendicular sections' centroids.

Resampling on a grid in the local frame makes the result independent of the CT's voxel
orientation (flipped or oblique grids give the same pedicle).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from planning.anatomy.model import Anatomy, VertebraGeometry
from planning.errors import VertebroPlanError
from planning.plan import Side
from planning.result_memo import MEMO

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

SECTION_STEP_MM = 0.75  # coronal sections (first pass) and their pixels
CANAL_GAP_MM = 3.0  # bone this close to the canal borders it: on a 3 mm CT a voxel of
# epidural fat or partial volume can lie between the canal mask and the pedicle's bone
FINE_SECTION_STEP_MM = 1.0  # between sections perpendicular to the axis
FINE_STEP_MM = 0.25  # pixels of the sections perpendicular to the axis
LATERAL_REACH_MM = 36.0  # how far from the midline a pedicle can lie
VERTICAL_REACH_MM = 20.0  # above and below the body centroid
CANAL_NEAR_MM = 15.0  # canal voxels this close to the vertebra's centre (left, superior)
AXIS_HALF_SPAN_MM = 6.0  # sections either side of the isthmus that define the axis
FINE_HALF_SPAN_MM = 7.0  # perpendicular sections searched for the isthmus
FINE_HALF_SIZE_MM = 10.0  # half size of a perpendicular section
END_TRIM_MM = 1.5  # sections this close to the canal span's ends are not the isthmus
RAY_STEP_MM = 0.25
RAY_MAX_MM = 80.0
MIN_AREA_MM2 = 4.0
NECK_RADIUS_MM = 1.5  # bridges thinner than this to the articular processes are cut
RUN_WIDTH_GROWTH = 1.6  # see _pedicle_run
RUN_HEIGHT_GROWTH = 1.25  # smaller components are noise, not a pedicle


class PedicleError(VertebroPlanError, ValueError):
    """A pedicle cannot be measured (message names the level, side and why)."""


@dataclass(frozen=True, eq=False)
class PedicleGeometry:
    """One pedicle, LPS mm.

    ``axis_lps`` is a unit vector from posterior to anterior through the isthmus centre.
    ``transverse_lps`` (unit, ⊥ axis, towards the patient's left) and ``vertical_lps``
    (unit, ⊥ both, towards the head) span the isthmus cross-section, along which
    ``isthmus_width_mm`` and ``isthmus_height_mm`` are measured (cortex included).
    ``entry_lps`` and ``anterior_cortex_lps`` are where the axis leaves the vertebra behind
    the pedicle (the posterior cortex) and in front of the body.
    """

    level: str
    side: Side
    isthmus_lps: FloatArray
    axis_lps: FloatArray
    transverse_lps: FloatArray
    vertical_lps: FloatArray
    isthmus_width_mm: float
    isthmus_height_mm: float
    entry_lps: FloatArray
    anterior_cortex_lps: FloatArray

    @property
    def length_mm(self) -> float:
        """Bone length along the axis, posterior cortex to anterior cortex."""
        return float(np.linalg.norm(self.anterior_cortex_lps - self.entry_lps))


class _Sampler:
    """Trilinear look-up of a vertebra's mask and the canal mask at LPS points."""

    def __init__(self, anatomy: Anatomy, code: int, box: tuple[slice, ...]) -> None:
        pad = 3
        shape = anatomy.labels.shape
        sl = tuple(
            slice(max(0, s.start - pad), min(n, s.stop + pad))
            for s, n in zip(box, shape, strict=True)
        )
        self.vertebra = (anatomy.labels[sl] == code).astype(np.float32)
        self.canal = anatomy.canal[sl].astype(np.float32)
        shift = np.array([sl[2].start, sl[1].start, sl[0].start], dtype=np.float64)
        inv = anatomy.index_from_lps
        self._m = inv[:3, :3]
        self._t = inv[:3, 3] - shift

    def _coords(self, points_lps: FloatArray) -> FloatArray:
        ijk = points_lps.reshape(-1, 3) @ self._m.T + self._t
        return np.ascontiguousarray(ijk[:, ::-1].T)  # (k, j, i) rows for map_coordinates

    def grid_both(
        self, origin_lps: FloatArray, axes_lps: FloatArray, steps: list[FloatArray]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Both masks on the grid ``origin + Σ steps[n] · axes_lps[n]`` (three 1-D arrays
        of mm, three unit LPS rows), shape (len(steps[0]), len(steps[1]), len(steps[2])).

        The crop indices are built by broadcasting, never as an (N, 3) array of LPS points.
        """
        o = self._m @ origin_lps + self._t
        d = axes_lps @ self._m.T  # index change per mm along each grid axis, (3, 3) rows
        s0, s1, s2 = steps
        coords = np.empty((3, len(s0), len(s1), len(s2)), dtype=np.float32)
        for c, col in enumerate((2, 1, 0)):  # map_coordinates wants (k, j, i)
            coords[c] = (
                o[col]
                + s0[:, None, None] * d[0, col]
                + s1[None, :, None] * d[1, col]
                + s2[None, None, :] * d[2, col]
            )
        bone = ndimage.map_coordinates(self.vertebra, coords, order=1, cval=0.0)
        canal = ndimage.map_coordinates(self.canal, coords, order=1, cval=0.0)
        return np.asarray(bone, np.float32), np.asarray(canal, np.float32)

    def bone(self, points_lps: FloatArray) -> NDArray[np.float32]:
        """Vertebra mask in [0, 1] at the points (0 outside the box); shape of the points."""
        v = ndimage.map_coordinates(self.vertebra, self._coords(points_lps), order=1, cval=0.0)
        return np.asarray(v.reshape(points_lps.shape[:-1]), dtype=np.float32)

    def both(self, points_lps: FloatArray) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        c = self._coords(points_lps)
        shape = points_lps.shape[:-1]
        bone = ndimage.map_coordinates(self.vertebra, c, order=1, cval=0.0).reshape(shape)
        canal = ndimage.map_coordinates(self.canal, c, order=1, cval=0.0).reshape(shape)
        return np.asarray(bone, np.float32), np.asarray(canal, np.float32)


def measure_pedicles(
    anatomy: Anatomy, levels: list[str] | None = None
) -> dict[str, dict[Side, PedicleGeometry]]:
    """Both pedicles of every level (or of ``levels``); a side that cannot be measured is
    absent (`measure_pedicle` says why). Once per content in a process (`result_memo`)."""
    return MEMO.remembered("pedicles", (anatomy, levels),
                           lambda: _measured(anatomy, levels))


def _measured(anatomy: Anatomy, levels: list[str] | None
              ) -> dict[str, dict[Side, PedicleGeometry]]:
    """`measure_pedicles`, made (not remembered)."""
    boxes = ndimage.find_objects(anatomy.labels)
    out: dict[str, dict[Side, PedicleGeometry]] = {}
    for name in levels if levels is not None else anatomy.level_names():
        sides: dict[Side, PedicleGeometry] = {}
        for side in (Side.LEFT, Side.RIGHT):
            try:
                sides[side] = measure_pedicle(anatomy, name, side, boxes=boxes)
            except PedicleError:
                continue
        if sides:
            out[name] = sides
    return out


def measure_pedicle(
    anatomy: Anatomy,
    level: str,
    side: Side,
    *,
    boxes: list[tuple[slice, ...] | None] | None = None,
) -> PedicleGeometry:
    """One pedicle's isthmus, axis and size, or `PedicleError` with the reason.

    ``boxes`` is ``scipy.ndimage.find_objects(anatomy.labels)`` when the caller measures
    many pedicles (it is one pass over the labels, computed here otherwise).
    """
    side = Side.parse(side)
    what = f"{side.value.capitalize()} {level} pedicle"
    geo = anatomy.levels.get(level)
    if geo is None:
        raise PedicleError(f"{what}: {level} is not in this CT's anatomy")
    if boxes is None:
        boxes = ndimage.find_objects(anatomy.labels)
    box = boxes[geo.code - 1] if 0 < geo.code <= len(boxes) else None
    if box is None:
        raise PedicleError(f"{what}: {level} has no voxels in the label map")
    sampler = _Sampler(anatomy, geo.code, box)
    canal_lo, canal_hi = _canal_span(anatomy, geo, box)
    if canal_hi - canal_lo < 3.0:
        raise PedicleError(f"{what}: the spinal canal behind {level} was not found")
    centre_local, axis_local, span = _coarse_axis(sampler, geo, side, canal_lo, canal_hi, what)
    rows = geo.frame_rows
    centre = geo.centroid_lps + centre_local @ rows
    axis = _unit(axis_local @ rows)
    return _fine(sampler, geo, side, centre, axis, span, what)


def _unit(v: FloatArray) -> FloatArray:
    return np.asarray(v / np.linalg.norm(v), dtype=np.float64)


def _canal_span(
    anatomy: Anatomy, geo: VertebraGeometry, box: tuple[slice, ...]
) -> tuple[float, float]:
    """Front-to-back span (local anterior mm) of the canal beside the vertebra."""
    k, j, i = np.nonzero(anatomy.canal[box])
    if not len(k):
        return 0.0, 0.0
    start = np.array([box[2].start, box[1].start, box[0].start], dtype=np.float64)
    local = geo.to_local(anatomy.to_lps(np.stack([i, j, k], 1) + start))
    near = local[(np.abs(local[:, 0]) < CANAL_NEAR_MM) & (np.abs(local[:, 2]) < CANAL_NEAR_MM)]
    if len(near) < 10:
        return 0.0, 0.0
    lo, hi = np.percentile(near[:, 1], [1.0, 99.0])
    return float(lo), float(hi)


def _pick(components: NDArray[np.int32], n: int, prefer: BoolArray, step_mm: float) -> BoolArray:
    """The component overlapping ``prefer`` most (empty if none does or it is tiny)."""
    if n == 0:
        return np.zeros(components.shape, dtype=bool)
    counts = np.bincount(components[prefer], minlength=n + 1)
    counts[0] = 0
    best = int(np.argmax(counts))
    chosen = components == best
    if counts[best] == 0 or chosen.sum() * step_mm**2 < MIN_AREA_MM2:
        return np.zeros(components.shape, dtype=bool)
    return chosen


def _coarse_axis(
    sampler: _Sampler,
    geo: VertebraGeometry,
    side: Side,
    canal_lo: float,
    canal_hi: float,
    what: str,
) -> tuple[FloatArray, FloatArray, tuple[float, float]]:
    """First axis from coronal sections (local frame): (point, direction, (a_min, a_max)).

    The point is the centroid of the narrowest section; the direction is a line fit through
    the centroids within ``AXIS_HALF_SPAN_MM`` of it, posterior → anterior.
    """
    h = SECTION_STEP_MM
    a = np.arange(canal_lo, canal_hi + 1e-9, h)
    x = side.lps_sign * np.arange(2.0, LATERAL_REACH_MM + 1e-9, h)
    z = np.arange(-VERTICAL_REACH_MM, VERTICAL_REACH_MM + 1e-9, h)
    _, grid_x, grid_z = np.meshgrid(a, x, z, indexing="ij")
    rows = geo.frame_rows  # (left, anterior, superior)
    bone_f, canal_f = sampler.grid_both(
        geo.centroid_lps, np.stack([rows[1], rows[0], rows[2]]), [a, x, z]
    )
    canal = canal_f > 0.5
    bone = _cut_necks((bone_f > 0.5) & ~canal, h)
    touching = ndimage.binary_dilation(canal, structure=np.ones((1, 3, 3), dtype=bool),
                                       iterations=max(1, round(CANAL_GAP_MM / h)))
    n_sec = len(a)
    chosen = np.zeros(bone.shape, dtype=bool)
    start = n_sec // 2
    comps = []
    for s in range(n_sec):
        lab, n = ndimage.label(bone[s])
        comps.append((lab, n))
    chosen[start] = _pick(*comps[start], touching[start], h)
    if not chosen[start].any():
        raise PedicleError(f"{what}: no bone beside the canal at the pedicle's depth")
    for order in (range(start + 1, n_sec), range(start - 1, -1, -1)):
        prev = start
        for s in order:
            chosen[s] = _pick(*comps[s], chosen[prev], h)
            if not chosen[s].any():
                break
            prev = s
    area = chosen.sum(axis=(1, 2)).astype(np.float64)
    present = area > 0
    # transverse extent of each section (pixels), from the columns that hold the component
    width = chosen.any(axis=2).sum(axis=1) * h  # columns [section, x] holding it
    height = chosen.any(axis=1).sum(axis=1) * h
    usable = present & (a > canal_lo + END_TRIM_MM) & (a < canal_hi - END_TRIM_MM)
    if usable.sum() < 3:
        raise PedicleError(f"{what}: the pedicle could not be followed beside the canal")
    kernel = np.ones(3) / 3.0
    smooth = np.convolve(np.where(present, width, np.inf), kernel, mode="same")
    smooth[~usable] = np.inf
    s0 = int(np.argmin(smooth))
    w = chosen.astype(np.float64)
    cx = (w * grid_x).sum(axis=(1, 2)) / np.maximum(area, 1.0)
    cz = (w * grid_z).sum(axis=(1, 2)) / np.maximum(area, 1.0)
    near = _pedicle_run(width, height, s0) & (np.abs(a - a[s0]) <= AXIS_HALF_SPAN_MM)
    if near.sum() < 3:
        raise PedicleError(f"{what}: too short to define an axis")
    slope_x = np.polyfit(a[near], cx[near], 1)[0]
    slope_z = np.polyfit(a[near], cz[near], 1)[0]
    direction = np.array([slope_x, 1.0, slope_z])
    span = (float(a[present].min()), float(a[present].max()))
    return np.array([cx[s0], a[s0], cz[s0]]), direction / np.linalg.norm(direction), span


def _cut_necks(bone: BoolArray, step_mm: float) -> BoolArray:
    """Each section ([section, a, b]) opened by a disc of ``NECK_RADIUS_MM``.

    The pedicle touches the articular processes through thin bridges of bone; cutting them
    keeps a section's component to the pedicle itself (a disc this small does not change
    the pedicle's own outline, which is several millimetres across).
    """
    # opening by distance transforms (linear time, whatever the disc's size); the huge
    # spacing across sections keeps each section to itself
    sampling = (1e6, step_mm, step_mm)
    eroded = ndimage.distance_transform_edt(bone, sampling=sampling) > NECK_RADIUS_MM
    if not eroded.any():
        return eroded
    return np.asarray(
        ndimage.distance_transform_edt(~eroded, sampling=sampling) <= NECK_RADIUS_MM, dtype=bool
    ) & bone


def _pedicle_run(width: FloatArray, height: FloatArray, s0: int) -> BoolArray:
    """The sections around the narrowest one (``s0``) that still look like the pedicle.

    Away from the isthmus the section's component merges with the articular processes, the
    transverse process or the body: its height or width jumps, and its centroid with it,
    which would tilt the axis. Only the contiguous run of sections no taller than
    ``RUN_HEIGHT_GROWTH`` and no wider than ``RUN_WIDTH_GROWTH`` times the isthmus is kept.
    """
    like = (
        np.isfinite(width)
        & (width <= RUN_WIDTH_GROWTH * width[s0])
        & (height <= RUN_HEIGHT_GROWTH * height[s0])
    )
    run = np.zeros(len(width), dtype=bool)
    for step in (1, -1):
        i = s0
        while 0 <= i < len(width) and like[i]:
            run[i] = True
            i += step
    return run


def _crossing(profile: NDArray[np.float32], centre: int, step: int) -> float:
    """Sub-pixel distance (pixels) from ``centre`` to where ``profile`` falls below 0.5,
    walking by ``step`` (+1 or −1)."""
    i = centre
    n = len(profile)
    while 0 <= i + step < n and profile[i + step] > 0.5:
        i += step
    if not 0 <= i + step < n:
        return float(abs(i - centre))
    v0, v1 = float(profile[i]), float(profile[i + step])
    frac = (v0 - 0.5) / (v0 - v1) if v0 != v1 else 0.5
    return abs(i - centre) + frac


def _fine(
    sampler: _Sampler,
    geo: VertebraGeometry,
    side: Side,
    centre: FloatArray,
    axis: FloatArray,
    span: tuple[float, float],
    what: str,
) -> PedicleGeometry:
    """Sections perpendicular to the first axis: isthmus, sizes, refitted axis, ends."""
    transverse = _unit(geo.left_lps - (geo.left_lps @ axis) * axis)
    vertical = _unit(np.cross(axis, transverse))
    if vertical @ geo.superior_lps < 0:
        vertical = -vertical
    h = FINE_STEP_MM
    u = np.arange(-FINE_HALF_SPAN_MM, FINE_HALF_SPAN_MM + 1e-9, FINE_SECTION_STEP_MM)
    # stay within the canal's span (the pedicle's) measured along the local anterior axis
    a_u = (centre - geo.centroid_lps) @ geo.anterior_lps + u * (axis @ geo.anterior_lps)
    u = u[(a_u > span[0] + END_TRIM_MM) & (a_u < span[1] - END_TRIM_MM)]
    if len(u) < 3:
        raise PedicleError(f"{what}: the pedicle is too short to measure")
    v = np.arange(-FINE_HALF_SIZE_MM, FINE_HALF_SIZE_MM + 1e-9, h)
    bone_f, canal_f = sampler.grid_both(centre, np.stack([axis, transverse, vertical]), [u, v, v])
    bone_f = np.where(canal_f > 0.5, 0.0, bone_f).astype(np.float32)
    bone = _cut_necks(bone_f > 0.5, h)
    near_core = ndimage.binary_dilation(bone, structure=np.ones((1, 3, 3), dtype=bool))
    mid = len(v) // 2
    seed = np.zeros(bone.shape[1:], dtype=bool)
    r = round(2.0 / h)
    seed[mid - r : mid + r + 1, mid - r : mid + r + 1] = True
    widths = np.full(len(u), np.inf)
    heights = np.full(len(u), np.inf)
    cents = np.full((len(u), 2), np.nan)
    for s in range(len(u)):
        lab, n = ndimage.label(bone[s])
        comp = _pick(lab, n, seed, h)
        if not comp.any():
            continue
        jv, jw = np.nonzero(comp)
        cv, cw = float(jv.mean()), float(jw.mean())
        iv, iw = round(cv), round(cw)
        if not comp[iv, iw]:
            continue  # a hollow or crescent section: not a pedicle's
        # profiles of the interpolated mask, within a pixel of the chosen core
        core = ndimage.binary_dilation(comp, structure=np.ones((3, 3), dtype=bool)) & near_core[s]
        prof_v = np.where(core[:, iw], bone_f[s, :, iw], 0.0).astype(np.float32)
        prof_w = np.where(core[iv, :], bone_f[s, iv, :], 0.0).astype(np.float32)
        widths[s] = (_crossing(prof_v, iv, 1) + _crossing(prof_v, iv, -1)) * h
        heights[s] = (_crossing(prof_w, iw, 1) + _crossing(prof_w, iw, -1)) * h
        cents[s] = (v[0] + cv * h, v[0] + cw * h)
    if not np.isfinite(widths).any():
        raise PedicleError(f"{what}: no cross-section of the pedicle found")
    s0 = int(np.argmin(widths))
    ok = _pedicle_run(widths, heights, s0) & (np.abs(u - u[s0]) <= AXIS_HALF_SPAN_MM)
    isthmus = centre + u[s0] * axis + cents[s0, 0] * transverse + cents[s0, 1] * vertical
    if ok.sum() >= 3:
        sv = np.polyfit(u[ok], cents[ok, 0], 1)[0]
        sw = np.polyfit(u[ok], cents[ok, 1], 1)[0]
        axis = _unit(axis + sv * transverse + sw * vertical)
    entry = _exit(sampler, isthmus, -axis)
    anterior = _exit(sampler, isthmus, axis)
    transverse = _unit(geo.left_lps - (geo.left_lps @ axis) * axis)
    vertical = _unit(np.cross(axis, transverse))
    if vertical @ geo.superior_lps < 0:
        vertical = -vertical
    return PedicleGeometry(
        level=geo.name,
        side=side,
        isthmus_lps=isthmus,
        axis_lps=axis,
        transverse_lps=transverse,
        vertical_lps=vertical,
        isthmus_width_mm=float(widths[s0]),
        isthmus_height_mm=float(heights[s0]),
        entry_lps=entry,
        anterior_cortex_lps=anterior,
    )


def _exit(sampler: _Sampler, start_lps: FloatArray, direction: FloatArray) -> FloatArray:
    """The last point along a ray from ``start`` still inside the vertebra (0.5 level)."""
    s = np.arange(0.0, RAY_MAX_MM, RAY_STEP_MM)
    pts = start_lps + s[:, None] * direction
    inside = sampler.bone(pts) > 0.5
    out = np.flatnonzero(~inside)
    last = int(out[0]) - 1 if len(out) else len(s) - 1
    return np.asarray(pts[max(last, 0)], dtype=np.float64)
