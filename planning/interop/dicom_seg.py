"""The anatomy and the planned needle paths as a DICOM Segmentation (SEG).

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
crops the CT's own grid), else resampled nearest-neighbour through LPS
(`planning.interop.ct_grid`). A needle is the voxels whose centre lies within the needle's
radius of the segment entry → tip (a flat-ended cylinder), plus the voxels its centre line
passes through, so that a thin needle on thick slices is never broken.

What is refused (`SEGExportError`): a CT without Frame of Reference UID; a CT not loaded
from single-frame DICOM images one per slice (NIfTI, multi-frame, or slices filled in by
interpolation) — a SEG frame must reference the image it lies on, and those images do not
exist; a plan made on another CT; a needle entirely outside the CT; nothing to write.

Codes are those of `planning.interop.dicom_codes`. A SEG, ours or a third party's, is read
back as a label map by `planning.interop.labels_from_seg`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
from highdicom.seg import (
    Segmentation,
    SegmentationTypeValues,
    SegmentDescription,
)
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pydicom.valuerep import format_number_as_ds

from planning.anatomy.model import Anatomy
from planning.errors import VertebroPlanError
from planning.interop import derived_dicom as derived
from planning.interop.ct_grid import BoolArray, Box, on_ct_grid, tight_box
from planning.interop.derived_dicom import VERTEBROPLAN, Authoring
from planning.interop.dicom_codes import (
    ALGORITHM_FAMILY,
    ANATOMICAL_STRUCTURE,
    LATERALITY,
    LEVEL_CODES,
    NEEDLE,
    PHYSICAL_OBJECT,
    SPINAL_CANAL,
)
from planning.plan import GAUGES, Plan, Side, Trajectory, level_index
from planning.progress import Progress, no_progress
from planning.vocabulary import DISCLAIMER
from planning.volume import Volume, inverse_affine

SERIES_DESCRIPTION = "VertebroPlan segmentation (not for clinical use)"
CONTENT_LABEL = "VERTEBROPLAN"
DEFAULT_SERIES_NUMBER = 901
DEVICE_SERIAL_NUMBER = "VertebroPlan"
ALGORITHM_NAME = "VertebroPlan anatomy"


class SEGExportError(VertebroPlanError, ValueError):
    """The anatomy and plan cannot be written as a DICOM SEG of this CT."""


@dataclass(frozen=True)
class _Segment:
    """One segment to write: its description and its mask on a box of the CT grid."""

    description: SegmentDescription
    box: Box
    mask: BoolArray


def write_plan_seg(
    path: str | Path,
    volume: Volume,
    anatomy: Anatomy,
    plan: Plan,
    *,
    authoring: Authoring = VERTEBROPLAN,
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
    authoring
        Enhanced General Equipment of the SEG, its series and instance numbers (series
        `DEFAULT_SERIES_NUMBER` unless given) and the de-identification of the result.
    progress
        Reported per segment; Cancel stops before anything is written.

    Returns
    -------
    Path
        ``path``, written whole: a file there means the export succeeded.

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
    segments = _anatomy_segments(volume, anatomy, frame_uid, authoring.software_version,
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
        **authoring.new_instance(DEFAULT_SERIES_NUMBER),
        device_serial_number=DEVICE_SERIAL_NUMBER,
        content_label=CONTENT_LABEL,
        content_description=DISCLAIMER,
        omit_empty_frames=True,
    )
    del pixels, by_segment
    seg.SeriesDescription = SERIES_DESCRIPTION
    if volume.patient.institution:
        seg.InstitutionName = volume.patient.institution
    dataset = authoring.finish(seg)
    # the last report, and so the last chance to cancel, comes before the file is written:
    # a file on disk always means the export succeeded
    progress.report(n_steps, n_steps, "Writing the DICOM segmentation")
    derived.save_dicom(dataset, p)
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
    derived.refuse_plan_of_other_ct(plan, frame_uid, SEGExportError,
                                    "its needles would be drawn in the wrong place on this CT.")
    return frame_uid


def _tracking_uid(frame_uid: str, *what: str) -> str:
    """The same structure of the same CT gets the same Tracking UID in every export, so a
    viewer can follow it across re-exports."""
    return str(generate_uid(entropy_srcs=["VertebroPlan SEG", frame_uid, *what]))


def _algorithm(software_version: str) -> hd.AlgorithmIdentificationSequence:
    return hd.AlgorithmIdentificationSequence(
        name=ALGORITHM_NAME,
        family=ALGORITHM_FAMILY,
        version=software_version,
    )


def _anatomy_segments(volume: Volume, anatomy: Anatomy, frame_uid: str,
                      software_version: str, progress: Progress) -> list[_Segment]:
    """One segment per vertebra level (cranial to caudal) and one for the canal, each on
    the CT grid; levels or a canal with no voxel on this CT are left out."""
    box, labels = on_ct_grid(volume, anatomy.affine_lps, anatomy.labels)
    _, canal = on_ct_grid(volume, anatomy.affine_lps, anatomy.canal)
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
        out.append(_Segment(desc, *tight_box(box, mask)))
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
        out.append(_Segment(desc, *tight_box(box, canal)))
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
    return tight_box(box, mask)


def _plane_range(segments: Iterable[_Segment]) -> tuple[int, int]:
    """The CT slices [first, stop) that hold any segment pixel."""
    boxes = [s.box[0] for s in segments if s.mask.any()]
    if not boxes:
        raise SEGExportError("No segment has a voxel on this CT: there is nothing to export.")
    return min(b.start for b in boxes), max(b.stop for b in boxes)


def _source_images(volume: Volume, frame_uid: str) -> list[Dataset]:
    """Header-only CT datasets, one per slice ``k`` of ``volume``, from which highdicom
    takes the patient, study and series references and each frame's geometry.

    ``volume.source_instances`` are in slice order (the loader sorts the images along the
    slice normal and keeps one instance per file; `_check_exportable` made sure there is
    exactly one per slice), so instance ``k`` is the image at ``affine @ (0, 0, k, 1)``.
    """
    a = volume.affine_lps
    spacing = volume.spacing_mm
    row_dir, col_dir = a[:3, 0] / spacing[0], a[:3, 1] / spacing[1]
    normal = np.cross(row_dir, col_dir)
    thickness = abs(float(a[:3, 2] @ normal))
    base = derived.ct_series_header(volume, volume.study_uid or generate_uid())
    base.Modality = volume.modality or "CT"
    base.FrameOfReferenceUID = frame_uid
    base.PositionReferenceIndicator = ""
    base.Rows, base.Columns = int(volume.array.shape[1]), int(volume.array.shape[2])
    base.PixelSpacing = [_ds(spacing[1]), _ds(spacing[0])]  # (between rows, between columns)
    base.ImageOrientationPatient = [_ds(v) for v in (*row_dir, *col_dir)]
    base.SliceThickness = _ds(thickness)
    out = []
    for k, instance in enumerate(volume.source_instances):
        ds = derived.instance_header(base, instance.sop_class_uid, instance.sop_instance_uid)
        ds.ImagePositionPatient = [_ds(v) for v in a[:3, 3] + k * a[:3, 2]]
        out.append(ds)
    return out


def _ds(value: float) -> str:
    """A DICOM Decimal String (at most 16 characters) of a float."""
    return str(format_number_as_ds(float(value)))


__all__ = [
    "NEEDLE",
    "SPINAL_CANAL",
    "SEGExportError",
    "needle_mask",
    "write_plan_seg",
]
