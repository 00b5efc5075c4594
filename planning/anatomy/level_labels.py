"""Split the spinal column into vertebrae at the discs, and name them.

Along the body centreline (`spine_column`) the bright part of the HU in a plane across the
body (perpendicular to the spine's axis) dips at every intervertebral disc between two bright
endplates; a matched filter scores that pattern and a dynamic programme keeps the chain of
dips one vertebra's height apart (`planning.anatomy.disc_chain`); where discs are too thin
to dip, a chain of bright endplate bands may be the discs instead, and the pedicles decide
(`find_discs`).
Each stretch between two discs is one vertebral body, and the bone of the column is given to
the bodies by flooding it from them (so a spinous process that hangs down over the level
below stays with the vertebra its lamina joins).

Names come from two cues, cross-checked:

- the sacrum: a segment below the last disc whose bone reaches far laterally (the sacral
  alae joined to the iliac wings) — the vertebra above it is L5;
- the ribs (`planning.anatomy.ribs`): the last rib-bearing vertebra is T12, the first T1.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from skimage.segmentation import watershed

from planning.anatomy.disc_chain import (
    body_profile,
    depth_along,
    disc_slices,
    pair_contrast,
    pedicle_profile,
    spine_axis,
    step_mm,
)
from planning.anatomy.spine_column import SpineColumn, on_every_slice
from planning.plan import LEVEL_NAMES
from planning.volume import FloatArray, Volume

INTERLEAVED = (0.3, 0.7)  # `find_discs`: the bright chain half a vertebra off the dark one
PEDICLE_NEAR_MM = (2.0, 9.0)  # below and above a disc, where its pedicles and foramen lie
MIN_SEGMENT_MM = 8.0  # a stretch at the edge of the scan shorter than this is not a vertebra
BELOW_RADIUS_MM = 12.0  # `_body_bone_below`: the body's core, below the column's end…
BELOW_BONE_FRACTION = 0.3  # …this much of it bone (a porotic body's cortex and trabeculae)
COLUMN_RADIUS_MM = 55.0  # bone farther from the canal than this is not the vertebra's
SEED_RADIUS_MM = 9.0  # the core of each body that seeds the flooding…
SEED_DEPTH_FRACTION = 0.9  # …or, where that core holds under `SEED_MIN_MM3` of bone, this
SEED_MIN_MM3 = 200.0  # much of the body's half depth (its cortex, within reach)
SEED_MARGIN_MM = 2.5  # kept from the disc planes
DISC_RIDGE_MM = 6.0  # half-width of the ridge the flooding crosses last, at each disc plane
SACRUM_REACH_MM = 60.0
SACRUM_MIN_HEIGHT_MM = 15.0
LATERAL_FROM_MM = 40.0
LATERAL_FRONT_MM = 30.0
PELVIS_AREA_MM2 = 1000.0  # iliac wings beside the sacrum, per plane

IntArray = NDArray[np.int32]


@dataclass(frozen=True, eq=False)
class Segment:
    """One vertebra found along the column: working-grid slices ``k`` it spans (body
    centreline), and the cues seen on it."""

    first_k: int
    last_k: int
    lateral_reach_mm: float
    rib: bool | None  # ribs leave it (True), none do although in view (False), unknown (None)
    sacrum: bool
    cut: bool  # at the edge of the followed column: partly out of view


@dataclass(frozen=True, eq=False)
class Naming:
    """Level name per segment (cranial first) and how sure we are."""

    names: list[str]
    confidence: float
    warnings: list[str]


def find_discs(column: SpineColumn, ct: Volume | None = None
               ) -> tuple[FloatArray, NDArray[np.intp]]:
    """The profile positions along the column and the discs' working slices.

    Two chains are sought: dark discs between bright endplates (`disc_contrast`) and bright
    endplate bands (`pair_contrast`). Where they interleave — one through the discs, the
    other half a vertebra off, through the bodies' middles — the pedicles decide: just
    below a disc the next vertebra's pedicles begin, just above it lies the foramen; in the
    middle of a body it is the other way round (`pedicle_profile`). Otherwise the dark chain
    stands (on the labelled CTs the two chains agree or the bright one is a quarter
    vertebra off, at an endplate).
    """
    s = column.grid.spacing_mm
    ks, profile = body_profile(column, ct)
    depth = depth_along(column, ks)
    dark = disc_slices(ks, profile, s, depth)
    bright = disc_slices(ks, profile, s, depth, contrast_of=pair_contrast)
    phase = _phase(dark, bright)
    if phase is None or not INTERLEAVED[0] <= phase <= INTERLEAVED[1]:
        return ks, dark
    pedicles = pedicle_profile(column, ks)
    step = step_mm(ks, s)
    if _pedicles_below(ks, pedicles, bright, step) > _pedicles_below(ks, pedicles, dark, step):
        return ks, bright
    return ks, dark


def _phase(a: NDArray[np.intp], b: NDArray[np.intp]) -> float | None:
    """Where ``b``'s discs lie between ``a``'s, as the median fraction of the way to the
    nearer disc of ``a`` (0 on them, 0.5 half way); None with fewer than two to compare."""
    edges = np.sort(np.asarray(a, dtype=np.float64))
    where = []
    for x in np.asarray(b, dtype=np.float64):
        i = int(np.searchsorted(edges, x))
        if 0 < i < len(edges):
            where.append(min(x - edges[i - 1], edges[i] - x) / (edges[i] - edges[i - 1]))
    return float(np.median(where)) if len(where) >= 2 else None


def _pedicles_below(ks: FloatArray, pedicles: FloatArray, discs: NDArray[np.intp],
                    step: float) -> float:
    """Mean over the discs of the pedicle profile just below each less just above it."""
    near, far = (max(1, round(x / step)) for x in PEDICLE_NEAR_MM)
    out = []
    for k in discs:
        i = int(np.argmin(np.abs(ks - k)))
        below = pedicles[max(0, i - far): max(0, i - near + 1)]
        above = pedicles[i + near: i + far + 1]
        if below.size and above.size:
            out.append(float(below.mean() - above.mean()))
    return float(np.mean(out)) if out else -np.inf


def segments(column: SpineColumn, discs: NDArray[np.intp], ks: FloatArray
             ) -> list[tuple[int, int, bool]]:
    """(first_k, last_k, cut) per vertebra, cranial first, between consecutive discs and
    at both ends beyond the last discs when long enough."""
    s = column.grid.spacing_mm
    bounds = [round(float(ks[0])), *[int(d) for d in discs], round(float(ks[-1]))]
    out = []
    for n in range(len(bounds) - 1):
        lo, hi = bounds[n], bounds[n + 1]
        edge = n == 0 or n == len(bounds) - 2
        below = _body_bone_below(column, lo) if n == 0 else 0
        if edge and (hi - lo + below) * s < MIN_SEGMENT_MM:
            continue
        out.append((lo, hi, edge))
    return out[::-1]  # working k runs towards the head: cranial first


def _body_bone_below(column: SpineColumn, k0: int) -> int:
    """How many working slices below ``k0`` (the column's caudal end) still hold the body's
    bone where the column left it: at least `BELOW_BONE_FRACTION` of a disc of
    `BELOW_RADIUS_MM` around the body centre, held at its end value.

    Why: the column ends where its canal is no longer followed, which in an elderly
    patient's sacrum is where the sacral canal merges with the fatty, sub-70 HU interior of
    S1's body — often a few millimetres below the lumbosacral disc, while the sacrum goes
    on for centimetres. The stretch below the last disc then looked like a sliver at the
    edge of the scan (6 mm on the abdominal CT turned 5° about x), S1 was dropped, the
    sacrum cue fell on L5 and every name above it shifted by one. A sliver at the real edge
    of the scan has no slices below it and is still dropped.
    """
    s = column.grid.spacing_mm
    bi, bj = on_every_slice(column.body_ij)
    shape = column.bone.shape
    r = BELOW_RADIUS_MM / s
    lo_i, hi_i = max(0, int(bi[k0] - r)), min(shape[2], int(bi[k0] + r) + 1)
    lo_j, hi_j = max(0, int(bj[k0] - r)), min(shape[1], int(bj[k0] + r) + 1)
    jj, ii = np.mgrid[lo_j:hi_j, lo_i:hi_i]
    disc = (ii - bi[k0]) ** 2 + (jj - bj[k0]) ** 2 <= r * r
    count = 0
    for k in range(k0 - 1, max(-1, k0 - 1 - round(MIN_SEGMENT_MM / s)), -1):
        if column.bone[k, lo_j:hi_j, lo_i:hi_i][disc].mean() < BELOW_BONE_FRACTION:
            break
        count += 1
    return count


def vertebra_labels(column: SpineColumn, spans: list[tuple[int, int, bool]]
                    ) -> IntArray:
    """Working-grid label map: 1…n per segment (cranial first), flooded through the bone
    of the column from each body's core.

    The segments meet at the disc planes: through the body centre at each disc slice,
    perpendicular to the spine's axis (`spine_axis`), as the discs were found. Why not the
    working grid's axial planes: a spine that leans in the scanner (a kyphotic thoracic
    spine, the lordotic lower lumbar one, a patient lying obliquely) has its discs tilted
    10–30° to them, and an axial cut gives one vertebra's anterior corner to its neighbour;
    the body then looks wedged (VerSe 012's T11, L2 and L3 were graded Genant 2 so).
    """
    s = column.grid.spacing_mm
    shape = column.bone.shape
    ci, cj = on_every_slice(column.canal_ij)
    bi, bj = on_every_slice(column.body_ij)
    _, jj, ii = np.indices((1, shape[1], shape[2]), sparse=True)
    lo_k = max(0, min(a for a, _, _ in spans) - round(20 / s))
    hi_k = min(shape[0], max(b for _, b, _ in spans) + round(20 / s) + 1)
    box = slice(lo_k, hi_k)
    r_col = (COLUMN_RADIUS_MM / s) ** 2
    near_col = ((ii - ci[box, None, None]) ** 2 + (jj - cj[box, None, None]) ** 2) <= r_col
    mask = column.bone[box] & near_col
    mask = ndimage.binary_closing(mask, iterations=1) | mask
    to_body = (ii - bi[box, None, None]) ** 2 + (jj - bj[box, None, None]) ** 2
    at = np.nonzero(mask)  # only the column's bone is flooded: planes are measured there
    points = np.column_stack(at[::-1])
    points[:, 2] += lo_k
    height = _plane_heights(column, spans, points)
    near_body = to_body[at]
    labels = np.zeros(len(at[0]), dtype=np.int32)
    margin = round(SEED_MARGIN_MM / s)
    lo_first = min(a for a, _, _ in spans)
    core = near_body <= (SEED_RADIUS_MM / s) ** 2
    for n, (a, b, edge) in enumerate(spans, start=1):
        slab = (height[a] >= margin) & (height[b] <= -margin)
        if not slab.any():  # a slab thinner than its margins: its middle plane
            slab = np.abs(0.5 * (height[a] + height[b])) <= 0.5
        seeds = core & slab
        if seeds.sum() * s**3 < SEED_MIN_MM3:
            # the interior of a porotic body is mostly below the bone threshold, and a
            # core of bone-free interior seeds nothing (T12, cut by the top of the
            # abdominal CT at 1 mm, was lost so): the core then reaches its cortex
            depth = column.body_depth_mm[a:b + 1]
            half = float(np.nanmedian(depth)) / 2.0 if np.isfinite(depth).any() else 0.0
            r_seed = (max(SEED_RADIUS_MM, SEED_DEPTH_FRACTION * half) / s) ** 2
            seeds = (near_body <= r_seed) & slab
        if edge and a == lo_first:  # the caudal vertebra goes on below the column's end
            # and may be seeded there: a porotic S1 whose canal was lost a few millimetres
            # below its disc
            seeds |= (height[a] < 0) & core
        labels[seeds] = n
    markers = np.zeros(mask.shape, dtype=np.int32)
    markers[at] = labels
    ridge = np.zeros(mask.shape, dtype=np.uint8)
    ridge[at] = _disc_ridge(height, s)
    flooded = watershed(ridge, markers, mask=mask)
    out = np.zeros(shape, dtype=np.int32)
    out[box] = flooded
    return out


def _plane_heights(column: SpineColumn, spans: list[tuple[int, int, bool]],
                   points_ijk: NDArray[np.intp]) -> dict[int, NDArray[np.float32]]:
    """Per span end ``k``: the signed height (voxels, cranial positive) of each working
    point (i, j, k) above the disc plane there.

    The plane passes through the body centre at ``k`` perpendicular to the spine's axis;
    an end without a body centre (the column's first or last slice) keeps the axial plane.
    """
    ks, centre, tangent = spine_axis(column)
    row = {int(k): n for n, k in enumerate(ks)}
    p = points_ijk.astype(np.float32)
    out: dict[int, NDArray[np.float32]] = {}
    for k in sorted({k for a, b, _ in spans for k in (a, b)}):
        n = row.get(k)
        out[k] = (p[:, 2] - k if n is None
                  else (p - centre[n].astype(np.float32)) @ tangent[n].astype(np.float32))
    return out


def _disc_ridge(height: dict[int, NDArray[np.float32]], s: float) -> NDArray[np.uint8]:
    """The flooding's landscape: high on the disc planes, flat within each vertebra's slab.

    Why: on a flat landscape the flooding is a race through connected bone, and at the
    facet joints (bridged at 3 mm) a neighbour's flood could win a vertebra's own pedicles
    (on the real abdominal CT, L1's and L4's pedicles went to their neighbours). With the
    ridge, every slab is flooded from its own body before any flood crosses a disc plane.
    """
    distance_mm = np.min(np.abs(np.stack(list(height.values()))), axis=0) * s
    return np.rint(254.0 * np.clip(1.0 - distance_mm / DISC_RIDGE_MM, 0.0, 1.0)
                   ).astype(np.uint8)


def lateral_reach_mm(column: SpineColumn, labels: IntArray, n: int, span: tuple[int, int]
                     ) -> float:
    """How far from the canal, left or right, bone connected to vertebra ``n`` reaches in its
    posterior half, over its slices (the maximum projection, so a rib leaving obliquely
    still connects)."""
    s = column.grid.spacing_mm
    a, b = span
    slab = column.bone[a:b + 1]
    own = (labels[a:b + 1] == n).any(axis=0)
    if not own.any():
        return 0.0
    projection = slab.any(axis=0) | own
    ci = float(np.nanmean(column.canal_ij[a:b + 1, 0]))
    bj = float(np.nanmean(column.body_ij[a:b + 1, 1]))
    front = max(0, int(np.floor(bj)))
    projection[:front, :] = False  # anterior of the body's middle: aorta, sternum, bowel
    lab, _ = ndimage.label(projection)
    keep = np.unique(lab[own & projection])
    keep = keep[keep > 0]
    if keep.size == 0:
        return 0.0
    connected = np.isin(lab, keep)
    _, ii = np.nonzero(connected)
    return float(np.abs(ii - ci).max() * s)


LANDMARKS = ("the sacrum", "the last rib", "the first rib")  # trusted in this order


def name_levels(found: list[Segment]) -> Naming:
    """Names for the segments (cranial first), counted from every landmark in view.

    - the sacrum (S1, the last segment joined to the ilia);
    - the last rib: the lowest rib-bearing vertebra with a rib-free one in view below it is
      T12;
    - the first rib: the highest rib-bearing vertebra with a rib-free one in view above it
      and ribs on the two below it is T1 (C7 bears none).

    Cues that agree give full confidence; one cue gives 0.7; a disagreement (a transitional
    vertebra, 11 or 13 rib pairs, a missed disc) 0.5 with its words. With no cue the names
    are a guess (0.3): ribs on every vertebra make them thoracic, none make them lumbar.
    Below `LOW_NAME_CONFIDENCE` the window, the report and the SR call the names uncertain.

    A vertebra cut by the scan's edge shows no absence of ribs: its rib may leave it beyond
    the edge (a chest CT whose bottom slices hold the top 12 mm of a thoracic vertebra
    showed no rib there, and would have been named T12 … L1 from that fragment).
    """
    found = [dataclasses.replace(seg, rib=None) if seg.cut and seg.rib is False else seg
             for seg in found]
    n = len(found)
    sacrum, last_rib, first_rib = LANDMARKS
    anchors: dict[str, int] = {}  # landmark → index (in LEVEL_NAMES) of the first segment
    if n and found[-1].sacrum:
        anchors[sacrum] = LEVEL_NAMES.index("S1") - (n - 1)
    ribbed = _rib_cage(found)
    if ribbed:
        last = ribbed[-1]
        if last + 1 < n and found[last + 1].rib is False and not found[last + 1].sacrum:
            anchors[last_rib] = LEVEL_NAMES.index("T12") - last
        first = ribbed[0]
        if (first > 0 and found[first - 1].rib is False
                and all(m < n and found[m].rib is True for m in (first + 1, first + 2))):
            anchors[first_rib] = LEVEL_NAMES.index("T1") - first
    warnings: list[str] = []
    starts = sorted(set(anchors.values()))
    if len(anchors) >= 2 and len(starts) == 1:
        first_index, confidence = starts[0], 1.0
    elif anchors:
        trusted = next(c for c in LANDMARKS if c in anchors)  # in the order they are trusted
        first_index = anchors[trusted]
        if len(starts) > 1:
            confidence = 0.5
            told = ", ".join(f"{cue} makes the top vertebra {_name_at(start)}"
                             for cue, start in anchors.items())
            warnings.append(f"The landmarks disagree on the level names ({told}): a "
                            "transitional vertebra, 11 or 13 rib pairs, or a missed disc? "
                            f"{trusted[0].upper()}{trusted[1:]} was followed; the names are "
                            "uncertain: count the levels on the images and shift them if "
                            "needed.")
        else:
            confidence = 0.7
            others = [c for c in LANDMARKS if c not in anchors]
            warnings.append(f"The levels were counted from {trusted} alone ({_none_of(others)}"
                            " in view to cross-check). Check the level names.")
    elif ribbed and all(seg.rib is not False for seg in found):
        # none is proven rib-free, so none is named lumbar: the lowest in view is T12 (a
        # vertebra below the last rib seen, whose rib zone is out of view, may bear one)
        first_index, confidence = LEVEL_NAMES.index("T12") - (n - 1), 0.3
        warnings.append("Ribs are seen on these vertebrae, but neither the first rib (T1), "
                        "nor the last rib (T12), nor the sacrum is in view: the level names "
                        "are uncertain (the lowest vertebra in view was taken as T12); "
                        "count the levels on the images and shift them if needed.")
    else:
        first_index, confidence = LEVEL_NAMES.index("L5") - (n - 1), 0.3
        warnings.append("Neither the sacrum nor the first or last rib is in view: the level "
                        "names are uncertain (the lowest vertebra was taken as L5); count "
                        "the levels on the images and shift them if needed.")
    first_index = max(0, min(first_index, len(LEVEL_NAMES) - n))
    names = [LEVEL_NAMES[first_index + m] for m in range(n)]
    if confidence > 0.5:
        doubt = _contradictions(found, names)
        if doubt:
            confidence = 0.5
            warnings.append(f"{doubt[0].upper()}{doubt[1:]}; the level names are uncertain: "
                            "count the levels on "
                            "the images and shift them if needed.")
    return Naming(names, confidence, warnings)


SHORT_SEGMENT = 0.7  # a whole vertebra this much shorter than its neighbours: half of one?


def _contradictions(found: list[Segment], names: list[str]) -> str:
    """What in the image contradicts the names counted from a landmark, in words, or "".

    Why: a count from one landmark is only as good as the vertebrae counted. A vertebra
    split in two, or two taken as one, shifts every name beyond it, and the landmark at the
    other end cannot tell. Two cues can: a vertebra named thoracic that no rib leaves
    (while the rib zone is in view), one named lumbar or cervical that a rib leaves, and a
    vertebra much shorter than both its neighbours (a split).
    """
    for seg, name in zip(found, names, strict=True):
        if name.startswith("T") and seg.rib is False:
            return f"the vertebra named {name} bears no rib"
        if name.startswith(("L", "C")) and seg.rib is True:
            return f"a rib leaves the vertebra named {name}"
    heights = [seg.last_k - seg.first_k for seg in found]
    for m in range(1, len(found) - 1):
        if found[m].cut or found[m - 1].cut or found[m + 1].cut:
            continue
        if heights[m] < SHORT_SEGMENT * min(heights[m - 1], heights[m + 1]):
            return (f"the vertebra named {names[m]} is much shorter than both its neighbours "
                    "(a vertebra split in two?)")
    return ""


def _rib_cage(found: list[Segment]) -> list[int]:
    """The rib-bearing vertebrae: the first run of them from the top, and no further.

    Why: the ribs leave twelve consecutive vertebrae; "ribs" on a vertebra below a
    rib-free one are an iliac crest beside L4–S1 (on an oblique grid the crest can join
    the root zone of the last vertebra in view), never a rib.
    """
    out: list[int] = []
    for m, seg in enumerate(found):
        if seg.rib is True:
            out.append(m)
        elif seg.rib is False and out:
            break
    return out


def _name_at(index: int) -> str:
    return LEVEL_NAMES[index] if 0 <= index < len(LEVEL_NAMES) else "beyond C1–S1"


def _none_of(cues: list[str]) -> str:
    return "neither " + " nor ".join(cues) if len(cues) > 1 else f"not {cues[0]}"


def lateral_bone_area_mm2(column: SpineColumn, span: tuple[int, int]) -> float:
    """Mean bone area per slice lateral to the vertebra (`LATERAL_FROM_MM` or more from the
    canal, not far in front of the body) over the slices of ``span``.

    Why: reach alone cannot tell a sacrum from a rib-bearing vertebra, but the iliac wings
    beside the sacrum cut each plane over ~20–40 cm² of bone, a few ribs over less than 10.
    """
    s = column.grid.spacing_mm
    a, b = span
    ci = float(np.nanmean(column.canal_ij[a:b + 1, 0]))
    bj = float(np.nanmean(column.body_ij[a:b + 1, 1]))
    slab = column.bone[a:b + 1].copy()
    i = np.arange(slab.shape[2])
    slab[:, :, np.abs(i - ci) * s < LATERAL_FROM_MM] = False
    slab[:, : max(0, int(bj - LATERAL_FRONT_MM / s)), :] = False
    return float(slab.sum(axis=(1, 2)).mean() * s * s)
