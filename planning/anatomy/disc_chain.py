"""The profiles along the spinal column in which the discs show, and the chain of discs.

Why apart from `planning.anatomy.level_labels` (which cuts the column into vertebrae and
names them): finding the discs is signal processing along one line — the HU of planes
across the body, the bone beside the canal, a matched filter and a dynamic programme — and
can be tuned and tested on its own (`tests/planning/anatomy/test_disc_chain.py`).

Along the body centreline (`spine_column`) the bright part of the HU in a plane across the
body (perpendicular to the spine's axis, `spine_axis`) dips at every intervertebral disc
between two bright endplates (`body_profile`); a matched filter scores that pattern
(`disc_contrast`) and a dynamic programme keeps the chain of dips one vertebra's height apart
(`disc_slices`). Where discs are too thin to dip, a chain of bright endplate bands
(`pair_contrast`) may be the discs instead, and the pedicles (`pedicle_profile`) decide
(`level_labels.find_discs`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from planning.anatomy.spine_column import SpineColumn, on_every_slice
from planning.volume import FloatArray, Volume

PROFILE_RADIUS_MM = 14.0  # reaches the body's cortical ring, which the disc lacks
PROFILE_PERCENTILE = 80.0  # the ring and endplates, robust to a centreline a bit off
PROFILE_CLIP_HU = (-100.0, 700.0)  # a calcified aorta or a screw does not swamp the mean
PROFILE_SIGMA_MM = 1.0
PROFILE_STEP_MM = 1.0  # along the column and across the ROI, when the CT is this fine
PAIR_REACH_MM = 6.0  # `pair_contrast`: the two endplates of a disc, at most this either side
PAIR_BODY_MM = (8.0, 13.0)  # …and the bodies beside them, this far from the plane
PEDICLE_LATERAL_MM = (6.0, 18.0)  # `pedicle_profile`: beside the canal's centre…
PEDICLE_AP_MM = 4.0  # …within this of it, front to back
AXIS_SIGMA_MM = 15.0
ENDPLATE_REACH_MM = 9.0  # disc centre to the endplates' brightest plane, lumbar discs
MIN_DISC_CONTRAST_HU = 10.0
DISC_SPACING_MM = (17.0, 46.0)  # between consecutive discs: one vertebra's height
DISC_COST_FRACTION = 0.3
SPACING_CHANGE_COST = 2.0
SHORT_LINK_RATIO = 0.6  # of the body's depth: shorter disc-to-disc links cost (`disc_slices`)
SHORT_LINK_COST = 3.0
DEPTH_WINDOW_MM = 60.0


def body_profile(column: SpineColumn, ct: Volume | None = None
                 ) -> tuple[FloatArray, FloatArray]:
    """Positions along the column (working slices, fractional) and the bright part of the HU
    over a disc across the body, in the plane perpendicular to the spine's axis there.

    Why perpendicular: the lower lumbar discs tilt by up to 40°, and an axial disc of ROI
    would average a disc with the endplates around it. The ROI (`PROFILE_RADIUS_MM`) stays
    inside the body and the disc, so each plane is either bone or disc.

    With ``ct``, the planes are sampled from the CT itself every `PROFILE_STEP_MM` where it
    is finer than the working grid. Why: a thoracic disc is 3–5 mm high, and on the 2 mm
    working grid it is a notch of 20–30 HU between its endplates, shallower than the dark
    middle of a porotic body; on VerSe 012 the chain ran through the middles of T10–T12,
    8 mm below every disc.
    """
    s = column.grid.spacing_mm
    ks = spine_axis(column)[0]
    step = min(s, PROFILE_STEP_MM) if ct is not None else s
    pos = np.arange(float(ks[0]), float(ks[-1]) + 1e-9, step / s)
    centre, across, depth = _planes_across(column, pos)
    r = PROFILE_RADIUS_MM / step
    grid = np.arange(-np.floor(r), np.floor(r) + 1)
    a, b = (x.ravel() for x in np.meshgrid(grid, grid))
    inside = a * a + b * b <= r * r
    a, b = a[inside] * step / s, b[inside] * step / s  # working voxels
    points = (centre[:, None, :] + a[None, :, None] * across[:, None, :]
              + b[None, :, None] * depth[:, None, :]).reshape(-1, 3)  # working (i, j, k)
    blood = column.vessels.lumen | column.vessels.wall_calcium
    source: NDArray[np.generic] = column.grid.hu
    src_points = points
    if ct is not None:
        to_ct = np.linalg.inv(ct.affine_lps) @ column.grid.affine_lps
        source, src_points = ct.array, points @ to_ct[:3, :3].T + to_ct[:3, 3]
    values = np.clip(ndimage.map_coordinates(
        source, [src_points[:, 2], src_points[:, 1], src_points[:, 0]], order=1,
        mode="nearest", output=np.float32), *PROFILE_CLIP_HU)
    if blood.any():  # a contrast-filled aorta beside the body is not its cortex
        in_blood = ndimage.map_coordinates(blood, [points[:, 2], points[:, 1], points[:, 0]],
                                           order=0, mode="nearest").astype(bool)
        values[in_blood] = PROFILE_CLIP_HU[0]
    profile = np.percentile(values.reshape(len(pos), len(a)), PROFILE_PERCENTILE, axis=1)
    return pos, ndimage.gaussian_filter1d(profile, PROFILE_SIGMA_MM / step)


def _planes_across(column: SpineColumn, pos: FloatArray
                   ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """At (fractional) working slices ``pos``: the body centre (working (i, j, k)) and the
    left–right and front–back unit directions of the plane perpendicular to the spine's
    axis (`spine_axis`, interpolated) there."""
    ks, centre, tangent = spine_axis(column)
    centre = np.column_stack([np.interp(pos, ks, centre[:, d]) for d in range(3)])
    tangent = np.column_stack([np.interp(pos, ks, tangent[:, d]) for d in range(3)])
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    across = np.array([1.0, 0.0, 0.0]) - tangent[:, :1] * tangent  # left–right in the plane
    across /= np.linalg.norm(across, axis=1, keepdims=True)
    return centre, across, np.cross(tangent, across)


def step_mm(ks: FloatArray, s: float) -> float:
    """mm between the profile's samples at working slices ``ks`` (grid spacing ``s``)."""
    return float(ks[1] - ks[0]) * s if len(ks) > 1 else s


def depth_along(column: SpineColumn, ks: FloatArray) -> FloatArray:
    """`SpineColumn.body_depth_mm` at (fractional) working slices ``ks``."""
    k = np.clip(np.rint(ks).astype(np.intp), 0, len(column.body_depth_mm) - 1)
    return np.asarray(column.body_depth_mm[k], dtype=np.float64)


def spine_axis(column: SpineColumn) -> tuple[NDArray[np.intp], FloatArray, FloatArray]:
    """Slices with a body, the body centre there and the spine's unit axis (both as working
    (i, j, k) indices; the axis points cranially).

    The body centreline wiggles by a few mm from body to disc; the axis, smoothed over
    `AXIS_SIGMA_MM`, does not. The plane through a centre perpendicular to the axis is the
    plane a disc there lies in (`body_profile`, `vertebra_labels`).
    """
    s = column.grid.spacing_mm
    ks = np.flatnonzero(np.isfinite(column.body_ij[:, 0]))
    centre = np.column_stack([column.body_ij[ks, 0], column.body_ij[ks, 1],
                              ks.astype(np.float64)])
    axis = ndimage.gaussian_filter1d(centre, AXIS_SIGMA_MM / s, axis=0, mode="nearest")
    tangent = np.gradient(axis, axis=0) if len(ks) > 1 else np.array([[0.0, 0.0, 1.0]])
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    return ks, centre, tangent


def disc_contrast(profile: FloatArray, s: float) -> FloatArray:
    """How much darker each plane is than the brighter planes on *both* sides within
    `ENDPLATE_REACH_MM`: a matched filter for the bright–dark–bright of endplate, disc,
    endplate. The middle of a body, dark between its endplates too, has them too far away
    to score, so this is what tells a disc from a porotic body."""
    w = max(1, round(ENDPLATE_REACH_MM / s))
    padded = np.pad(profile, w, mode="edge")
    n = len(profile)
    above = np.max([padded[w + 1 + d: w + 1 + d + n] for d in range(w)], axis=0)
    below = np.max([padded[w - 1 - d: w - 1 - d + n] for d in range(w)], axis=0)
    return np.maximum(np.minimum(above, below) - profile, 0.0)


def disc_slices(ks: FloatArray, profile: FloatArray, s: float,
                depth_mm: FloatArray | None = None,
                contrast_of: Callable[[FloatArray, float], FloatArray] | None = None
                ) -> NDArray[np.intp]:
    """Working-grid slices of the discs: the best chain of contrast peaks along the
    profile sampled at (evenly spaced, possibly fractional) working slices ``ks``.

    A dynamic programme over the local maxima of `disc_contrast`: consecutive discs must be
    `DISC_SPACING_MM` apart (a vertebra's height, thoracic ~20–30 mm, lumbar ~27–40 mm);
    each disc earns its contrast less a cost of `DISC_COST_FRACTION` of a typical disc's, and
    a change of spacing between neighbours costs too (vertebral heights change slowly). So
    a shallow dip in the middle of a body, which would split a vertebra in two halves of
    odd spacing, is not worth taking, while a faint thoracic disc at the right place is.
    Stretches at either end longer than a vertebra cost a disc each (`_missed`): a faint
    disc near the end of the scan must still be found.

    ``depth_mm`` (the body's depth per slice of ``ks``, `SpineColumn.body_depth_mm`) scales
    what "one vertebra's height" is: disc to disc, a vertebra is about as high as its body
    is deep (0.9–1.2 × from C3 to L5; the depth as measured, pooled over ±10 mm, runs some
    10 mm deeper than the body). A link shorter than `SHORT_LINK_RATIO` × that depth costs
    in proportion (at 0.75 the painted abdomen's last lumbar link, 32 mm against a measured
    48 mm, was skipped). Why: in a porotic body the middle is as dark between its endplates
    as a disc is, and a chain through every body's middle as well as every disc — half a
    vertebra apart, evenly — paid no spacing-change cost; it split every vertebra of the
    abdominal CT on grids turned 10–25°. A crushed vertebra is one short link, which pays
    little; a whole chain of halves pays at every link.

    ``contrast_of`` scores the planes (default `disc_contrast`, a dark disc between bright
    endplates; `pair_contrast` scores thin discs that show as one bright band).
    """
    ks = np.asarray(ks, dtype=np.float64)
    step = step_mm(ks, s)
    contrast = (contrast_of or disc_contrast)(profile, step)
    from scipy.signal import find_peaks  # here: scipy.signal costs 0.5 s to import

    peaks, _ = find_peaks(contrast, height=MIN_DISC_CONTRAST_HU)
    if peaks.size == 0:
        return np.empty(0, dtype=np.intp)
    typical = float(np.percentile(contrast[peaks], 75))
    gain = contrast[peaks] - DISC_COST_FRACTION * typical
    z = ks[peaks].astype(np.float64) * s
    lo, hi = DISC_SPACING_MM
    # a chain that leaves more than a vertebra's height of spine before its first or after
    # its last disc has missed one there: each such stretch costs a typical disc
    start = z - float(ks[0]) * s
    end = float(ks[-1]) * s - z
    best = gain - typical * _missed(start, hi)
    parent = np.full(len(peaks), -1)
    spacing = np.zeros(len(peaks))
    depth = _local_depth(depth_mm, step)[peaks] if depth_mm is not None else None
    for n in range(len(peaks)):
        for m in range(n):
            d = z[n] - z[m]
            if not lo <= d <= hi:
                continue
            change = abs(d - spacing[m]) / max(d, spacing[m]) if parent[m] >= 0 else 0.0
            score = best[m] + gain[n] - SPACING_CHANGE_COST * typical * change
            if depth is not None:
                expected = SHORT_LINK_RATIO * 0.5 * (depth[n] + depth[m])
                score -= SHORT_LINK_COST * typical * max(0.0, 1.0 - d / expected)
            if score > best[n]:
                best[n], parent[n], spacing[n] = score, m, d
    chain = []
    n = int(np.argmax(best - typical * _missed(end, hi)))
    while n >= 0:
        chain.append(int(peaks[n]))
        n = int(parent[n])
    return np.asarray(np.rint(ks[np.asarray(chain[::-1], dtype=np.intp)]), dtype=np.intp)


def _local_depth(depth_mm: FloatArray, s: float) -> FloatArray:
    """The body depth per slice as the vertebra's scale: a running median over
    `DEPTH_WINDOW_MM` (a depth is measured on every slice, across discs too), gaps filled;
    NaN-free. Zero where none was measured at all (then nothing is short)."""
    known = np.isfinite(depth_mm)
    if not known.any():
        return np.zeros_like(depth_mm)
    filled = np.interp(np.arange(depth_mm.size), np.flatnonzero(known), depth_mm[known])
    size = max(1, 2 * round(DEPTH_WINDOW_MM / (2 * s)) + 1)
    return np.asarray(ndimage.median_filter(filled, size=size, mode="nearest"))


def pair_contrast(profile: FloatArray, s: float) -> FloatArray:
    """How much brighter the endplates at each plane are than the bodies on either side: the
    brighter of two planes within `PAIR_REACH_MM` on both sides (one plane when the pair is
    unresolved) less the brighter of the mean of the planes `PAIR_BODY_MM` above and below.

    Why: a thoracic disc 1–3 mm high between dense endplates (the contrast thorax CT) is
    unresolved on a 1.5 mm CT; the two endplates and the disc make one bright band, and the
    darkest planes are the middles of the bodies, which `disc_contrast` then takes for discs
    (every vertebra cut in half). This detector sees the band; `find_discs` decides which of
    the two chains is the discs.
    """
    n = len(profile)
    reach = max(0, round(PAIR_REACH_MM / s))
    near, far = (max(1, round(x / s)) for x in PAIR_BODY_MM)
    pad = max(reach, far) + 1
    edge = np.pad(profile, pad, mode="edge")
    none = np.pad(np.asarray(profile, dtype=np.float64), pad, constant_values=np.nan)
    at = np.arange(n) + pad
    pair = np.max([np.minimum(edge[at - d], edge[at + d]) for d in range(reach + 1)], axis=0)
    bodies = []
    for sign in (-1, 1):  # beyond the scan's end only the other side counts
        planes = np.array([none[at + sign * d] for d in range(near, far + 1)])
        count = np.isfinite(planes).sum(axis=0)
        mean = np.where(count > 0, np.nansum(planes, axis=0) / np.maximum(count, 1), np.nan)
        bodies.append(mean)
    body = np.fmax(bodies[0], bodies[1])
    body = np.where(np.isnan(body), profile, body)
    return np.asarray(np.maximum(pair - body, 0.0))


def pedicle_profile(column: SpineColumn, ks: FloatArray) -> FloatArray:
    """Per profile position (working slices ``ks``): the fraction of bone beside the canal,
    `PEDICLE_LATERAL_MM` out on both sides and within `PEDICLE_AP_MM` of its centre, in the
    plane perpendicular to the spine's axis. High at the pedicles, low at the foramina."""
    s = column.grid.spacing_mm
    ci, cj = on_every_slice(column.canal_ij)
    k = np.asarray(ks, dtype=np.float64)
    _, across, ap = _planes_across(column, k)
    slices = np.arange(len(ci), dtype=np.float64)
    centre = np.column_stack([np.interp(k, slices, ci), np.interp(k, slices, cj), k])
    lateral = np.arange(PEDICLE_LATERAL_MM[0], PEDICLE_LATERAL_MM[1] + 1e-9, 1.0) / s
    forward = np.arange(-PEDICLE_AP_MM, PEDICLE_AP_MM + 1e-9, 1.0) / s
    lat, fwd = (x.ravel() for x in np.meshgrid(np.r_[-lateral, lateral], forward,
                                                indexing="ij"))
    points = (centre[:, None, :] + lat[None, :, None] * across[:, None, :]
              + fwd[None, :, None] * ap[:, None, :]).reshape(-1, 3)
    bone = ndimage.map_coordinates(column.bone.astype(np.float32),
                                   [points[:, 2], points[:, 1], points[:, 0]], order=1,
                                   mode="constant")
    return np.asarray(bone.reshape(len(k), -1).mean(axis=1), dtype=np.float64)


def _missed(gap_mm: FloatArray, max_spacing_mm: float) -> FloatArray:
    """How many discs at least must lie in a stretch of spine this long with no disc."""
    return np.maximum(0.0, np.ceil(gap_mm / max_spacing_mm) - 1.0)
