"""Cement volume per level and a simple preview of its spread from each needle tip.

Why: the cement volume to inject is planned as a fraction of the vertebral body's
volume. Too little does not restore strength; more adds leakage risk without adding
relief. The defaults follow two studies:

- Molloy S, Mathis JM, Belkoff SM, "The effect of vertebral body percentage fill on
  mechanical behavior during percutaneous vertebroplasty", Spine 2003;28:1549–1554:
  about 16 % fill restores the body's strength (ex vivo).
- Nieuwenhuijse MJ, Bollen L, van Erkel AR, Dijkstra PDS, "Optimal intravertebral cement
  volume in percutaneous vertebroplasty for painful osteoporotic vertebral compression
  fractures", Spine 2012;37:1747–1755: about 24 % fill gave the best pain relief, and more
  did not help.

Hence the default range of 15–30 % (`DEFAULT_FILL_RANGE`). The caller can change it.

Body volume: the voxels of ``anatomy.bodies`` that belong to the level's vertebra label,
times the voxel volume (|det| of the affine, so oblique grids count right).

Spread preview, one per needle tip (a bilateral approach splits the volume, half each):
an ellipsoid centred on the tip, with the per-side volume at the preview fill (the upper
end of the range by default, the worst case for leakage). Its axes are the vertebra's own
(left, anterior, superior) and their ratios are those of the body's extents (width,
depth, height: 2nd–98th percentiles of the body's voxels along each axis). Cement
spreads through the cancellous bone until the cortex and endplates stop it, so a copy
of the body's shape, scaled down, is a fair guess. This is a preview, not a flow
simulation. The ellipsoid is rasterised on the anatomy grid and clipped to the body.
``clipped_fraction`` is the share of its voxels outside the body: cement that would
have to go somewhere else, or leak.

Distances (mm, voxel centres, 0 when touching), from the clipped spread and from the tip:

- posterior wall: the body's surface seen from behind, across the central half of its
  width. The body's voxels are binned in columns along the local anterior axis (bins
  one voxel wide in left and superior), and the most posterior voxel of each column is
  kept if it lies in the posterior third of the body's depth (at the endplates a column
  can end on the endplate's dome instead). Cement reaching this wall risks leaking into
  the spinal canal.
- basivertebral foramen: it opens at the centre of the posterior body wall, where the
  basivertebral vein leaves the body. It is located by a ray from the body's centre
  (the centroid of its voxels, i.e. the midline at mid-height) running backwards along
  the vertebra's anterior axis, at the last point still inside the body (nearest-voxel
  look-up, gaps up to `FORAMEN_GAP_MM` bridged). The centroid is used because it is robust
  on 3 mm voxels, where a per-column mid-height would be quantised to a voxel.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

from planning.anatomy.model import Anatomy
from planning.errors import VertebroPlanError
from planning.plan import Side

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

DEFAULT_FILL_RANGE = (0.15, 0.30)  # Molloy 2003 (~16 %), Nieuwenhuijse 2012 (~24 %)
EXTENT_PERCENTILES = (2.0, 98.0)  # body extents without stray voxels
POSTERIOR_WALL_HALF_WIDTH = 0.25  # central half of the body's width: ±25 % of it
POSTERIOR_WALL_DEPTH = 1.0 / 3.0  # a column's most posterior voxel is the wall only when it
# lies in the body's posterior third (not the dome of an endplate seen from behind)
FORAMEN_GAP_MM = 3.0  # holes in a body mask this long are bridged on the way back
RAY_STEP_MM = 0.25
RAY_MAX_MM = 80.0


class CementError(VertebroPlanError, ValueError):
    """A cement plan cannot be made (message names the level and why)."""


@dataclass(frozen=True, eq=False)
class CementSpread:
    """The preview of one tip's cement: an ellipsoid (LPS mm) and its clipped voxels.

    ``axes_lps`` rows are the unit directions of ``semi_axes_mm`` (the vertebra's left,
    anterior, superior), so a mesh is ``centre + Σ semi_axes[n] · u_n · axes_lps[n]`` over
    a unit sphere ``u``. ``mask`` is on the anatomy's crop grid (``[k, j, i]``).
    """

    side: Side | None
    tip_lps: FloatArray
    centre_lps: FloatArray
    semi_axes_mm: FloatArray
    axes_lps: FloatArray
    volume_ml: float  # the ellipsoid's own volume (the requested per-side volume)
    spread_volume_ml: float  # its voxels inside the body
    clipped_fraction: float
    distance_to_posterior_wall_mm: float
    distance_to_basivertebral_foramen_mm: float
    tip_to_posterior_wall_mm: float
    tip_to_basivertebral_foramen_mm: float
    mask: BoolArray

    def to_json(self) -> dict[str, Any]:
        return {
            "side": None if self.side is None else self.side.value,
            "tip_lps": _r(self.tip_lps),
            "centre_lps": _r(self.centre_lps),
            "semi_axes_mm": _r(self.semi_axes_mm),
            "axes_lps": [_r(a, 4) for a in self.axes_lps],
            "volume_ml": round(self.volume_ml, 2),
            "spread_volume_ml": round(self.spread_volume_ml, 2),
            "clipped_fraction": round(self.clipped_fraction, 3),
            "distance_to_posterior_wall_mm": round(self.distance_to_posterior_wall_mm, 1),
            "distance_to_basivertebral_foramen_mm": round(
                self.distance_to_basivertebral_foramen_mm, 1),
            "tip_to_posterior_wall_mm": round(self.tip_to_posterior_wall_mm, 1),
            "tip_to_basivertebral_foramen_mm": round(self.tip_to_basivertebral_foramen_mm, 1),
        }


@dataclass(frozen=True, eq=False)
class CementPlan:
    """One level's cement: body volume, the fill range and its volumes, the spreads."""

    level: str
    body_volume_ml: float
    fill_range: tuple[float, float]  # fractions of the body volume
    preview_fill: float
    basivertebral_foramen_lps: FloatArray
    spreads: tuple[CementSpread, ...]

    @property
    def volume_ml_range_total(self) -> tuple[float, float]:
        lo, hi = self.fill_range
        return (lo * self.body_volume_ml, hi * self.body_volume_ml)

    @property
    def volume_ml_range_per_side(self) -> tuple[float, float]:
        """The total split between the needles (half each for a bilateral approach)."""
        n = max(len(self.spreads), 1)
        lo, hi = self.volume_ml_range_total
        return (lo / n, hi / n)

    def to_json(self) -> dict[str, Any]:
        lo, hi = self.fill_range
        n = len(self.spreads)
        approach = {1: "unipedicular", 2: "bilateral"}.get(n, f"{n} needles")
        return {
            "level": self.level,
            "body_volume_ml": round(self.body_volume_ml, 2),
            "fill_percent_range": [round(100 * lo, 1), round(100 * hi, 1)],
            "volume_ml_range_total": [round(v, 2) for v in self.volume_ml_range_total],
            "volume_ml_range_per_side": [round(v, 2) for v in self.volume_ml_range_per_side],
            "approach": approach,
            "preview_fill_percent": round(100 * self.preview_fill, 1),
            "basivertebral_foramen_lps": _r(self.basivertebral_foramen_lps),
            "spreads": [s.to_json() for s in self.spreads],
        }


def _r(v: ArrayLike, nd: int = 2) -> list[float]:
    return [round(float(x), nd) for x in np.asarray(v).ravel()]


def body_mask(anatomy: Anatomy, level: str) -> BoolArray:
    """The level's vertebral body on the anatomy grid (bodies ∩ the level's label)."""
    if level not in anatomy.levels:
        raise CementError(f"{level} is not in this CT's anatomy")
    return np.asarray(anatomy.bodies & anatomy.vertebra_mask(level), dtype=bool)


def voxel_volume_mm3(anatomy: Anatomy) -> float:
    return float(abs(np.linalg.det(anatomy.affine_lps[:3, :3])))


def body_volume_ml(anatomy: Anatomy, level: str) -> float:
    """The level's vertebral body volume in millilitres (voxel count × voxel volume)."""
    return float(body_mask(anatomy, level).sum()) * voxel_volume_mm3(anatomy) / 1000.0


def cement_plan(
    anatomy: Anatomy,
    level: str,
    tips_lps: Mapping[Side, ArrayLike] | Sequence[ArrayLike],
    fill_range: tuple[float, float] = DEFAULT_FILL_RANGE,
    *,
    preview_fill: float | None = None,
) -> CementPlan:
    """Cement volumes for ``level`` and the spread preview from each needle tip.

    Parameters
    ----------
    tips_lps
        The needle tips, LPS mm: by side (``{Side.LEFT: …, Side.RIGHT: …}``) or a list.
        The volume is split equally between them.
    fill_range
        (low, high) fractions of the body volume, 0 < low ≤ high ≤ 1.
    preview_fill
        The fraction the spread preview shows; the high end of ``fill_range`` by default.
    """
    lo, hi = (float(fill_range[0]), float(fill_range[1]))
    if not 0.0 < lo <= hi <= 1.0:
        raise CementError(
            f"fill_range must be two fractions 0 < low ≤ high ≤ 1, got {fill_range!r}")
    fill = hi if preview_fill is None else float(preview_fill)
    if not 0.0 < fill <= 1.0:
        raise CementError(f"preview_fill must be a fraction in (0, 1], got {preview_fill!r}")
    tips: list[tuple[Side | None, FloatArray]]
    if isinstance(tips_lps, Mapping):
        tips = [(Side.parse(s), _point(p, level)) for s, p in tips_lps.items()]
    else:
        tips = [(None, _point(p, level)) for p in tips_lps]
    if not tips:
        raise CementError(f"{level}: no needle tip to plan cement from")
    body = body_mask(anatomy, level)
    n_vox = int(body.sum())
    if n_vox == 0:
        raise CementError(f"{level}: the vertebral body has no voxels in this anatomy")
    vox_mm3 = voxel_volume_mm3(anatomy)
    body_ml = n_vox * vox_mm3 / 1000.0
    geo = anatomy.levels[level]
    k, j, i = np.nonzero(body)
    body_lps = anatomy.to_lps(np.stack([i, j, k], 1).astype(np.float64))
    rows = geo.frame_rows  # left, anterior, superior
    local = (body_lps - body_lps.mean(axis=0)) @ rows.T
    p_lo, p_hi = np.percentile(local, EXTENT_PERCENTILES, axis=0)
    extents = np.maximum(p_hi - p_lo, 1e-3)
    centre_lps = body_lps.mean(axis=0)
    foramen = _foramen(anatomy, body, centre_lps, geo.anterior_lps)
    wall = _posterior_wall(local, body_lps, p_lo, extents, anatomy.spacing_mm)
    if not len(wall):  # a body with no posterior third cannot happen, but never query nothing
        wall = foramen[None, :]
    wall_tree = cKDTree(wall)
    per_side_ml = fill * body_ml / len(tips)
    spreads = tuple(
        _spread(anatomy, body, side, tip, per_side_ml, extents, rows, wall_tree, foramen)
        for side, tip in tips
    )
    return CementPlan(level=level, body_volume_ml=body_ml, fill_range=(lo, hi),
                      preview_fill=fill, basivertebral_foramen_lps=foramen, spreads=spreads)


def _point(p: ArrayLike, level: str) -> FloatArray:
    arr = np.asarray(p, dtype=np.float64)
    if arr.shape != (3,) or not np.all(np.isfinite(arr)):
        raise CementError(f"{level}: a needle tip must be three finite numbers (LPS mm)")
    return arr


def _inside(anatomy: Anatomy, mask: BoolArray, points_lps: FloatArray) -> BoolArray:
    """Nearest-voxel look-up of ``mask`` at LPS points (False outside the grid)."""
    ijk = np.rint(anatomy.to_index(points_lps)).astype(np.int64)
    shape = np.array(mask.shape[::-1])  # (ni, nj, nk)
    ok = np.all((ijk >= 0) & (ijk < shape), axis=1)
    out = np.zeros(len(points_lps), dtype=bool)
    out[ok] = mask[ijk[ok, 2], ijk[ok, 1], ijk[ok, 0]]
    return out


def _foramen(anatomy: Anatomy, body: BoolArray, centre_lps: FloatArray,
             anterior_lps: FloatArray) -> FloatArray:
    """The centre of the posterior body wall: where a ray from the body's centre, going
    backwards, last leaves the body (gaps up to `FORAMEN_GAP_MM` bridged)."""
    s = np.arange(0.0, RAY_MAX_MM, RAY_STEP_MM)
    pts = centre_lps - s[:, None] * anterior_lps
    inside = _inside(anatomy, body, pts)
    last = 0
    gap = round(FORAMEN_GAP_MM / RAY_STEP_MM)
    for n in np.flatnonzero(inside):
        if n - last > gap + 1:
            break
        last = int(n)
    return np.asarray(pts[last], dtype=np.float64)


def _posterior_wall(local: FloatArray, body_lps: FloatArray, p_lo: FloatArray,
                    extents: FloatArray, spacing_mm: FloatArray) -> FloatArray:
    """LPS points of the posterior wall: the most posterior body voxel of each column
    along the anterior axis, over the central half of the body's width, where it lies in
    the posterior third of the body (``local``: body voxels in the vertebra's frame,
    relative to the body's centroid; ``p_lo``, ``extents``: their low percentile and
    extent per axis)."""
    centre_left = float(np.median(local[:, 0]))
    central = np.abs(local[:, 0] - centre_left) <= POSTERIOR_WALL_HALF_WIDTH * extents[0]
    loc, pts = local[central], body_lps[central]
    step = float(np.max(spacing_mm))
    key = np.stack([np.floor(loc[:, 0] / step), np.floor(loc[:, 2] / step)], 1).astype(np.int64)
    order = np.lexsort((loc[:, 1], key[:, 1], key[:, 0]))  # columns, then front to back
    key = key[order]
    first = np.ones(len(key), dtype=bool)
    first[1:] = np.any(key[1:] != key[:-1], axis=1)
    rear = loc[order][first, 1] <= p_lo[1] + POSTERIOR_WALL_DEPTH * extents[1]
    return np.asarray(pts[order][first][rear], dtype=np.float64)


def _spread(anatomy: Anatomy, body: BoolArray, side: Side | None, tip: FloatArray,
            volume_ml: float, extents: FloatArray, rows: FloatArray, wall_tree: cKDTree,
            foramen: FloatArray) -> CementSpread:
    """One tip's ellipsoid (the body's shape scaled to ``volume_ml``), rasterised, clipped."""
    volume_mm3 = volume_ml * 1000.0
    scale = (3.0 * volume_mm3 / (4.0 * math.pi * float(np.prod(extents / 2.0)))) ** (1 / 3)
    semi = scale * extents / 2.0
    # bounding box of the ellipsoid in grid indices
    half_lps = np.abs(rows.T) @ semi  # half extents along L, P, S
    signs = np.array(np.meshgrid(*[[-1.0, 1.0]] * 3, indexing="ij")).reshape(3, -1).T
    corners = tip + signs * half_lps
    ijk = anatomy.to_index(corners)
    shape = np.array(body.shape[::-1])
    lo = np.clip(np.floor(ijk.min(axis=0)).astype(int), 0, shape)
    hi = np.clip(np.ceil(ijk.max(axis=0)).astype(int) + 1, 0, shape)
    mask = np.zeros(body.shape, dtype=bool)
    total = 0
    if np.all(hi > lo):
        kk, jj, ii = np.meshgrid(np.arange(lo[2], hi[2]), np.arange(lo[1], hi[1]),
                                 np.arange(lo[0], hi[0]), indexing="ij")
        pts = anatomy.to_lps(np.stack([ii, jj, kk], -1).reshape(-1, 3).astype(np.float64))
        q = ((pts - tip) @ rows.T) / semi
        ell = (q * q).sum(axis=1) <= 1.0
        total = int(ell.sum())
        sub = ell.reshape(kk.shape)
        box = (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))
        mask[box] = sub & body[box]
    kept = int(mask.sum())
    clipped = 1.0 - kept / total if total else 1.0
    vox_mm3 = voxel_volume_mm3(anatomy)
    tip_wall = float(wall_tree.query(tip)[0])
    tip_foramen = float(np.linalg.norm(tip - foramen))
    if kept:
        k, j, i = np.nonzero(mask)
        cloud = anatomy.to_lps(np.stack([i, j, k], 1).astype(np.float64))
        d_wall = float(wall_tree.query(cloud)[0].min())
        d_foramen = float(np.linalg.norm(cloud - foramen, axis=1).min())
    else:
        d_wall, d_foramen = tip_wall, tip_foramen
    return CementSpread(
        side=side, tip_lps=tip, centre_lps=tip.copy(), semi_axes_mm=semi, axes_lps=rows.copy(),
        volume_ml=volume_ml, spread_volume_ml=kept * vox_mm3 / 1000.0,
        clipped_fraction=clipped, distance_to_posterior_wall_mm=d_wall,
        distance_to_basivertebral_foramen_mm=d_foramen, tip_to_posterior_wall_mm=tip_wall,
        tip_to_basivertebral_foramen_mm=tip_foramen, mask=mask,
    )
