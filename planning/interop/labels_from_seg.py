"""The vertebrae, canal, spinal cord and discs of a DICOM SEG as a label map on a CT's grid.

Why: an anatomy segmented elsewhere (TotalSegmentator's "vertebrae_L1" …, Slicer, or a SEG
VertebroPlan wrote) is imported as the anatomy. `read_seg_labels` takes ours or a third
party's SEG, recognises segments by their codes (`planning.interop.dicom_codes`), else by
their labels, and returns an int16 label map on the CT grid and the `LabelTable` that names
its codes, ready for `planning.anatomy.from_labels.anatomy_from_label_map`. Frames on the
CT's own grid are pasted; a SEG on another grid of the same Frame of Reference is resampled
nearest-neighbour (`planning.interop.ct_grid`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.pixels.utils import iter_pixels

from planning.anatomy.label_tables import LabelTable
from planning.errors import VertebroPlanError
from planning.interop.ct_grid import FloatArray, integer_offset, resample_nearest
from planning.interop.derived_dicom import parse_content
from planning.interop.dicom_codes import (
    LEVEL_BY_CODE,
    NEEDLE,
    SPINAL_CANAL,
    SPINAL_CORD,
    code_key,
    key_of,
)
from planning.io.dicom_headers import read_whole_dicom
from planning.plan import LEVEL_NAMES
from planning.volume import Volume

SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
LABELMAP_SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.7"

Int16Array = NDArray[np.int16]


class SEGFormatError(VertebroPlanError, ValueError):
    """A file is not a DICOM SEG that VertebroPlan can read as vertebra labels of this CT."""


# Codes of the label map `read_seg_labels` returns: one per meaning, not per segment, so
# two segments of one vertebra (a body and its arch) merge into that level.
LEVEL_LABEL_CODES: Mapping[str, int] = {name: n + 1 for n, name in enumerate(LEVEL_NAMES)}
CANAL_LABEL = 40
CANAL_HINT_LABEL = 41
DISC_LABEL = 42
UNNAMED_LABELS = {"L6": 30, "T13": 31, "sacrum": 32}
# Paint order: a voxel claimed by two segments keeps the later kind (bone over canal).
_PRIORITY = {DISC_LABEL: 1, CANAL_HINT_LABEL: 2, CANAL_LABEL: 3}

_CANAL_CODES = {key_of(SPINAL_CANAL)}
_CORD_CODES = {key_of(SPINAL_CORD)}
_NEEDLE_CODES = {key_of(NEEDLE)}  # pydicom's "Needle, device" is this same code
_LEVEL_WORD = re.compile(r"(?<![a-z0-9])(c[1-7]|t1[0-3]|t[1-9]|l[1-6]|s1)(?![0-9])")


def read_seg_labels(path: str | Path, ct: Volume) -> tuple[Volume, LabelTable]:
    """The vertebrae, canal, spinal cord and discs of a DICOM SEG as an int16 label map on
    ``ct``'s grid, and the table that names its codes.

    Segments are recognised by their Segmented Property Type code (SNOMED CT vertebra
    codes, Vertebral canal, Spinal cord — ours and TotalSegmentator's), else by their label
    ("L1", "vertebrae_L1", "spinal canal", "spinal_cord", "…disc…"). Needles and other
    structures are left out; what was left out is listed in the returned volume's
    ``warnings``. Frames on the CT's own grid are pasted; a SEG on another grid of the same
    Frame of Reference is resampled nearest-neighbour.

    Raises
    ------
    SEGFormatError
        The file is missing, not DICOM, not a segmentation, lies in another Frame of
        Reference than ``ct``, or holds no vertebra; the message names the file.
    """
    p = Path(path)
    ds = _read_dataset(p)
    return parse_content(p, SEGFormatError, lambda: _labels_from_seg(ds, ct, p),
                         "is a DICOM segmentation VertebroPlan cannot read or a damaged one")


def _read_dataset(p: Path) -> Dataset:
    ds: Dataset = read_whole_dicom(p, SEGFormatError,
                                   (SEGMENTATION_STORAGE, LABELMAP_SEGMENTATION_STORAGE),
                                   "a segmentation (DICOM SEG)")
    return ds


@dataclass(frozen=True)
class _Meaning:
    """What one segment is: its label-map code, or None (left out) and why."""

    code: int | None
    kind: str  # level name, "canal", "canal_hint", "disc", an unnamed vertebra, or "other"


def _labels_from_seg(ds: Dataset, ct: Volume, p: Path) -> tuple[Volume, LabelTable]:
    frame_uid = str(ds.get("FrameOfReferenceUID", ""))
    if not ct.frame_of_reference_uid:
        raise SEGFormatError("the CT has no Frame of Reference UID, so whether the "
                             "segmentation belongs to it cannot be checked")
    if frame_uid != ct.frame_of_reference_uid:
        raise SEGFormatError(
            f"the segmentation belongs to another CT (Frame of Reference "
            f"{frame_uid or 'missing'}, this CT has {ct.frame_of_reference_uid})"
        )
    meanings = _segment_meanings(ds)
    lut = np.zeros(max([*meanings, 0]) + 1, dtype=np.int16)
    for number, m in meanings.items():
        lut[number] = m.code or 0
    if not any(m.code in LEVEL_LABEL_CODES.values() for m in meanings.values()):
        found = ", ".join(f"'{_segment_label(s)}'" for s in ds.SegmentSequence) or "none"
        raise SEGFormatError(f"no segment is a vertebra of C1–S1 (segments: {found})")
    labels = _paint_frames(ds, ct, lut)
    if labels is None:
        labels = _resampled(ds, ct, meanings)
    warnings = [f"Segment {n} '{_segment_label(_segment(ds, n))}' is not a vertebra, canal, "
                "spinal cord or disc; it was left out." for n, m in meanings.items()
                if m.code is None]
    present = set(np.unique(labels).tolist())
    if not present & set(LEVEL_LABEL_CODES.values()):
        raise SEGFormatError("none of its vertebrae lies within the CT's field of view")
    table = _table(meanings, present, p.name)
    out = Volume(array=labels, affine_lps=ct.affine_lps, modality="SEG",
                 study_uid=str(ds.get("StudyInstanceUID", "")),
                 series_uid=str(ds.get("SeriesInstanceUID", "")),
                 frame_of_reference_uid=frame_uid, source=str(p), warnings=warnings)
    return out, table


def _segment(ds: Dataset, number: int) -> Dataset:
    item: Dataset = next(s for s in ds.SegmentSequence if int(s.SegmentNumber) == number)
    return item


def _segment_label(item: Dataset) -> str:
    return str(item.get("SegmentLabel", "") or f"segment {item.get('SegmentNumber', '?')}")


def _segment_meanings(ds: Dataset) -> dict[int, _Meaning]:
    """Segment number → meaning, by code first, then by label text."""
    meanings: dict[int, _Meaning] = {}
    for item in ds.get("SegmentSequence", ()):
        number = int(item.SegmentNumber)
        if number == 0:  # the background of a LABELMAP SEG
            continue
        meanings[number] = _meaning(item)
    if not meanings:
        raise SEGFormatError("the segmentation describes no segments")
    levels = {m.kind for m in meanings.values() if m.kind in LEVEL_LABEL_CODES}
    for number, m in meanings.items():  # the sacrum is S1 unless S1 has its own segment
        if m.kind == "sacrum" and "S1" not in levels:
            meanings[number] = _Meaning(LEVEL_LABEL_CODES["S1"], "S1")
    return meanings


def _meaning(item: Dataset) -> _Meaning:
    seq = item.get("SegmentedPropertyTypeCodeSequence")
    key = code_key(seq[0]) if seq else ("", "")
    meaning = str(seq[0].get("CodeMeaning", "")) if seq else ""
    if key in _NEEDLE_CODES:
        return _Meaning(None, "other")
    if key in LEVEL_BY_CODE:
        level = LEVEL_BY_CODE[key]
        return _Meaning(LEVEL_LABEL_CODES[level], level)
    if key in _CANAL_CODES:
        return _Meaning(CANAL_LABEL, "canal")
    if key in _CORD_CODES:
        return _Meaning(CANAL_HINT_LABEL, "canal_hint")
    return _meaning_of_text(_segment_label(item), meaning)


def _meaning_of_text(label: str, code_meaning: str) -> _Meaning:
    """A segment's meaning from its label (then its code meaning): "vertebrae_L1", "L1",
    "spinal canal", "spinal_cord", "L1/L2 disc", "sacrum"."""
    for text in (label, code_meaning):
        word = re.sub(r"[\s\-/]+", "_", text.strip().lower())
        if not word:
            continue
        if "needle" in word:
            return _Meaning(None, "other")
        if "disc" in word:
            return _Meaning(DISC_LABEL, "disc")
        if "cord" in word:
            return _Meaning(CANAL_HINT_LABEL, "canal_hint")
        if "canal" in word and ("spin" in word or "vertebr" in word or word == "canal"):
            return _Meaning(CANAL_LABEL, "canal")
        if word == "sacrum":
            return _Meaning(UNNAMED_LABELS["sacrum"], "sacrum")
        levels = _LEVEL_WORD.findall(word)
        if len(set(levels)) == 1:
            level = levels[0].upper()
            if level in UNNAMED_LABELS:
                return _Meaning(UNNAMED_LABELS[level], level)
            return _Meaning(LEVEL_LABEL_CODES[level], level)
    return _Meaning(None, "other")


def _table(meanings: Mapping[int, _Meaning], present: set[int], name: str) -> LabelTable:
    """The label table of the codes that made it onto the CT grid."""
    kinds = {m.code: m.kind for m in meanings.values() if m.code is not None}
    levels = {code: kind for code, kind in kinds.items()
              if kind in LEVEL_LABEL_CODES and code in present}
    unnamed = {code: ("sacrum (below S1)" if kind == "sacrum"
                      else f"{kind} (transitional vertebra)")
               for code, kind in kinds.items() if kind in UNNAMED_LABELS and code in present}
    return LabelTable(
        name=f"DICOM SEG {name}",
        levels=levels,
        unnamed_vertebrae=unnamed,
        canal_codes=frozenset({CANAL_LABEL} & present),
        canal_hint_codes=frozenset({CANAL_HINT_LABEL} & present),
        disc_codes=frozenset({DISC_LABEL} & present),
    )


def _frame_affine(ds: Dataset, frame: Dataset) -> FloatArray:
    """3 × 3 ``[column step, row step, position]`` of one frame in LPS mm, from its
    functional groups (per frame if given there, else shared): (i, j, 1) → LPS."""
    shared = ds.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in ds \
        else Dataset()

    def group(name: str) -> Dataset:
        seq = frame.get(name) or shared.get(name)
        if not seq:
            raise SEGFormatError(f"a frame has no {name}: its position in the patient "
                                 "is unknown")
        item: Dataset = seq[0]
        return item

    position = np.array(group("PlanePositionSequence").ImagePositionPatient, dtype=float)
    iop = np.array(group("PlaneOrientationSequence").ImageOrientationPatient, dtype=float)
    spacing = np.array(group("PixelMeasuresSequence").PixelSpacing, dtype=float)
    return np.column_stack([iop[:3] * spacing[1], iop[3:] * spacing[0], position])


def _paint_frames(ds: Dataset, ct: Volume, lut: NDArray[np.int16]) -> Int16Array | None:
    """The label map, frame by frame, when every frame lies on a slice of the CT grid
    (same axes and spacing, whole-voxel offset; frames may be cropped in-plane); None when
    one does not, so the caller resamples."""
    frames = ds.PerFrameFunctionalGroupsSequence
    placements: list[tuple[int, int, int]] = []
    for frame in frames:
        affine_2d = _frame_affine(ds, frame)
        affine = np.eye(4)
        affine[:3, :2] = affine_2d[:, :2]
        affine[:3, 2] = ct.affine_lps[:3, 2]
        affine[:3, 3] = affine_2d[:, 2]
        offset = integer_offset(ct.affine_lps, affine)
        if offset is None:
            return None
        placements.append((int(offset[0]), int(offset[1]), int(offset[2])))
    labelmap = str(ds.SOPClassUID) == LABELMAP_SEGMENTATION_STORAGE
    threshold = _threshold(ds)
    n_k, n_j, n_i = (int(n) for n in ct.array.shape)
    out: Int16Array = np.zeros((n_k, n_j, n_i), dtype=np.int16)
    priority = np.zeros(max(int(lut.max()), max(_PRIORITY)) + 1, dtype=np.int8)
    for code, rank in _PRIORITY.items():
        priority[code] = rank
    priority[[c for c in lut.tolist() if c and c not in _PRIORITY]] = 9
    rows, cols = int(ds.Rows), int(ds.Columns)
    for frame, (i0, j0, k), pixels in zip(frames, placements,
                                          iter_pixels(ds), strict=True):
        if not 0 <= k < n_k:
            continue
        if labelmap:
            values = lut[np.clip(pixels, 0, len(lut) - 1)]
        else:
            number = int(frame.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
            code = lut[number] if number < len(lut) else 0
            if not code:
                continue
            values = np.where(pixels > threshold, code, 0).astype(np.int16)
        j_lo, i_lo = max(j0, 0), max(i0, 0)
        j_hi, i_hi = min(j0 + rows, n_j), min(i0 + cols, n_i)
        if j_hi <= j_lo or i_hi <= i_lo:
            continue
        src = values[j_lo - j0:j_hi - j0, i_lo - i0:i_hi - i0]
        dst = out[k, j_lo:j_hi, i_lo:i_hi]
        win = (src != 0) & (priority[src] >= priority[dst])
        dst[win] = src[win]
    return out


def _threshold(ds: Dataset) -> float:
    """Pixel values above this are in the segment (half of a FRACTIONAL SEG's maximum)."""
    if str(ds.get("SegmentationType", "BINARY")) == "FRACTIONAL":
        return 0.5 * float(ds.get("MaximumFractionalValue", 255))
    return 0.0


def _resampled(ds: Dataset, ct: Volume, meanings: Mapping[int, _Meaning]) -> Int16Array:
    """The label map of a SEG on another grid: highdicom builds the SEG's own volume, which
    is resampled nearest-neighbour onto the CT grid."""
    wanted = [(n, m.code) for n, m in meanings.items() if m.code is not None]
    wanted.sort(key=lambda item: _PRIORITY.get(item[1] or 0, 9))  # the last one wins
    seg = hd.seg.Segmentation.from_dataset(ds, copy=False)
    try:
        volume = seg.get_volume(segment_numbers=[n for n, _ in wanted], combine_segments=True,
                                relabel=True, skip_overlap_checks=True)
    except (RuntimeError, ValueError) as exc:
        raise SEGFormatError(
            "its frames are neither on the CT's grid nor a regular volume of their own "
            f"({exc})"
        ) from exc
    relabel = np.array([0, *(code or 0 for _, code in wanted)], dtype=np.int16)
    array = relabel[np.asarray(volume.array, dtype=np.intp)]
    # highdicom's volume indices are (slice, row, column); the project's affines take
    # (column, row, slice)
    affine = np.asarray(volume.affine, dtype=np.float64)[:, [2, 1, 0, 3]]
    box, on_ct = resample_nearest(ct, affine, array)
    out = np.zeros(ct.array.shape, dtype=np.int16)
    out[box] = on_ct
    return out


__all__ = [
    "CANAL_HINT_LABEL",
    "CANAL_LABEL",
    "DISC_LABEL",
    "LEVEL_LABEL_CODES",
    "SEGFormatError",
    "read_seg_labels",
]
