"""The spinal column in a CT without labels: bone, canal centreline and body centreline.

Everything here runs on a *working grid*: the CT resampled (trilinear) onto an LPS-aligned,
isotropic grid of `WORK_SPACING_MM` or the CT's own spacing if coarser. Why: the column's
cues (a canal enclosed by bone, bodies in front of it, discs between them) are found with
axis-aligned filters along the patient's own axes, so a flipped, permuted or oblique CT
grid behaves exactly like an axial one, and a 512 × 512 × 300 CT shrinks to ~2 million
voxels. Array order is the project's ``[k, j, i]``; on the working grid i runs towards the
patient's left, j posterior and k superior (LPS).

The canal is found as the soft-tissue voxels (below `CANAL_MAX_HU`: CSF and epidural fat,
not discs nor cancellous bone) that have bone within `ENCLOSURE_MM` in all four in-plane
directions, bone being dilated along the body axis first so that the ring stays "closed"
between two levels. Of those voxels the tube that spans most slices near the midline is the
canal. The vertebral bodies lie in front of it: per slice, the first run of bone anterior
to the canal near the midline (carried on at the top of the column where a cut, porotic
body is too faint, `_carry_body`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from planning.errors import VertebroPlanError
from planning.vessels import (
    VesselMap,
    find_vessels,
    local_mean_sd,
    noise_sd_hu,
    smoothed_to_noise,
)
from planning.volume import FloatArray, Volume, kji_transform

WORK_SPACING_MM = 2.0
BONE_HU = 180.0
METAL_HU = 2500.0  # stents, wires, screws: never bone, and their streaks are masked around
METAL_MARGIN_MM = 4.0
CANAL_MAX_HU = 70.0
CANAL_MIN_HU = -200.0
ENCLOSURE_MM = 30.0
RING_BRIDGE_MM = 6.0  # bone is dilated by this along the body axis before the enclosure test
MIN_CANAL_AREA_MM2 = 24.0
MAX_CANAL_AREA_MM2 = 2500.0  # a canal piece may include a pocket beside it
CENTRELINE_SIGMA_MM = 5.0
MAX_GAP_MM = 30.0
TRACK_TOLERANCE_MM = 5.0
TRACK_SLOPE = 1.0  # allowed drift per mm along the body axis: the sacrum tilts ~45°
SYMMETRY_HALF_WIDTH_MM = 24.0  # mirror window: pedicles, laminae, transverse processes
SYMMETRY_DEPTH_MM = (36.0, 24.0)  # anterior (the body) and posterior of the canal centre
SYMMETRY_FLOOR = 0.15  # a piece less symmetric than this lengthens no chain
GAP_COST = 0.05  # per slice skipped where the ring is open
LINK_COST = 0.02  # per mm of sideways step between linked pieces
BODY_BAND_MM = 6.0  # half-width of the midline band in which the body is looked for
BODY_SEARCH_MM = (4.0, 75.0)  # from the canal centre, anteriorly
BODY_Z_WINDOW_MM = 10.0  # bone is pooled over ± this so that disc slices still see bodies
BODY_MIN_FRACTION, BODY_END_FRACTION = 0.3, 0.12
BODY_CARRY_MM = 24.0  # see `_carry_body`
BODY_FRONT_HU = 60.0  # below this in front of the body: fat, muscle, blood (`_body_path`)
BODY_FRONT_GAP_MM = 4.0
BODY_DEPTH_MM = (20.0, 50.0)  # a body's depth, posterior to anterior cortex, pooled and blurred
SOFT_TISSUE_HU = 40.0  # what a contrast-filled vessel's lumen counts as there
FWHM_PER_SIGMA = 2.3548
ANTIALIAS_MIN_SIGMA = 0.25  # voxels: below this the blur changes nothing worth its time
NOISE_LIMIT_HU = 40.0  # noisier than this on the working grid, the CT is anti-aliased first
# (`_antialiased`): soft tissue (≤ 60 HU) then stays 3 SD below `BONE_HU`

BoolArray = NDArray[np.bool_]
Float32Array = NDArray[np.float32]


class SpineNotFoundError(VertebroPlanError, ValueError):
    """No spinal column (a bony canal with bodies in front) can be found in this CT."""


@dataclass(frozen=True, eq=False)
class WorkGrid:
    """The CT on the LPS-aligned working grid: HU ``[k, j, i]`` and index→LPS affine."""

    hu: Float32Array
    affine_lps: FloatArray
    spacing_mm: float

    def to_lps(self, index_ijk: FloatArray) -> FloatArray:
        ijk = np.asarray(index_ijk, dtype=np.float64)
        return ijk @ self.affine_lps[:3, :3].T + self.affine_lps[:3, 3]


@dataclass(frozen=True, eq=False)
class SpineColumn:
    """Canal and body centrelines on the working grid, one point per slice ``k``.

    ``canal_ij`` / ``body_ij`` are (n_slices, 2) continuous (i, j) working indices, NaN
    outside ``slices`` (the slices where the column was followed). ``bone`` is the bone mask
    (metal removed) and ``canal`` the canal voxels found before any interpolation.
    """

    grid: WorkGrid
    bone: BoolArray
    metal: BoolArray
    vessels: VesselMap
    """Contrast-filled vessels and heart found in the image (`planning.vessels`); ``bone``
    excludes them."""
    canal: BoolArray
    canal_ij: FloatArray
    body_ij: FloatArray
    slices: slice
    closed_fraction: float
    body_depth_mm: FloatArray
    """Per slice, the body's depth from its posterior to its anterior cortex along the
    midline (NaN where no body was found): the scale a vertebra's height goes with."""


def working_grid(ct: Volume, spacing_mm: float | None = None,
                 bounds_lps: tuple[FloatArray, FloatArray] | None = None) -> WorkGrid:
    """The CT resampled onto an LPS-aligned isotropic grid covering its whole extent (or
    the part of it within ``bounds_lps``, (min, max) corners in LPS mm)."""
    step = spacing_mm or max(WORK_SPACING_MM, float(ct.spacing_mm.min()))
    lo, hi = ct.bounds_lps()
    if bounds_lps is not None:
        lo, hi = np.maximum(lo, bounds_lps[0]), np.minimum(hi, bounds_lps[1])
        hi = np.maximum(hi, lo)
    shape_ijk = np.floor((hi - lo) / step).astype(int) + 1
    affine = np.eye(4)
    affine[:3, :3] *= step
    affine[:3, 3] = lo
    # work (i, j, k) → CT (i, j, k)
    matrix, offset = kji_transform(np.linalg.inv(ct.affine_lps) @ affine)
    shape = tuple(int(n) for n in shape_ijk[::-1])
    # "nearest" and then air beyond half a voxel outside the CT: with "constant", a grid
    # point on the CT's first or last slice fell a rounding error outside it in one storing
    # and not in another (the same patient flipped gave another top slice and lost T12)
    hu = ndimage.affine_transform(ct.array, matrix, offset, output_shape=shape,
                                  output=np.float32, order=1, mode="nearest", prefilter=False)
    if noise_sd_hu(*local_mean_sd(hu)) > NOISE_LIMIT_HU:
        smooth = _antialiased(ct, step)
        if smooth is not ct.array:
            hu = ndimage.affine_transform(smooth, matrix, offset, output_shape=shape,
                                          output=np.float32, order=1, mode="nearest",
                                          prefilter=False)
    hu[~_inside(matrix, offset, shape, ct.array.shape)] = -1000.0
    return WorkGrid(np.asarray(hu, dtype=np.float32), affine, float(step))


def quiet_hu(hu: NDArray[Any]) -> NDArray[Any]:
    """``hu`` as it is, or smoothed until its noise is at most `NOISE_LIMIT_HU` where it is
    noisier (`vessels.smoothed_to_noise`): the body's interior test on the CT's grid
    (`from_ct._labels_on_ct`) assumes a porotic interior stays above soft tissue.

    Why: VerSe 012's own voxels carry ~120 HU of noise; on its grid a porotic body's interior
    fell below the interior threshold in holes, the canal found in the labels ran into them,
    and L3's body shrank to a sliver in front of it (its centroid 20 mm forward)."""
    return smoothed_to_noise(hu, NOISE_LIMIT_HU, every=max(1, hu.shape[0] // 24))[0]


def _antialiased(ct: Volume, step_mm: float) -> NDArray[np.generic]:
    """The CT blurred to the working grid's resolution before it is sampled there, for a
    CT too noisy to be sampled plainly (`NOISE_LIMIT_HU`).

    Why: trilinear sampling of a finer CT at ``step_mm`` keeps every voxel's noise (a
    sample, not an average). On a low-dose 1 mm CT (VerSe 012: noise 94 HU on the 2 mm
    grid, against 19–29 HU on the other CTs) 7 % of the soft tissue crossed `BONE_HU`, and
    the speckle in front of a body became body. A Gaussian whose FWHM makes up the
    difference between the CT's voxel and the step, per axis, is the standard
    anti-aliasing: a CT as coarse as the grid is left as it is. Why not always: the blur
    also thins a thin cortex below the threshold, and on a quiet CT resampled to 1 mm the
    sacral canal's ring opened and S1 was lost.
    """
    fwhm = np.sqrt(np.maximum(step_mm**2 - np.asarray(ct.spacing_mm, dtype=np.float64)**2,
                              0.0))
    sigma = fwhm / FWHM_PER_SIGMA / np.asarray(ct.spacing_mm, dtype=np.float64)  # voxels
    if not (sigma > ANTIALIAS_MIN_SIGMA).any():
        return ct.array
    return ndimage.gaussian_filter(ct.array.astype(np.float32), sigma[::-1], mode="nearest",
                                   truncate=3.0)


def _inside(matrix: FloatArray, offset: FloatArray, shape: tuple[int, ...],
            source_shape: tuple[int, ...]) -> BoolArray:
    """Which output voxels of `ndimage.affine_transform` (``matrix``, ``offset``, both in
    [k, j, i] order) map within half a voxel of the source array."""
    axes = [np.arange(n, dtype=np.float32).reshape([-1 if d == a else 1 for d in range(3)])
            for a, n in enumerate(shape)]
    inside = np.ones(shape, dtype=bool)
    for a in range(3):
        src = (np.float32(matrix[a, 0]) * axes[0] + np.float32(matrix[a, 1]) * axes[1]
               + np.float32(matrix[a, 2]) * axes[2] + np.float32(offset[a]))
        inside &= (src >= -0.5) & (src <= source_shape[a] - 0.5)
    return inside


def find_column(grid: WorkGrid) -> SpineColumn:
    """Bone, canal and body centrelines of the spine on the working grid."""
    s = grid.spacing_mm
    hu = grid.hu
    metal = hu > METAL_HU
    if metal.any():
        metal = ndimage.binary_dilation(metal, iterations=max(1, round(METAL_MARGIN_MM / s)))
    bone = (hu >= BONE_HU) & ~metal
    if not bone.any():
        raise SpineNotFoundError("No bone was found in this CT (is it a CT in HU?).")
    canal = _canal_voxels(hu, bone, s)
    if metal.any():
        canal &= ~ndimage.binary_dilation(metal, iterations=max(1, round(10.0 / s)))
    canal_ij, covered = _canal_path(canal, bone, s)
    # blood is found once the column is known, so that no body's core can be taken for it
    # (`find_vessels`' bone_kji), and then removed from the bone before the bodies are
    vessels = find_vessels(hu, grid.affine_lps, s, bone_kji=posterior_body_points(canal_ij, s),
                           box=_around_canal(canal_ij, hu.shape, s))
    bone &= ~vessels.lumen & ~vessels.wall_calcium
    body_ij, depth = _body_path(bone, np.where(vessels.lumen, SOFT_TISSUE_HU, hu), canal_ij,
                                covered, s)
    first, last = int(covered[0]), int(covered[-1])
    closed = float(np.isfinite(canal_ij[first:last + 1, 0]).mean())
    canal_ij = _fill_and_smooth(canal_ij, covered, s)
    body_ij = _carry_body(body_ij, canal_ij, last, s)
    body_ij = _fill_and_smooth(body_ij, np.flatnonzero(np.isfinite(body_ij[:, 0])), s)
    return SpineColumn(grid, bone, metal, vessels, canal, canal_ij, body_ij,
                       slice(first, last + 1), closed, depth)


VESSEL_REACH_MM = 90.0  # vessels are looked for this far around the canal (sideways, front)


def _around_canal(canal_ij: FloatArray, shape: tuple[int, ...], s: float
                  ) -> tuple[slice, slice, slice]:
    """The working-grid box within `VESSEL_REACH_MM` of the canal in every slice: where
    blood can touch the spine or a needle's path. The heart and great vessels beyond it
    matter to neither, and a 512 × 512 CT's whole slices cost seconds."""
    known = canal_ij[np.isfinite(canal_ij[:, 0])]
    reach = VESSEL_REACH_MM / s
    i0, j0 = np.floor(known.min(axis=0) - reach).astype(int)
    i1, j1 = np.ceil(known.max(axis=0) + reach).astype(int) + 1
    return (slice(0, shape[0]), slice(max(0, j0), min(shape[1], j1)),
            slice(max(0, i0), min(shape[2], i1)))


POSTERIOR_BODY_MM = 16.0  # canal centre → inside the back of the body, whatever its depth


def posterior_body_points(canal_ij: FloatArray, s: float) -> NDArray[np.intp]:
    """(k, j, i) working voxels in the posterior part of the body, straight in front of the
    canal, where the canal was followed: half a canal (~8 mm) and a posterior wall in front
    of its centre. Why not the body path's middle: where the aorta lies in front of the body
    (at the diaphragm's hiatus) that path can run on into the aorta; no vessel lies between
    the canal and the back of the body."""
    k = np.flatnonzero(np.isfinite(canal_ij[:, 0]))
    i = np.rint(canal_ij[k, 0]).astype(np.intp)
    j = np.rint(canal_ij[k, 1] - POSTERIOR_BODY_MM / s).astype(np.intp)  # −j: anterior
    return np.stack([k, j, i], axis=1)


def _within(mask: BoolArray, axis: int, n: int, forward: bool) -> BoolArray:
    """True where ``mask`` holds within ``n`` voxels ahead (``forward``) or behind along
    ``axis``, the voxel itself excluded: a difference of cumulative sums."""
    c = np.cumsum(mask, axis=axis, dtype=np.int32)
    pad = [(0, 0)] * 3
    if forward:
        pad[axis] = (0, n)
        padded = np.pad(c, pad, mode="edge")
        ahead = np.take(padded, np.arange(n, n + mask.shape[axis]), axis=axis)
        return np.asarray(ahead - c > 0)
    pad[axis] = (n + 1, 0)
    padded = np.pad(c, pad, mode="constant")
    before = np.take(padded, np.arange(0, mask.shape[axis]), axis=axis)
    return np.asarray(c - mask.astype(np.int32) - before > 0)


def _canal_voxels(hu: Float32Array, bone: BoolArray, s: float) -> BoolArray:
    """Soft-tissue voxels enclosed by bone in-plane: the canal and a few pockets."""
    bridged = ndimage.maximum_filter1d(bone, size=2 * round(RING_BRIDGE_MM / s) + 1, axis=0)
    n = max(2, round(ENCLOSURE_MM / s))
    soft = ndimage.uniform_filter(hu, size=3)
    enclosed = (soft < CANAL_MAX_HU) & (soft > CANAL_MIN_HU) & ~bone
    for axis in (1, 2):
        for forward in (True, False):
            enclosed &= _within(bridged, axis, n, forward)
    return enclosed


def _canal_path(canal: BoolArray, bone: BoolArray, s: float
                ) -> tuple[FloatArray, NDArray[np.intp]]:
    """Per slice (i, j) of the canal (NaN where not seen) and the slices where it was seen.

    Enclosed pockets are many (a stent's lumen, a pocket between a lamina and a facet, a
    soft vertebral body); the canal is the one that continues from slice to slice on the
    midline of a symmetric bony ring (`_best_chain`), across gaps of up to `MAX_GAP_MM`
    where the ring is open.
    """
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = ndimage.generate_binary_structure(2, 1)
    labels, count = ndimage.label(canal, structure=structure)
    if count == 0:
        raise SpineNotFoundError("No spinal canal was found: no soft tissue is enclosed by "
                                 "bone anywhere in this CT.")
    flat = labels.ravel()
    area = np.bincount(flat, minlength=count + 1).astype(np.float64)
    i = np.arange(canal.shape[2], dtype=np.float64)[None, None, :]
    j = np.arange(canal.shape[1], dtype=np.float64)[None, :, None]
    index = np.arange(count + 1)
    ci = ndimage.sum_labels(np.broadcast_to(i, canal.shape), labels, index) / np.maximum(area, 1)
    cj = ndimage.sum_labels(np.broadcast_to(j, canal.shape), labels, index) / np.maximum(area, 1)
    objects = ndimage.find_objects(labels)
    piece_k = np.array([-1] + [o[0].start for o in objects])
    area_mm2 = area * s * s
    ok = (area_mm2 >= MIN_CANAL_AREA_MM2) & (area_mm2 <= MAX_CANAL_AREA_MM2)
    ok[0] = False
    if not ok.any():
        raise SpineNotFoundError("No spinal canal was found: the bony ring is never closed.")
    centres = np.stack([ci, cj], axis=1)
    candidates = np.flatnonzero(ok)
    symmetry = _symmetry(bone, centres[candidates], piece_k[candidates], s)
    chain = _best_chain(candidates, centres, piece_k, symmetry, s)
    path = np.full((canal.shape[0], 2), np.nan)
    for piece in chain:
        path[int(piece_k[piece])] = centres[piece]
    return path, np.flatnonzero(np.isfinite(path[:, 0]))


def _symmetry(bone: BoolArray, centres_ij: FloatArray, ks: NDArray[np.int_], s: float
              ) -> FloatArray:
    """Left–right mirror agreement (IoU) of the bone around each candidate's centre.

    The canal lies on the midline of the bony ring, between two pedicles and in front of
    a spinous process, so the bone around it is nearly mirror-symmetric; a pocket between a
    lamina and a rib head, or a stent graft's lumen beside the spine, is not.
    """
    half = max(2, round(SYMMETRY_HALF_WIDTH_MM / s))
    front, back = (round(m / s) for m in SYMMETRY_DEPTH_MM)
    padded = np.pad(bone, ((0, 0), (front, back), (half, half)))
    out = np.zeros(len(ks))
    for n, ((ci, cj), k) in enumerate(zip(centres_ij, ks, strict=True)):
        i, j = round(ci), round(cj)
        window = padded[k, j:j + front + back + 1, i:i + 2 * half + 1]
        union = np.count_nonzero(window | window[:, ::-1])
        out[n] = np.count_nonzero(window & window[:, ::-1]) / union if union else 0.0
    return out


def _best_chain(candidates: NDArray[np.intp], centres: FloatArray, piece_k: NDArray[np.int_],
                symmetry: FloatArray, s: float) -> list[int]:
    """The chain of pieces, one per slice at most, that best forms a symmetric tube.

    A longest path over the slices (pieces sorted by ``k``): each piece earns its symmetry
    less `SYMMETRY_FLOOR`, a skipped slice costs `GAP_COST`, and a link is allowed only
    between pieces within `TRACK_TOLERANCE_MM` (+ `TRACK_SLOPE` per mm of gap) across at
    most `MAX_GAP_MM`. Why a global path rather than following from a seed: a seed in a
    pocket beside the canal would be followed for the whole column.
    """
    order = np.argsort(piece_k[candidates], kind="stable")
    nodes = candidates[order]
    gain = symmetry[order] - SYMMETRY_FLOOR
    k_of = piece_k[nodes]
    xy = centres[nodes]
    max_gap = max(2, round(MAX_GAP_MM / s))
    best = gain.copy()
    parent = np.full(len(nodes), -1)
    for n in range(len(nodes)):
        lo = np.searchsorted(k_of, k_of[n] - max_gap)
        hi = np.searchsorted(k_of, k_of[n])
        if hi <= lo:
            continue
        gap = (k_of[n] - k_of[lo:hi]).astype(np.float64)
        d = np.linalg.norm(xy[lo:hi] - xy[n], axis=1) * s
        allowed = d <= TRACK_TOLERANCE_MM + TRACK_SLOPE * gap * s
        if not allowed.any():
            continue
        score = np.where(allowed, best[lo:hi] - GAP_COST * (gap - 1) - LINK_COST * d, -np.inf)
        m = int(np.argmax(score))
        if score[m] > 0:
            best[n] = gain[n] + score[m]
            parent[n] = lo + m
    chain = []
    n = int(np.argmax(best))
    while n >= 0:
        chain.append(int(nodes[n]))
        n = int(parent[n])
    return chain[::-1]


def on_every_slice(path: FloatArray) -> tuple[FloatArray, FloatArray]:
    """A centreline (``canal_ij`` or ``body_ij``) as (i, j) on every working slice: linear
    between its known slices, held at its end values beyond them (where a vertebra's bone
    still lies above or below the followed column)."""
    ks = np.arange(path.shape[0])
    known = np.flatnonzero(np.isfinite(path[:, 0]))
    return np.interp(ks, known, path[known, 0]), np.interp(ks, known, path[known, 1])


def _fill_and_smooth(path: FloatArray, known: NDArray[np.intp], s: float) -> FloatArray:
    """Interpolate ``path`` over all slices between its known ones, then smooth it; slices
    outside stay NaN."""
    out = np.full_like(path, np.nan)
    if known.size == 0:
        return out
    first, last = int(known[0]), int(known[-1])
    ks = np.arange(first, last + 1)
    for c in range(2):
        filled = np.interp(ks, known, path[known, c])
        out[first:last + 1, c] = ndimage.gaussian_filter1d(filled, CENTRELINE_SIGMA_MM / s,
                                                           mode="nearest")
    return out


def _carry_body(body_ij: FloatArray, canal_ij: FloatArray, last: int, s: float
                ) -> FloatArray:
    """The body path carried on cranially, at its offset from the canal, over the slices at
    the top of the column where the canal was followed but the body's bone was too faint to
    be found (at most `BODY_CARRY_MM`).

    Why: a porotic body cut by the edge of the scan, blurred once more by resampling, can
    fall below `BODY_MIN_FRACTION` while its canal is still seen (T12 at the top of the
    real abdominal CT resampled to 1 mm); without a body there no disc is found below it,
    and the vertebra is lost. Within a vertebra the body keeps its place in front of the
    canal, so that offset is what is carried. Only cranially: caudally the column ends in
    the sacrum, whose canal turns back away from the bodies.
    """
    out = body_ij.copy()
    known = np.flatnonzero(np.isfinite(body_ij[:, 0]))
    if known.size == 0:
        return out
    end = int(known[-1])
    near = known[end - known < max(1, round(BODY_Z_WINDOW_MM / s))]
    offset = np.mean(body_ij[near] - canal_ij[near], axis=0)
    for k in range(end + 1, min(last, end + round(BODY_CARRY_MM / s)) + 1):
        if np.isfinite(canal_ij[k, 0]):
            out[k] = canal_ij[k] + offset
    return out


def _body_path(bone: BoolArray, hu: Float32Array, canal_ij: FloatArray,
               covered: NDArray[np.intp], s: float) -> tuple[FloatArray, FloatArray]:
    """Per slice (i, j) of the vertebral body's middle, anterior (−j) of the canal, and
    the body's depth (mm) there.

    Along a midline band forwards from the canal, pooled over ±`BODY_Z_WINDOW_MM`: the body
    is the first stretch whose mean HU is above soft tissue (`BODY_FRONT_HU`), or that is
    `BODY_MIN_FRACTION` bone, and it ends where the HU falls to soft tissue for
    `BODY_FRONT_GAP_MM`, or at the stretch's last bone (`BODY_END_FRACTION`, its anterior
    cortex) if that comes first.

    Why HU and not the bone mask: the cancellous interior of a porotic body is mostly below
    `BONE_HU` (10–20 % of its voxels above it on the real abdominal CT), so "the first gap in
    the bone" ended the body just behind its posterior wall on some slices and at its front
    on others: the middle jumped by 20 mm between slices, and the disc profile sampled along
    it found "discs" in the middle of bodies once the grid was turned 5°. On a grid resampled
    twice the cortex itself is blurred below `BONE_HU`. The interior stays above soft tissue
    (fat −100, muscle and unenhanced blood 40–55 HU; a contrast-filled lumen is given
    `SOFT_TISSUE_HU`, and a disc, ~80 HU, continues the column).
    """
    half = max(1, round(BODY_BAND_MM / s))
    zwin = 2 * round(BODY_Z_WINDOW_MM / s) + 1
    pooled = ndimage.uniform_filter1d(bone.astype(np.float32), size=zwin, axis=0)
    pooled_hu = ndimage.uniform_filter1d(hu, size=zwin, axis=0)
    near, far = (round(m / s) for m in BODY_SEARCH_MM)
    front_gap = max(1, round(BODY_FRONT_GAP_MM / s))
    first, last = int(covered[0]), int(covered[-1])
    known = _fill_and_smooth(canal_ij, covered, s)
    out = np.full_like(canal_ij, np.nan)
    depth = np.full(canal_ij.shape[0], np.nan)
    for k in range(first, last + 1):
        ci, cj = known[k]
        i0, i1 = max(0, round(ci) - half), min(bone.shape[2], round(ci) + half + 1)
        j_hi = round(cj) - near
        j_lo = max(0, round(cj) - far)
        if j_hi <= j_lo or i1 <= i0:
            continue
        frac = pooled[k, j_lo:j_hi, i0:i1].mean(axis=1)[::-1]  # from the canal forwards
        band_hu = pooled_hu[k, j_lo:j_hi, i0:i1].mean(axis=1)[::-1]
        start = np.flatnonzero((frac >= BODY_MIN_FRACTION) | (band_hu >= BODY_FRONT_HU))
        if start.size == 0:
            continue
        soft = band_hu[start[0]:] < BODY_FRONT_HU
        # the front: the first run of soft tissue `BODY_FRONT_GAP_MM` long
        run = np.convolve(soft, np.ones(front_gap), mode="valid") >= front_gap
        stop = start[0] + (int(np.argmax(run)) if run.any() else soft.size)
        if stop <= start[0]:
            continue
        # an enhanced liver or bowel wall can follow the body without a fat plane: the front
        # is then its anterior cortex, the last bone of the stretch
        bony = np.flatnonzero(frac[start[0]:stop] >= BODY_END_FRACTION)
        if bony.size:
            stop = min(stop, start[0] + int(bony[-1]) + 1 + front_gap)
        if (stop - start[0]) * s > BODY_DEPTH_MM[1]:
            # something dense lies against the front (a calcified or stented aorta, the
            # crus): no body is this deep, so the front is the deepest dip in between
            lo, hi = (start[0] + round(m / s) for m in BODY_DEPTH_MM)
            stop = lo + int(np.argmin(band_hu[lo:hi]))
        middle = (start[0] + stop - 1) / 2.0
        out[k] = (ci, j_hi - 1 - middle)
        depth[k] = (stop - start[0]) * s
    return out, depth
