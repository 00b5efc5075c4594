"""The anatomy and the planned needle paths as a DICOM Segmentation (SEG), and label maps
read back from one.

Why a SEG: PACS viewers (OHIF, Slicer, vendor workstations) overlay a SEG on the CT it was
made from, so the vertebrae, the spinal canal and the needle paths VertebroPlan used can be
reviewed beside the plan's SR without VertebroPlan. The SEG joins the CT's study (same
Study Instance UID, patient and study modules) and lies in the CT's Frame of Reference.

Layout (BINARY, one bit per pixel, uncompressed)::

    Segment 1 … n     one per vertebra of ``anatomy.levels``, cranial to caudal
                      category Anatomical Structure (91723000, SCT), type the level's own
                      SNOMED CT code (CID 7603/7192: "L1 vertebra" 66794005 …; S1 65985001)
                      AUTOMATIC, algorithm "VertebroPlan anatomy"
    Segment n+1       the spinal canal: Vertebral canal (61853006, SCT), AUTOMATIC
    Segment n+2 …     one per planned needle: category Physical object (260787004, SCT),
                      type Needle (79068005, SCT), MANUAL (the user planned it); label
                      "L1 left needle path (11G)"; anatomic region = the level's code with
                      a Left/Right laterality modifier

Grid: the frames are the CT's own slices — full Rows × Columns, the CT's orientation,
pixel spacing and slice positions, each frame referencing the CT image it lies on
(Derivation Image Sequence). Viewers that paint a SEG frame onto "its" image pixel for
pixel (cornerstone/OHIF) need exactly that; a SEG cropped in-plane would be smaller but is
refused by them. Only frames with segment pixels are written (a 512 × 512 frame is 32 kB),
so the file stays a few tens of MB however large the CT is: a 512 × 512 × 300 CT with 17
vertebrae, the canal and 4 needles gives 19 MB in about 7 s. highdicom takes the segments
as one (slice, row, column, segment) array; it is built segment-major so that only the
pages of each segment's own box are ever touched, and the peak memory is set by
highdicom's overlap check (8 bytes per CT voxel of the slices written: 0.6 GB there).

The anatomy masks live on a crop of the CT grid; they are pasted back by their integer
offset when the crop has the CT's axes and spacing (the usual case: every anatomy source
crops the CT's own grid), else resampled nearest-neighbour through LPS. A needle is the
voxels whose centre lies within the needle's radius of the segment entry → tip (a flat-ended
cylinder), plus the voxels its centre line passes through, so that a thin needle on thick
slices is never broken.

What is refused (`SEGExportError`): a CT without Frame of Reference UID; a CT not loaded
from single-frame DICOM images one per slice (NIfTI, multi-frame, or slices filled in by
interpolation) — a SEG frame must reference the image it lies on, and those images do not
exist; a plan made on another CT; a needle entirely outside the CT; nothing to write.

Reading (`read_seg_labels`) takes ours or a third party's SEG (TotalSegmentator's
"vertebrae_L1" …), recognises segments by their codes, else by their labels, and returns
an int16 label map on the CT grid and the `LabelTable` that names its codes, ready for
`planning.anatomy.from_labels.anatomy_from_label_map`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
from highdicom.seg import (
    Segmentation,
    SegmentationTypeValues,
    SegmentDescription,
)
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.pixels.utils import iter_pixels
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import generate_uid
from pydicom.valuerep import format_number_as_ds

from planning.anatomy.label_tables import LabelTable
from planning.anatomy.model import Anatomy
from planning.errors import VertebroPlanError
from planning.interop.dicom_sr import CHARACTER_SET, LEVEL_CODES, _save_atomic
from planning.io.dicom_headers import PARSE_ERRORS, parse_problem, read_whole_dicom
from planning.plan import GAUGES, LEVEL_NAMES, Plan, Side, Trajectory, level_index
from planning.progress import Progress, no_progress
from planning.vocabulary import DISCLAIMER
from planning.volume import PatientInfo, Volume, inverse_affine

SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
LABELMAP_SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.7"
SERIES_DESCRIPTION = "VertebroPlan segmentation (not for clinical use)"
CONTENT_LABEL = "VERTEBROPLAN"
DEFAULT_SERIES_NUMBER = 901
DEVICE_SERIAL_NUMBER = "VertebroPlan"
ALGORITHM_NAME = "VertebroPlan anatomy"

ANATOMICAL_STRUCTURE = codes.SCT.AnatomicalStructure  # CID 7150
PHYSICAL_OBJECT = codes.SCT.PhysicalObject  # CID 7150
SPINAL_CANAL = codes.SCT.VertebralCanal  # 61853006 "Vertebral canal" (CID 8134)
SPINAL_CORD = codes.SCT.SpinalCord  # 2748008, CID 7192: TotalSegmentator's "spinal_cord"
NEEDLE = codes.SCT.Needle  # 79068005, CID 7193
LATERALITY: Mapping[Side, Code] = {Side.LEFT: codes.SCT.Left, Side.RIGHT: codes.SCT.Right}

# Grid matching: an anatomy crop or a SEG frame is "on the CT grid" when its axes agree
# within this (mm per voxel step) and its origin lies within this fraction of a voxel of
# a CT voxel centre.
AXIS_TOLERANCE_MM = 1e-3
OFFSET_TOLERANCE_VOX = 0.02

Int16Array = NDArray[np.int16]
BoolArray = NDArray[np.bool_]
FloatArray = NDArray[np.float64]
Box = tuple[slice, slice, slice]  # [k, j, i] of the CT grid
Deidentifier = Callable[[Dataset], Dataset]


class SEGExportError(VertebroPlanError, ValueError):
    """The anatomy and plan cannot be written as a DICOM SEG of this CT."""


class SEGFormatError(VertebroPlanError, ValueError):
    """A file is not a DICOM SEG that VertebroPlan can read as vertebra labels of this CT."""


@dataclass(frozen=True)
class _Segment:
    """One segment to write: its description and its mask on a box of the CT grid."""

    description: SegmentDescription
    box: Box
    mask: BoolArray


# ---- writing ---------------------------------------------------------------------------


def write_plan_seg(
    path: str | Path,
    volume: Volume,
    anatomy: Anatomy,
    plan: Plan,
    *,
    deidentify_with: Deidentifier | None = None,
    manufacturer: str = "VertebroPlan",
    software_version: str = "0.1.0",
    series_number: int = DEFAULT_SERIES_NUMBER,
    instance_number: int = 1,
    progress: Progress | None = None,
) -> Path:
    """Write the vertebrae, the spinal canal and the needle paths as a DICOM SEG of
    ``volume`` (atomically).

    Parameters
    ----------
    path
        The file to write; its folder is created. A crash or a cancel mid-write leaves any
        previous file intact.
    volume
        The CT, loaded from a DICOM series: the SEG joins its study, lies in its Frame of
        Reference and references its images frame by frame.
    anatomy
        Vertebrae (one segment per level of ``anatomy.levels``) and canal, on a crop of
        ``volume``'s grid (any grid overlapping it is resampled).
    plan
        Its needles become cylinders of their gauge's outer radius, entry to tip (LPS mm).
        May be empty: the SEG then holds the anatomy only.
    deidentify_with
        Called with the finished dataset; what it returns is written.
    manufacturer, software_version
        Enhanced General Equipment of the SEG.
    series_number, instance_number
        Of the new SEG series and instance (new UIDs are generated for both).
    progress
        Reported per segment; Cancel stops before anything is written.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    SEGExportError
        The CT has no Frame of Reference UID or is not a single-frame DICOM series with one
        image per slice, the plan was made on another CT, a needle lies outside the CT, or
        there is nothing to write.
    """
    p = Path(path)
    progress = progress or no_progress()
    frame_uid = _check_exportable(volume, plan)
    n_steps = len(anatomy.levels) + 1 + len(plan.trajectories) + 1
    progress.report(0, n_steps, "Placing the anatomy on the CT grid")
    segments = _anatomy_segments(volume, anatomy, frame_uid, software_version,
                                 progress.part(0, len(anatomy.levels) + 1, n_steps))
    for n, t in enumerate(plan.trajectories, start=len(anatomy.levels) + 1):
        progress.report(n, n_steps, f"Drawing the {t.label} needle path")
        segments.append(_needle_segment(volume, t, len(segments) + 1, frame_uid))
    if not segments:
        raise SEGExportError(
            "The anatomy has no vertebrae or canal on this CT and the plan has no needles: "
            "there is nothing to export as a DICOM SEG."
        )
    progress.report(n_steps - 1, n_steps, "Encoding the DICOM segmentation")
    first, stop = _plane_range(segments)
    # Segment-major memory behind the (plane, row, column, segment) view highdicom takes:
    # each segment touches only the pages of its own box, the rest of the zeros is never
    # materialised (a 512 × 512 × 300 CT with 22 segments: 0.8 GB less at the peak).
    by_segment = np.zeros((len(segments), stop - first, *volume.array.shape[1:]),
                          dtype=np.bool_)
    for n, s in enumerate(segments):
        k, j, i = s.box
        by_segment[n, k.start - first:k.stop - first, j, i] = s.mask
    pixels = np.moveaxis(by_segment, 0, -1)
    sources = _source_images(volume, frame_uid)[first:stop]
    seg = Segmentation(
        source_images=sources,
        pixel_array=pixels,
        segmentation_type=SegmentationTypeValues.BINARY,
        segment_descriptions=[s.description for s in segments],
        series_instance_uid=generate_uid(),
        series_number=series_number,
        sop_instance_uid=generate_uid(),
        instance_number=instance_number,
        manufacturer=manufacturer,
        manufacturer_model_name="VertebroPlan",
        software_versions=software_version,
        device_serial_number=DEVICE_SERIAL_NUMBER,
        content_label=CONTENT_LABEL,
        content_description=DISCLAIMER,
        omit_empty_frames=True,
    )
    del pixels, by_segment
    seg.SeriesDescription = SERIES_DESCRIPTION
    if volume.patient.institution:
        seg.InstitutionName = volume.patient.institution
    dataset: Dataset = seg
    if deidentify_with is not None:
        dataset = deidentify_with(seg)
    # the last report, and so the last chance to cancel, comes before the file is written:
    # a file on disk always means the export succeeded
    progress.report(n_steps, n_steps, "Writing the DICOM segmentation")
    _save_atomic(dataset, p)
    return p


def _check_exportable(volume: Volume, plan: Plan) -> str:
    """The Frame of Reference UID to write, after refusing what a SEG cannot say truly."""
    frame_uid = volume.frame_of_reference_uid
    if not frame_uid:
        raise SEGExportError(
            "The CT has no Frame of Reference UID, so a DICOM SEG could not be placed on it. "
            "Export the plan as a plan file or PDF instead."
        )
    n_slices = volume.array.shape[0]
    n_images = len(volume.source_instances)
    if n_images == 0:
        raise SEGExportError(
            "The CT was not loaded from DICOM images (a NIfTI file?), so a DICOM SEG has no "
            "images to refer to and could not join the CT's study. Export the plan as a "
            "plan file or PDF instead."
        )
    if n_images != n_slices:
        raise SEGExportError(
            f"The CT's {n_slices} slices were built from {n_images} DICOM image(s) (a "
            "multi-frame image, or missing slices filled in by interpolation), so the SEG's "
            "frames could not each refer to the image they lie on. Export the plan as a "
            "DICOM SR, plan file or PDF instead."
        )
    planned_on = plan.frame_of_reference_uid
    if planned_on and planned_on != frame_uid and plan.frame_override is None:
        raise SEGExportError(
            f"The plan was made on another CT (Frame of Reference {planned_on}, this CT has "
            f"{frame_uid}): its needles would be drawn in the wrong place on this CT."
        )
    return frame_uid


def _tracking_uid(frame_uid: str, *what: str) -> str:
    """The same structure of the same CT gets the same Tracking UID in every export, so a
    viewer can follow it across re-exports."""
    return str(generate_uid(entropy_srcs=["VertebroPlan SEG", frame_uid, *what]))


def _algorithm(software_version: str) -> hd.AlgorithmIdentificationSequence:
    return hd.AlgorithmIdentificationSequence(
        name=ALGORITHM_NAME,
        family=codes.cid7162.MorphologicalOperations,
        version=software_version,
    )


def _anatomy_segments(volume: Volume, anatomy: Anatomy, frame_uid: str,
                      software_version: str, progress: Progress) -> list[_Segment]:
    """One segment per vertebra level (cranial to caudal) and one for the canal, each on
    the CT grid; levels or a canal with no voxel on this CT are left out."""
    box, labels = _on_ct_grid(volume, anatomy.affine_lps, anatomy.labels)
    _, canal = _on_ct_grid(volume, anatomy.affine_lps, anatomy.canal)
    algorithm = _algorithm(software_version)
    ordered = sorted(anatomy.levels.values(), key=lambda g: level_index(g.name))
    out: list[_Segment] = []
    for n, geometry in enumerate(ordered):
        progress.report(n, len(ordered) + 1, f"Placing {geometry.name} on the CT grid")
        mask = labels == geometry.code
        if not mask.any():
            continue
        level = geometry.name
        desc = SegmentDescription(
            segment_number=len(out) + 1,
            segment_label=f"{level} vertebra",
            segmented_property_category=ANATOMICAL_STRUCTURE,
            segmented_property_type=LEVEL_CODES[level],
            algorithm_type="AUTOMATIC",
            algorithm_identification=algorithm,
            tracking_uid=_tracking_uid(frame_uid, "vertebra", level),
            tracking_id=f"{level} vertebra",
            display_color=hd.color.CIELabColor.from_rgb(
                *((241, 214, 145) if level_index(level) % 2 else (221, 130, 101))),
        )
        desc.SegmentDescription = f"{level} vertebra, body and posterior elements"
        out.append(_Segment(desc, *_tight(box, mask)))
    if canal.any():
        desc = SegmentDescription(
            segment_number=len(out) + 1,
            segment_label="Spinal canal",
            segmented_property_category=ANATOMICAL_STRUCTURE,
            segmented_property_type=SPINAL_CANAL,
            algorithm_type="AUTOMATIC",
            algorithm_identification=algorithm,
            tracking_uid=_tracking_uid(frame_uid, "canal"),
            tracking_id="Spinal canal",
            display_color=hd.color.CIELabColor.from_rgb(80, 140, 255),
        )
        desc.SegmentDescription = "Spinal canal: dural sac and epidural space"
        out.append(_Segment(desc, *_tight(box, canal)))
    return out


def _needle_segment(volume: Volume, t: Trajectory, number: int, frame_uid: str) -> _Segment:
    """The needle ``t`` as a MANUAL segment (the user planned it), level and side in its
    label, description and anatomic region."""
    box, mask = needle_mask(volume, t)
    g = GAUGES[t.gauge]
    desc = SegmentDescription(
        segment_number=number,
        segment_label=f"{t.level} {t.side.value} needle path ({t.gauge})",
        segmented_property_category=PHYSICAL_OBJECT,
        segmented_property_type=NEEDLE,
        algorithm_type="MANUAL",
        tracking_uid=_tracking_uid(frame_uid, "needle", t.level, t.side.value),
        tracking_id=f"{t.label} needle path",
        anatomic_regions=[LEVEL_CODES[t.level]],
        display_color=hd.color.CIELabColor.from_rgb(
            *((60, 200, 90) if t.side is Side.LEFT else (230, 60, 200))),
    )
    modifier = hd.sr.CodedConcept.from_code(LATERALITY[t.side])
    desc.AnatomicRegionSequence[0].AnatomicRegionModifierSequence = [modifier]
    desc.SegmentDescription = (
        f"Planned {t.gauge} needle ({g.outer_diameter_mm:.2f} mm) at {t.level}, "
        f"patient's {t.side.value}, {t.length_mm:.1f} mm entry to tip"
    )
    return _Segment(desc, box, mask)


def needle_mask(volume: Volume, t: Trajectory) -> tuple[Box, BoolArray]:
    """The CT voxels of a needle: centres within ``t.radius_mm`` of the segment entry → tip
    (a flat-ended cylinder), plus every voxel its centre line passes through.

    Returns the ``[k, j, i]`` box of the CT grid and the mask on it.

    Raises
    ------
    SEGExportError
        No part of the needle lies in the CT.
    """
    entry, tip = t.entry, t.target
    length = t.length_mm
    axis = (tip - entry) / length
    radius = t.radius_mm
    ends_ijk = volume.to_index(np.array([entry, tip]))
    # half-extent in index units of a ball of the radius, along each of i, j, k
    reach = radius * np.linalg.norm(inverse_affine(volume.affine_lps[:3, :3]), axis=1) + 1.0
    lo = np.floor(ends_ijk.min(axis=0) - reach).astype(int)
    hi = np.ceil(ends_ijk.max(axis=0) + reach).astype(int) + 1
    size = np.array(volume.size)
    lo, hi = np.clip(lo, 0, size), np.clip(hi, 0, size)
    if np.any(hi <= lo):
        raise SEGExportError(
            f"The {t.label} needle lies entirely outside the CT: it cannot be drawn in a "
            "segmentation of this CT."
        )
    box: Box = (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))
    k, j, i = np.meshgrid(np.arange(lo[2], hi[2]), np.arange(lo[1], hi[1]),
                          np.arange(lo[0], hi[0]), indexing="ij")
    a = volume.affine_lps
    d = [a[r, 0] * i + a[r, 1] * j + a[r, 2] * k + (a[r, 3] - entry[r]) for r in range(3)]
    along = d[0] * axis[0] + d[1] * axis[1] + d[2] * axis[2]
    perp2 = d[0] ** 2 + d[1] ** 2 + d[2] ** 2 - along ** 2
    mask = (along >= 0.0) & (along <= length) & (perp2 <= radius ** 2)
    step = 0.5 * float(volume.spacing_mm.min())
    samples = np.linspace(0.0, 1.0, int(np.ceil(length / step)) + 1)[:, None]
    line = np.rint(ends_ijk[0] + samples * (ends_ijk[1] - ends_ijk[0])).astype(int)
    line = line[np.all((line >= lo) & (line < hi), axis=1)] - lo
    mask[line[:, 2], line[:, 1], line[:, 0]] = True
    if not mask.any():
        raise SEGExportError(f"The {t.label} needle lies entirely outside the CT.")
    return _tight(box, mask)


def _tight(box: Box, mask: BoolArray) -> tuple[Box, BoolArray]:
    """The mask cut to its own bounding box (``box`` is where ``mask`` lies on the CT)."""
    if not mask.any():
        return box, mask
    inner = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        idx = np.flatnonzero(mask.any(axis=other))
        inner.append(slice(int(idx[0]), int(idx[-1]) + 1))
    out: Box = (
        slice(box[0].start + inner[0].start, box[0].start + inner[0].stop),
        slice(box[1].start + inner[1].start, box[1].start + inner[1].stop),
        slice(box[2].start + inner[2].start, box[2].start + inner[2].stop),
    )
    return out, np.ascontiguousarray(mask[inner[0], inner[1], inner[2]])


def _plane_range(segments: Iterable[_Segment]) -> tuple[int, int]:
    """The CT slices [first, stop) that hold any segment pixel."""
    boxes = [s.box[0] for s in segments if s.mask.any()]
    if not boxes:
        raise SEGExportError("No segment has a voxel on this CT: there is nothing to export.")
    return min(b.start for b in boxes), max(b.stop for b in boxes)


def _on_ct_grid(ct: Volume, affine_lps: FloatArray, array: NDArray[Any]
                ) -> tuple[Box, NDArray[Any]]:
    """``array`` (on the grid ``affine_lps``) on a box of the CT grid.

    Pasted by its integer offset when the grid is the CT's own (a crop of it), else
    resampled nearest-neighbour through LPS; the part outside the CT is dropped.
    """
    offset = _integer_offset(ct.affine_lps, affine_lps)
    size_kji = np.array(ct.array.shape)
    if offset is not None:
        start = offset[::-1]  # (k, j, i)
        lo = np.clip(start, 0, size_kji)
        hi = np.clip(start + np.array(array.shape), 0, size_kji)
        box: Box = (slice(lo[0], hi[0]), slice(lo[1], hi[1]), slice(lo[2], hi[2]))
        src = tuple(slice(lo[a] - start[a], hi[a] - start[a]) for a in range(3))
        return box, np.ascontiguousarray(array[src])
    return _resample_nearest(ct, affine_lps, array)


def _integer_offset(ct_affine: FloatArray, affine: FloatArray) -> NDArray[np.int_] | None:
    """(i, j, k) of the grid's first voxel on the CT grid when the grid is a crop of the
    CT's (same axes, whole-voxel offset), else None."""
    if not np.allclose(ct_affine[:3, :3], affine[:3, :3], atol=AXIS_TOLERANCE_MM):
        return None
    ijk = inverse_affine(ct_affine) @ affine[:, 3]
    rounded = np.rint(ijk[:3])
    if np.max(np.abs(ijk[:3] - rounded)) > OFFSET_TOLERANCE_VOX:
        return None
    return rounded.astype(int)


def _resample_nearest(ct: Volume, affine_lps: FloatArray, array: NDArray[Any]
                      ) -> tuple[Box, NDArray[Any]]:
    """Nearest-neighbour resampling of ``array`` onto the CT voxels its grid covers,
    slice by slice (memory stays one CT slab)."""
    shape = np.array(array.shape)  # (k, j, i)
    corners = np.array([[i, j, k] for i in (-0.5, shape[2] - 0.5)
                        for j in (-0.5, shape[1] - 0.5) for k in (-0.5, shape[0] - 0.5)])
    on_ct = ct.to_index(corners @ affine_lps[:3, :3].T + affine_lps[:3, 3])
    size = np.array(ct.size)
    lo = np.clip(np.floor(on_ct.min(axis=0)).astype(int), 0, size)
    hi = np.clip(np.ceil(on_ct.max(axis=0)).astype(int) + 1, 0, size)
    box: Box = (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))
    out = np.zeros((hi[2] - lo[2], hi[1] - lo[1], hi[0] - lo[0]), dtype=array.dtype)
    if out.size == 0:
        return box, out
    ct_to_src = inverse_affine(affine_lps) @ ct.affine_lps
    j, i = np.meshgrid(np.arange(lo[1], hi[1]), np.arange(lo[0], hi[0]), indexing="ij")
    for n, k in enumerate(range(lo[2], hi[2])):
        src = [np.rint(ct_to_src[r, 0] * i + ct_to_src[r, 1] * j
                       + ct_to_src[r, 2] * k + ct_to_src[r, 3]).astype(int) for r in range(3)]
        inside = ((src[0] >= 0) & (src[0] < shape[2]) & (src[1] >= 0) & (src[1] < shape[1])
                  & (src[2] >= 0) & (src[2] < shape[0]))
        out[n][inside] = array[src[2][inside], src[1][inside], src[0][inside]]
    return box, out


def _source_images(volume: Volume, frame_uid: str) -> list[Dataset]:
    """Header-only CT datasets, one per slice ``k`` of ``volume``, from which highdicom
    takes the patient, study and series references and each frame's geometry.

    ``volume.source_instances`` are in slice order (the loader sorts the images along the
    slice normal and keeps one instance per file; `_check_exportable` made sure there is
    exactly one per slice), so instance ``k`` is the image at ``affine @ (0, 0, k, 1)``.
    """
    p: PatientInfo = volume.patient
    a = volume.affine_lps
    spacing = volume.spacing_mm
    row_dir, col_dir = a[:3, 0] / spacing[0], a[:3, 1] / spacing[1]
    normal = np.cross(row_dir, col_dir)
    thickness = abs(float(a[:3, 2] @ normal))
    base = Dataset()
    base.SpecificCharacterSet = CHARACTER_SET
    base.PatientName = p.name
    base.PatientID = p.patient_id
    base.PatientBirthDate = p.birth_date
    base.PatientSex = p.sex if p.sex in ("M", "F", "O") else ""
    base.StudyInstanceUID = volume.study_uid or generate_uid()
    base.StudyDate = p.study_date
    base.StudyTime = p.study_time
    base.AccessionNumber = p.accession_number
    base.ReferringPhysicianName = p.referring_physician
    base.StudyID = p.study_id
    if p.study_description:
        base.StudyDescription = p.study_description
    base.SeriesInstanceUID = volume.series_uid or generate_uid()
    base.Modality = volume.modality or "CT"
    base.FrameOfReferenceUID = frame_uid
    base.PositionReferenceIndicator = ""
    base.Rows, base.Columns = int(volume.array.shape[1]), int(volume.array.shape[2])
    base.PixelSpacing = [_ds(spacing[1]), _ds(spacing[0])]  # (between rows, between columns)
    base.ImageOrientationPatient = [_ds(v) for v in (*row_dir, *col_dir)]
    base.SliceThickness = _ds(thickness)
    out = []
    for k, instance in enumerate(volume.source_instances):
        ds = Dataset()
        ds.update(base)
        ds.SOPClassUID = instance.sop_class_uid
        ds.SOPInstanceUID = instance.sop_instance_uid
        ds.ImagePositionPatient = [_ds(v) for v in a[:3, 3] + k * a[:3, 2]]
        out.append(ds)
    return out


def _ds(value: float) -> str:
    """A DICOM Decimal String (at most 16 characters) of a float."""
    return str(format_number_as_ds(float(value)))


# ---- reading ---------------------------------------------------------------------------

# Codes of the label map `read_seg_labels` returns: one per meaning, not per segment, so
# two segments of one vertebra (a body and its arch) merge into that level.
LEVEL_LABEL_CODES: Mapping[str, int] = {name: n + 1 for n, name in enumerate(LEVEL_NAMES)}
CANAL_LABEL = 40
CANAL_HINT_LABEL = 41
DISC_LABEL = 42
UNNAMED_LABELS = {"L6": 30, "T13": 31, "sacrum": 32}
# Paint order: a voxel claimed by two segments keeps the later kind (bone over canal).
_PRIORITY = {DISC_LABEL: 1, CANAL_HINT_LABEL: 2, CANAL_LABEL: 3}

_LEVEL_BY_CODE = {(c.scheme_designator, c.value): name for name, c in LEVEL_CODES.items()}
_CANAL_CODES = {("SCT", SPINAL_CANAL.value)}
_CORD_CODES = {("SCT", SPINAL_CORD.value)}
_NEEDLE_CODES = {("SCT", NEEDLE.value), ("SCT", codes.SCT.NeedleDevice.value)}
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
    try:
        return _labels_from_seg(ds, ct, p)
    except SEGFormatError as exc:
        raise SEGFormatError(f"'{p}': {exc}") from exc
    except (*PARSE_ERRORS, OSError) as exc:
        # pydicom parses and decodes lazily: a damaged element or frame fails only here
        raise SEGFormatError(
            f"'{p}' is a DICOM segmentation VertebroPlan cannot read or a damaged one "
            f"({parse_problem(exc, detail=True)})."
        ) from exc


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
    key = (str(seq[0].CodingSchemeDesignator), str(seq[0].CodeValue)) if seq else ("", "")
    meaning = str(seq[0].get("CodeMeaning", "")) if seq else ""
    if key in _NEEDLE_CODES:
        return _Meaning(None, "other")
    if key in _LEVEL_BY_CODE:
        level = _LEVEL_BY_CODE[key]
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
        offset = _integer_offset(ct.affine_lps, affine)
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
    box, on_ct = _resample_nearest(ct, affine, array)
    out = np.zeros(ct.array.shape, dtype=np.int16)
    out[box] = on_ct
    return out


__all__ = [
    "CANAL_HINT_LABEL",
    "CANAL_LABEL",
    "DISC_LABEL",
    "LEVEL_LABEL_CODES",
    "NEEDLE",
    "SPINAL_CANAL",
    "SEGExportError",
    "SEGFormatError",
    "needle_mask",
    "read_seg_labels",
    "write_plan_seg",
]
