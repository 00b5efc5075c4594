"""One level's vertebral body sampled on a grid in its own frame (`BodyProfile`).

Why apart from `planning.assessment.fracture`: sampling the mask is the part of the
fracture assessment that knows voxels, boxes and the scan's edges; the grading reads only
the profile it gives. The cleft search (`fracture_findings`) uses the same per-level box.

The body mask is sampled (trilinear, so a mask edge lands between voxels) on lines parallel
to the vertebra's superior axis, on a 0.5 mm grid of (left, anterior) positions, every
0.25 mm along the line. Each line gives the height of the body there: from the lowest to
the highest point inside the mask (an internal hole does not shorten it). A body that
reaches the scan's edge, or whose scan ends within a disc and a half of it, is marked so
(`BodyProfile.truncated`, `BodyProfile.near_scan_end`).
"""

from __future__ import annotations

import weakref

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from planning.anatomy.model import Anatomy, VertebraGeometry
from planning.assessment.body_profile import (
    STRIP_HALF_WIDTH_MM,
    BodyNotMeasurable,
    BodyProfile,
)
from planning.volume import Volume

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

GRID_STEP_MM = 0.5  # between height lines, along left and anterior
LINE_STEP_MM = 0.25  # along each line
SAMPLE_MARGIN_MM = 3.0
EDGE_AIR_HU = -900.0  # beyond a body's endplate lies a disc or a vertebra, never air…
EDGE_PROBE_MM = (2.0, 5.0, 8.0)  # …looked for this far beyond its top and bottom (a disc)
NEAR_END_PROBE_MM = (12.0, 16.0, 20.0, 25.0)  # the scan ends within about a disc and a half

# ---- the body on a local grid -----------------------------------------------------------
BOX_MARGIN = 3  # voxels around a level's labels: the sampling and the cleft box need 2–3
Box = tuple[slice, slice, slice]
_boxes_of: dict[int, tuple[weakref.ref[NDArray[np.int16]], list[Box | None]]] = {}


def _level_box(anatomy: Anatomy, level: str) -> Box | None:
    """The box around the level's labels (`BOX_MARGIN`), or None when it has none.

    Why: the anatomy's grid of a 512 × 512 × 300 CT holds ~10 M voxels, and every whole-grid
    pass per level (a mask, its voxels, its bounds) cost ~60 ms: 1.4 s of the 3.4 s the
    assessment took. One `find_objects` over the labels gives every level's box, kept for
    as long as that labels array lives.
    """
    labels = anatomy.labels
    cached = _boxes_of.get(id(labels))
    if cached is None or cached[0]() is not labels:
        _boxes_of.clear()  # one anatomy at a time is assessed; keep no stale arrays' boxes
        cached = (weakref.ref(labels), ndimage.find_objects(labels))
        _boxes_of[id(labels)] = cached
    code = anatomy.levels[level].code
    found = cached[1][code - 1] if 0 < code <= len(cached[1]) else None
    if found is None:
        return None
    return tuple(slice(max(0, s.start - BOX_MARGIN), min(n, s.stop + BOX_MARGIN))
                 for s, n in zip(found, labels.shape, strict=True))  # type: ignore[return-value]


def _whole(mask: BoolArray) -> Box:
    """The box of a whole array."""
    return (slice(0, mask.shape[0]), slice(0, mask.shape[1]), slice(0, mask.shape[2]))


def boxed_body(anatomy: Anatomy, level: str) -> tuple[Box, BoolArray]:
    """The level's body mask inside its box (`_level_box`), and the box."""
    box = _level_box(anatomy, level)
    if box is None:
        return (slice(0, 0), slice(0, 0), slice(0, 0)), np.zeros((0, 0, 0), dtype=bool)
    code = anatomy.levels[level].code
    return box, np.asarray(anatomy.bodies[box] & (anatomy.labels[box] == code))


def body_profile(anatomy: Anatomy, level: str, mask: BoolArray | None = None,
                 volume: Volume | None = None) -> BodyProfile:
    """Sample one level's body mask on a grid in its own frame (see `BodyProfile`)."""
    geo = anatomy.levels[level]
    box, m = boxed_body(anatomy, level) if mask is None else (_whole(mask), mask)
    off = np.array([b.start for b in box])
    k, j, i = np.nonzero(m) + off[:, None]
    if k.size == 0:
        raise BodyNotMeasurable(f"{level}: the anatomy has no vertebral body voxels for "
                                "this level")
    lo = np.array([k.min(), j.min(), i.min()]) - 2
    hi = np.array([k.max(), j.max(), i.max()]) + 3
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, anatomy.labels.shape)
    sub = m[lo[0] - off[0]:hi[0] - off[0], lo[1] - off[1]:hi[1] - off[1],
            lo[2] - off[2]:hi[2] - off[2]].astype(np.float32)
    local = geo.to_local(anatomy.to_lps(np.stack([i, j, k], 1).astype(np.float64)))
    ext_lo = local.min(axis=0) - SAMPLE_MARGIN_MM
    ext_hi = local.max(axis=0) + SAMPLE_MARGIN_MM
    axes = [np.arange(ext_lo[d], ext_hi[d] + 1e-9, step)
            for d, step in enumerate((GRID_STEP_MM, GRID_STEP_MM, LINE_STEP_MM))]
    # sampled a few left–right planes at a time: the whole grid's coordinates at once
    # would take ~130 MB on a 0.7 mm CT
    shape = tuple(len(a) for a in axes)
    vals = np.empty(shape, dtype=np.float32)
    inv = anatomy.index_from_lps
    frame = np.stack([geo.left_lps, geo.anterior_lps, geo.superior_lps])  # local → LPS rows
    m_idx = frame @ inv[:3, :3].T  # local mm → index steps
    origin = geo.centroid_lps @ inv[:3, :3].T + inv[:3, 3] - lo[::-1]
    aa, ss = np.meshgrid(axes[1], axes[2], indexing="ij")
    plane = origin + aa[..., None] * m_idx[1] + ss[..., None] * m_idx[2]
    for n, left in enumerate(axes[0]):
        ijk = (plane + left * m_idx[0]).reshape(-1, 3)
        vals[n] = ndimage.map_coordinates(sub, [ijk[:, 2], ijk[:, 1], ijk[:, 0]], order=1,
                                          cval=0.0, output=np.float32).reshape(shape[1:])
    inside = vals >= 0.5
    top, bottom = _line_ends(vals, axes[2])
    truncated = _touches_edge(anatomy, np.stack([k, j, i]), volume) or (
        volume is not None
        and _ends_in_air(volume, geo, axes[0], axes[1], top, bottom, EDGE_PROBE_MM))
    near_end = truncated or (
        volume is not None
        and _ends_in_air(volume, geo, axes[0], axes[1], top, bottom, NEAR_END_PROBE_MM))
    return BodyProfile(geo, axes[0], axes[1], axes[2], inside, top, bottom,
                       _spacing_along(anatomy, geo.superior_lps),
                       max(_spacing_along(anatomy, geo.left_lps),
                           _spacing_along(anatomy, geo.anterior_lps)),
                       truncated, near_end)


def _ends_in_air(volume: Volume, geo: VertebraGeometry, left_mm: FloatArray,
                 anterior_mm: FloatArray, top_mm: FloatArray, bottom_mm: FloatArray,
                 probes_mm: tuple[float, ...]) -> bool:
    """True when, beyond the body's top or bottom (mid-sagittal lines, ``probes_mm``), the
    CT holds air: the scan's data ends there. A re-gridded or oblique storing pads the space outside
    the scanned slab with air inside its array, so the body is cut by the scan although it
    does not touch the array's edge (false "crush fractures" of the top vertebra)."""
    strip = np.abs(left_mm) <= STRIP_HALF_WIDTH_MM + 1e-9
    for ends, sign in ((top_mm, 1.0), (bottom_mm, -1.0)):
        lines = ends[strip]
        ok = np.isfinite(lines)
        if not ok.any():
            continue
        ant = np.broadcast_to(anterior_mm[None, :], lines.shape)[ok]
        sup = lines[ok]
        for d in probes_mm:
            pts = [geo.centroid_lps + a * geo.anterior_lps + (z + sign * d) * geo.superior_lps
                   for a, z in zip(ant[::4], sup[::4], strict=True)]
            ijk = volume.to_index(np.array(pts))
            hu = ndimage.map_coordinates(volume.array, [ijk[:, 2], ijk[:, 1], ijk[:, 0]],
                                         order=1, cval=-1024.0, output=np.float32)
            if np.mean(hu < EDGE_AIR_HU) > 0.5:
                return True
    return False


def _spacing_along(anatomy: Anatomy, direction_lps: FloatArray) -> float:
    """The voxel's extent along a unit LPS direction (mm): 1 / |index step per mm|."""
    step = np.linalg.solve(anatomy.affine_lps[:3, :3], direction_lps)
    return float(1.0 / np.abs(step).max())


def _touches_edge(anatomy: Anatomy, kji: NDArray[np.intp], volume: Volume | None) -> bool:
    """True when the mask's voxels (``kji``: their [k, j, i] rows on the anatomy's grid)
    reach the crop's border or the CT's first or last voxels."""
    for axis in range(3):
        if kji[axis].min() == 0 or kji[axis].max() == anatomy.labels.shape[axis] - 1:
            return True
    if volume is None:
        return False
    k, j, i = kji
    ijk = volume.to_index(anatomy.to_lps(np.stack([i, j, k], 1).astype(np.float64)))
    last = np.asarray(volume.size, dtype=np.float64) - 1.0
    return bool(np.any(ijk < 0.5) or np.any(ijk > last - 0.5))


def _line_ends(vals: NDArray[np.float32], s_mm: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Highest and lowest 0.5 crossings along the last axis (NaN where never inside)."""
    inside = vals >= 0.5
    any_in = inside.any(axis=-1)
    n = inside.shape[-1]
    first = np.argmax(inside, axis=-1)
    last = n - 1 - np.argmax(inside[..., ::-1], axis=-1)
    step = float(s_mm[1] - s_mm[0])

    def crossing(idx: NDArray[np.intp], outward: int) -> FloatArray:
        nxt = np.clip(idx + outward, 0, n - 1)
        v0 = np.take_along_axis(vals, idx[..., None], -1)[..., 0].astype(np.float64)
        v1 = np.take_along_axis(vals, nxt[..., None], -1)[..., 0].astype(np.float64)
        frac = np.where(v0 - v1 > 1e-6, (v0 - 0.5) / np.maximum(v0 - v1, 1e-6), 0.0)
        return np.asarray(s_mm[idx] + outward * step * np.clip(frac, 0.0, 1.0))

    top = np.where(any_in, crossing(last, +1), np.nan)
    bottom = np.where(any_in, crossing(first, -1), np.nan)
    return top, bottom
