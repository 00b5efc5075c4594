"""`Anatomy` from an imported label map (TotalSegmentator, VerSe, or a user's own table).

The label map may lie on any grid — another spacing, orientation or origin than the CT's.
It is brought onto the CT's grid through LPS (CT index → LPS → label index, nearest
neighbour), never by assuming the two arrays share an order, and only over the spine's
bounding box, so that a 512 × 512 × 300 map stays cheap. Everything is then cropped to the
vertebrae plus `CROP_MARGIN_MM`.

The canal is the table's canal label when it has one (the demo), else it is derived from
the vertebrae (`canal_from_vertebrae`), helped by the spinal cord label when present.

Policies (each reported in ``Anatomy.warnings``):

- a vertebra on the edge of the scan with less than `PARTIAL_FRACTION` of its neighbour's
  volume (TotalSegmentator's T11 in this lumbar CT: 2 cm³ of it) is not a level and its
  code is removed from ``labels``, but its bone still shapes the canal;
- transitional vertebrae (L6, T13) are handled the same way (see `label_tables`);
- where the canal in view does not reach a vertebra (the sacrum below its end), that
  vertebra's axes are approximate and its ``confidence`` is 0.5 (1.0 otherwise);
- an optional body map (TotalSegmentator "vertebrae_body": 1 = bodies, 2 = discs) gives the
  bodies and discs; without it the body is the part of each vertebra anterior to the canal.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from planning.anatomy.canal_from_vertebrae import (
    CanalEstimate,
    centreline_of,
    derive_canal,
)
from planning.anatomy.frames import VertebraVoxels, vertebra_geometries
from planning.anatomy.label_tables import LabelTable
from planning.anatomy.model import Anatomy, crop_affine
from planning.errors import VertebroPlanError
from planning.plan import level_index
from planning.progress import Progress, no_progress
from planning.volume import FloatArray, Volume, kji_transform

CROP_MARGIN_MM = 20.0
BBOX_STRIDE_MM = 3.0
AXIS_ALIGNED_TOLERANCE = 1e-6
PARTIAL_FRACTION = 0.3
MOSTLY_INTERPOLATED = 0.15  # warn when the bony ring closed on fewer slices than this
BODY_MAP_BODY = 1
BODY_MAP_DISC = 2

Box = tuple[slice, slice, slice]
Int16Array = NDArray[np.int16]
BoolArray = NDArray[np.bool_]


class LabelMapError(VertebroPlanError, ValueError):
    """A label map cannot give the anatomy: no vertebrae of its table, or not on this CT."""


def anatomy_from_label_map(ct: Volume, labels: Volume, table: LabelTable,
                           progress: Progress | None = None, *,
                           bodies: Volume | None = None,
                           canal: Volume | None = None) -> Anatomy:
    """Canal, vertebrae, bodies and local frames from a vertebra label map on (or near) ``ct``.

    Parameters
    ----------
    ct
        The CT the anatomy belongs to; the result lies on a crop of its grid.
    labels
        Vertebra label map (whole vertebrae), on any grid that overlaps the CT.
    table
        What its codes mean.
    progress
        Reported between stages; may raise `Cancelled`.
    bodies
        Optional body map on any grid: 1 = vertebral bodies, 2 = intervertebral discs.
    canal
        Optional canal mask (non-zero = canal) on any grid, found by the caller: used
        instead of deriving the canal from the labels. The automatic anatomy finds its canal
        on an LPS-aligned copy of a tilted CT (see `anatomy_from_ct`).
    """
    progress = progress or no_progress()
    name = _source_name(labels, table)
    progress.report(0, 4, "Placing the labels on the CT")
    box, crop, vertebra = _spine_on_ct(ct, labels, table, name)
    affine = crop_affine(ct.affine_lps, box)
    counts = _code_counts(crop)
    warnings = [note for code, note in table.notes.items() if counts[code & 0xFFFF]]
    body_map = _body_map(bodies, ct, box, crop.shape, warnings)

    progress.report(1, 4, "Finding the spinal canal")
    if canal is not None:
        given = _resample(canal, ct, box, crop.shape) != 0
        canal_mask, centreline = given & ~vertebra, centreline_of(given, affine)
    else:
        canal_mask, centreline = _canal(crop, vertebra, affine, table, name, warnings)
    if body_map is not None:
        canal_mask &= body_map != BODY_MAP_BODY

    progress.report(2, 4, "Vertebral bodies and local axes")
    levels = _levels_present(counts, _codes_on_edge(crop, box, ct), table, affine, warnings)
    where = _voxels_by_code(crop, [code for _, code in levels])
    voxels = [_vertebra_voxels(where[code], crop.shape, level, code, affine, body_map)
              for level, code in levels]
    canal_lps = _points_lps(np.flatnonzero(canal_mask), crop.shape, affine)
    geometries, split_bodies, frame_warnings = vertebra_geometries(voxels, canal_lps,
                                                                   centreline)
    warnings += frame_warnings

    progress.report(3, 4, "Assembling the anatomy")
    kept = np.zeros(crop.shape, dtype=np.int16)
    body_mask = (body_map == BODY_MAP_BODY if body_map is not None
                 else np.zeros(crop.shape, dtype=bool))
    for (_, code), in_body in zip(levels, split_bodies, strict=True):
        kept.flat[where[code]] = code
        body_mask.flat[where[code][in_body]] = True  # empty where the body map gave it
    anatomy = Anatomy(affine_lps=affine, labels=kept, canal=canal_mask, bodies=body_mask,
                      levels={g.name: g for g in geometries},
                      discs=_discs(crop, table, body_map), source=name, warnings=warnings)
    progress.report(4, 4, "Anatomy ready")
    return anatomy


COUNT_CHUNK = 1 << 20  # voxels counted at a time (see `_code_counts`)


def _code_counts(crop: Int16Array) -> NDArray[np.int64]:
    """Voxels per label code (index = code as uint16).

    Why in chunks: `np.bincount` converts its input to 64-bit integers first; on a
    512 × 512 × 300 CT's crop that is a fresh 200 MB array whose first touch cost 0.6–0.8 s,
    against 0.05 s for the counting itself.
    """
    flat = crop.view(np.uint16).ravel()
    counts = np.zeros(65536, dtype=np.int64)
    for start in range(0, flat.size, COUNT_CHUNK):
        counts += np.bincount(flat[start:start + COUNT_CHUNK], minlength=65536)
    return counts


def _spine_on_ct(ct: Volume, labels: Volume, table: LabelTable, name: str
                 ) -> tuple[Box, Int16Array, BoolArray]:
    """The CT-grid box of the vertebrae plus `CROP_MARGIN_MM`, the label codes on it and
    the vertebra mask (all vertebrae, named or not)."""
    box, crop = _labels_on_ct(ct, labels, table.vertebra_codes, name)
    vertebra = _isin(crop, table.vertebra_codes)
    if not vertebra.any():
        raise LabelMapError(f"{name} does not overlap the CT: none of its vertebrae lies "
                            "within the CT's field of view.")
    margin = [int(np.ceil(CROP_MARGIN_MM / s)) for s in ct.spacing_mm[::-1]]
    inner = _bounding_box(vertebra, margin)
    return _compose(box, inner), np.ascontiguousarray(crop[inner]), vertebra[inner]


def _body_map(bodies: Volume | None, ct: Volume, box: Box, shape: tuple[int, ...],
              warnings: list[str]) -> Int16Array | None:
    """The body map on the crop, or None when there is none or it has no body here."""
    if bodies is None:
        return None
    body_map = _resample(bodies, ct, box, shape)
    if not (body_map == BODY_MAP_BODY).any():
        where = f"'{bodies.source}'" if bodies.source else "The body map"
        warnings.append(f"{where} has no vertebral body (label {BODY_MAP_BODY}) on this CT's "
                        "spine; the bodies are split off at the canal instead.")
        return None
    return body_map


def _discs(crop: Int16Array, table: LabelTable, body_map: Int16Array | None
           ) -> BoolArray | None:
    """Discs from the body map and/or the label table, None when neither knows them."""
    discs = _isin(crop, table.disc_codes) if table.disc_codes else None
    if body_map is not None:
        from_map = body_map == BODY_MAP_DISC
        discs = from_map if discs is None else discs | from_map
    return discs


# ---- placing the label map on the CT grid ----------------------------------------------
def labels_on_ct_grid(ct: Volume, labels: Volume, codes: frozenset[int]) -> tuple[Box, Int16Array]:
    """The CT-grid box ([k, j, i] slices) around the vertebrae of a label map on any grid,
    and the label codes resampled (nearest) into it."""
    return _labels_on_ct(ct, labels, codes, labels.source or "the label map")


def _labels_on_ct(ct: Volume, labels: Volume, codes: frozenset[int], name: str
                  ) -> tuple[Box, Int16Array]:
    """The CT-grid box around the labelled spine and the label codes resampled into it."""
    lab_box = _vertebra_box(labels, codes)
    if lab_box is None:
        present = np.unique(labels.array)
        shown = ", ".join(str(int(c)) for c in present[present != 0][:12]) or "none"
        raise LabelMapError(f"{name} holds none of the vertebra codes of the label table "
                            f"(codes present: {shown}). Is it the right table?")
    ct_box = _ct_box_of(ct, labels, lab_box, name)
    shape = tuple(s.stop - s.start for s in ct_box)
    if _same_grid(ct, labels):
        return ct_box, np.ascontiguousarray(labels.array[ct_box])
    return ct_box, _resample(labels, ct, ct_box, shape, lab_box)


def _vertebra_box(labels: Volume, codes: frozenset[int]) -> Box | None:
    """Bounding box (label grid, ``[k, j, i]``) of the vertebra codes, or None if absent.

    Why in two passes: a 512 × 512 × 300 map is 80 million voxels. The first pass looks at
    every voxel at most ``BBOX_STRIDE_MM`` apart (a vertebra cannot hide between them), the
    second, exact, only inside the first box grown by one stride.
    """
    array = labels.array
    stride = [max(1, int(BBOX_STRIDE_MM // s)) for s in labels.spacing_mm[::-1]]
    coarse = _in_code_range(array[::stride[0], ::stride[1], ::stride[2]], codes)
    if coarse.any():
        box = _bounding_box(coarse, [1, 1, 1])
        box = (slice(box[0].start * stride[0], box[0].stop * stride[0]),
               slice(box[1].start * stride[1], box[1].stop * stride[1]),
               slice(box[2].start * stride[2], box[2].stop * stride[2]))
    else:  # only slivers: look at every voxel
        box = (slice(0, array.shape[0]), slice(0, array.shape[1]), slice(0, array.shape[2]))
    exact = _isin(array[box], codes)
    if not exact.any():
        return None
    inner = _bounding_box(exact, [1, 1, 1])
    return _compose(box, inner)


def _same_grid(a: Volume, b: Volume) -> bool:
    return a.array.shape == b.array.shape and np.allclose(a.affine_lps, b.affine_lps, atol=1e-4)


def _ct_box_of(ct: Volume, labels: Volume, lab_box: Box, name: str) -> Box:
    """The CT-grid box that holds ``lab_box`` of the label grid plus the crop margin."""
    lo = [s.start - 0.5 for s in lab_box[::-1]]  # i, j, k
    hi = [s.stop - 0.5 for s in lab_box[::-1]]
    corners_ijk = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])
                            for z in (lo[2], hi[2])])
    ct_ijk = ct.to_index(labels.to_lps(corners_ijk))
    margin = CROP_MARGIN_MM / ct.spacing_mm
    first = np.floor(ct_ijk.min(axis=0) - margin).astype(int)
    last = np.ceil(ct_ijk.max(axis=0) + margin).astype(int)
    size = np.array(ct.size)
    first, last = np.maximum(first, 0), np.minimum(last, size - 1)
    if np.any(last < first):
        raise LabelMapError(f"{name} does not overlap the CT: its vertebrae lie outside the "
                            "CT's field of view (a label map of another scan?).")
    return (slice(first[2], last[2] + 1), slice(first[1], last[1] + 1),
            slice(first[0], last[0] + 1))


def _resample(source: Volume, ct: Volume, ct_box: Box, shape: tuple[int, ...],
              source_box: Box | None = None) -> Int16Array:
    """``source``'s codes at the voxel centres of ``ct_box`` of the CT, nearest neighbour.

    The map is CT crop index → LPS → source index. When the two grids' axes are parallel
    (any flips, permutations and spacings), each source index depends on one CT index only
    and the codes are gathered directly; otherwise ``affine_transform`` applies the map
    without building a coordinate array. Outside the source the code is 0.
    """
    if _same_grid(ct, source):
        return np.ascontiguousarray(source.array[ct_box])
    full = (slice(0, source.array.shape[0]), slice(0, source.array.shape[1]),
            slice(0, source.array.shape[2]))
    source_box = source_box or full
    src = source.array[source_box]
    ijk_to_ijk = (np.linalg.inv(crop_affine(source.affine_lps, source_box))
                  @ crop_affine(ct.affine_lps, ct_box))
    matrix, offset = kji_transform(ijk_to_ijk)
    if np.count_nonzero(np.abs(matrix) > AXIS_ALIGNED_TOLERANCE * np.abs(matrix).max()) == 3:
        return _gather_axis_aligned(src, matrix, offset, shape)
    out = ndimage.affine_transform(src, matrix, offset, output_shape=shape, output=np.int16,
                                   order=0, mode="constant", cval=0)
    return np.asarray(out, dtype=np.int16)


def _gather_axis_aligned(src: Int16Array, matrix: FloatArray, offset: FloatArray,
                         shape: tuple[int, ...]) -> Int16Array:
    """Nearest-neighbour resampling when each source axis follows exactly one output axis.

    ``matrix`` and ``offset`` map an output ``[k, j, i]`` index to a source one.
    """
    out_axis = [int(np.argmax(np.abs(matrix[a]))) for a in range(3)]
    indices, valid = [], []
    for a in range(3):
        o = out_axis[a]
        idx = np.floor(matrix[a, o] * np.arange(shape[o]) + offset[a] + 0.5).astype(np.intp)
        ok = (idx >= 0) & (idx < src.shape[a])
        indices.append(np.clip(idx, 0, src.shape[a] - 1))
        valid.append(ok)
    gathered = src[np.ix_(indices[0], indices[1], indices[2])]
    for a in range(3):
        if not valid[a].all():
            gathered[(slice(None),) * a + (~valid[a],)] = 0
    order = [out_axis.index(o) for o in range(3)]
    return np.ascontiguousarray(gathered.transpose(order))


def _bounding_box(mask: BoolArray, margin: list[int]) -> Box:
    """``[k, j, i]`` slices of a non-empty mask's bounding box, grown by ``margin`` voxels
    (per axis, k j i), clipped to the array.

    Two reductions over the volume instead of `crop_box`'s copy and three: this runs on
    the whole label map.
    """
    slab: BoolArray = np.any(mask, axis=0)
    spans = [np.flatnonzero(mask.any(axis=(1, 2))), np.flatnonzero(slab.any(axis=1)),
             np.flatnonzero(slab.any(axis=0))]
    box = [slice(max(0, int(s[0]) - m), min(n, int(s[-1]) + m + 1))
           for s, m, n in zip(spans, margin, mask.shape, strict=True)]
    return (box[0], box[1], box[2])


def _compose(outer: Box, inner: Box) -> Box:
    """The box ``inner`` (relative to ``outer``) in the coordinates of ``outer``'s grid."""
    s = [slice(o.start + i.start, o.start + i.stop) for o, i in zip(outer, inner, strict=True)]
    return (s[0], s[1], s[2])


def _in_code_range(array: NDArray[np.int16], codes: Collection[int]) -> BoolArray:
    """Voxels whose code lies between the smallest and largest of ``codes``: a superset of
    `_isin`, in one subtraction and one comparison — cheap enough for a whole label map,
    and label tables number their vertebrae consecutively."""
    lo, hi = min(codes), max(codes)
    if lo == hi:
        return np.asarray(array == lo)
    shifted = np.subtract(array, np.int16(lo), dtype=np.int16).view(np.uint16)
    return np.asarray(shifted <= np.uint16(hi - lo))


def _isin(array: NDArray[np.int16], codes: Iterable[int]) -> BoolArray:
    """Voxels whose code is one of ``codes``: a range test when the codes are consecutive,
    else a lookup table."""
    codes = sorted(set(codes))
    if not codes:
        return np.zeros(array.shape, dtype=bool)
    if codes[-1] - codes[0] + 1 == len(codes):
        return _in_code_range(array, codes)
    lut = np.zeros(65536, dtype=bool)
    for code in codes:
        lut[int(code) & 0xFFFF] = True
    return np.asarray(lut[array.view(np.uint16)])


# ---- canal and levels ------------------------------------------------------------------
def _canal(crop: Int16Array, vertebra: BoolArray, affine: FloatArray, table: LabelTable,
           name: str, warnings: list[str]) -> tuple[BoolArray, FloatArray]:
    """The labelled canal if the table has one and it is present, else the derived one."""
    labelled = _isin(crop, table.canal_codes)
    if labelled.any():
        return labelled & ~vertebra, centreline_of(labelled, affine)
    hint = _isin(crop, table.canal_hint_codes)
    estimate: CanalEstimate = derive_canal(vertebra, affine, hint if hint.any() else None)
    if estimate.closed_fraction < MOSTLY_INTERPOLATED:
        warnings.append(f"The spinal canal was derived from {name}, but its bony ring is "
                        f"closed on only {estimate.closed_fraction:.0%} of the slices; the "
                        "rest is interpolated. Check it on the images.")
    return estimate.mask, estimate.centreline_lps


def _levels_present(counts: NDArray[np.int_], on_edge: set[int], table: LabelTable,
                    affine: FloatArray, warnings: list[str]) -> list[tuple[str, int]]:
    """(level, code) of the levels in view, cranial to caudal; why others were left out is
    added to ``warnings``.

    ``counts`` is the voxel count per code (indexed by the code as uint16), ``on_edge`` the
    codes that touch the edge of the CT. A vertebra on the edge with less than
    `PARTIAL_FRACTION` of its nearest neighbour's volume is mostly outside the scan: its
    frame and body would be guesses, so it is not a level. Comparing with the neighbour,
    not with all vertebrae, keeps a whole-spine map's small cervical vertebrae.
    """
    voxel_mm3 = float(abs(np.linalg.det(affine[:3, :3])))
    found = sorted(((name, code) for code, name in table.levels.items()
                    if counts[code & 0xFFFF]), key=lambda item: level_index(item[0]))
    if not found:
        raise LabelMapError(f"No vertebral level of the {table.name} table is in view.")
    volume = [float(counts[code & 0xFFFF]) * voxel_mm3 for _, code in found]
    kept = []
    for n, (name, code) in enumerate(found):
        neighbours = [volume[m] for m in (n - 1, n + 1) if 0 <= m < len(found)]
        if code in on_edge and neighbours and volume[n] < PARTIAL_FRACTION * max(neighbours):
            warnings.append(f"{name} is only partly in the scan ({volume[n] / 1000:.1f} cm³, "
                            f"its neighbour {max(neighbours) / 1000:.0f} cm³); it is not "
                            "offered as a level.")
        else:
            if code in on_edge:
                warnings.append(f"{name} is cut by the edge of the scan.")
            kept.append((name, code))
    for code, what in table.unnamed_vertebrae.items():
        if counts[code & 0xFFFF]:
            warnings.append(f"Label {code} is {what}, which VertebroPlan cannot name; it is "
                            "not offered as a level. Check the level names on the images.")
    return kept


def _codes_on_edge(crop: Int16Array, box: Box, ct: Volume) -> set[int]:
    """Codes with voxels on a face of the crop that is also a face of the CT's grid."""
    codes: set[int] = set()
    for axis, (part, n) in enumerate(zip(box, ct.array.shape, strict=True)):
        for index, at_edge in ((0, part.start == 0), (-1, part.stop == n)):
            if at_edge:
                codes.update(np.unique(np.take(crop, index, axis=axis)).tolist())
    codes.discard(0)
    return codes


def _voxels_by_code(crop: Int16Array, codes: list[int]) -> dict[int, NDArray[np.intp]]:
    """Flat indices of each code's voxels, in one pass over the crop."""
    flat = np.flatnonzero(_isin(crop, codes))
    values = crop.ravel()[flat]
    order = np.argsort(values, kind="stable")
    ascending = sorted(codes)
    bounds = np.searchsorted(values[order], [*ascending, np.iinfo(np.int16).max + 1])
    return {code: flat[order[bounds[n]:bounds[n + 1]]] for n, code in enumerate(ascending)}


def _points_lps(flat: NDArray[np.intp], shape: tuple[int, ...], affine: FloatArray
                ) -> FloatArray:
    """LPS mm of voxel centres given by flat ``[k, j, i]`` indices, (N, 3)."""
    k, j, i = np.unravel_index(flat, shape)
    out = np.empty((flat.size, 3))
    for axis in range(3):  # column by column: an (N, 3) @ (3, 3) product is ten times slower
        a = affine[axis]
        out[:, axis] = a[0] * i + a[1] * j + a[2] * k + a[3]
    return out


def _vertebra_voxels(flat: NDArray[np.intp], shape: tuple[int, ...], level: str, code: int,
                     affine: FloatArray, body_map: Int16Array | None) -> VertebraVoxels:
    """One level's voxels in LPS, and its body voxels when a body map is given."""
    points = _points_lps(flat, shape, affine)
    body = None
    if body_map is not None:
        body = points[body_map.ravel()[flat] == BODY_MAP_BODY]
    return VertebraVoxels(level, code, points, body)


def _source_name(labels: Volume, table: LabelTable) -> str:
    where = f"'{labels.source}'" if labels.source else "the label map"
    return f"{where} ({table.name} labels)"
