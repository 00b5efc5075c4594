"""DICOM folders → series → a `Volume` in patient coordinates.

Geometry comes only from ImagePositionPatient and ImageOrientationPatient: slices are sorted
along the orientation's normal, spacing is measured between positions, and any orientation
(flipped, oblique, gantry-tilted) is kept in the affine rather than resampled away. Real-world
quirks are handled with a warning in ``Volume.warnings`` or refused with a `SeriesError`
whose message names the folder or file.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from planning.errors import SeriesError
from planning.io.dicom_headers import (
    CT_SOP_CLASSES,
    ImageHeader,
    ScanItem,
    read_header,
    read_patient_info,
)
from planning.io.pixels import read_slices
from planning.progress import Progress, no_progress
from planning.volume import PatientInfo, SourceInstance, Volume, affine_from_dicom

SKIP_NAMES = {"DICOMDIR"}
ORIENTATION_DECIMALS = 3
DUPLICATE_TOLERANCE_MM = 0.01
UNIFORM_TOLERANCE = 0.02  # relative deviation of a slice step still called uniform
MAX_GAP_STEPS = 2.5  # a gap up to this many steps is filled; a larger one is refused
TILT_WARN_DEG = 0.5


@dataclass(frozen=True)
class SeriesInfo:
    """One series found in a folder: what the series chooser shows, and its images."""

    series_uid: str
    study_uid: str
    modality: str
    description: str
    n_images: int
    slice_thickness_mm: float | None
    series_number: int
    patient: PatientInfo
    folder: Path
    files: tuple[Path, ...]
    images: tuple[ImageHeader, ...] = field(repr=False, default=())

    @property
    def is_ct(self) -> bool:
        return self.modality == "CT" or any(i.sop_class_uid in CT_SOP_CLASSES for i in self.images)


@dataclass
class ScanResult:
    """Every series in a folder (largest CT first) and the files that were passed over."""

    folder: Path
    series: list[SeriesInfo]
    skipped: list[tuple[Path, str]]
    n_files: int


def _iter_files(folder: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            if name.upper() in SKIP_NAMES or name.startswith("."):
                continue
            yield Path(root) / name


def _read_headers(paths: list[Path], progress: Progress) -> list[ScanItem]:
    """Parse every header once, in this thread.

    Not in worker processes: forking from the GUI's worker thread while Qt and VTK hold
    locks can hang the child, and with the raw-value fast path in `read_header` a serial
    scan already loads a 300-slice series in about half SimpleITK's time (bench/).
    """
    total = len(paths)
    progress.report(0, total, "Reading DICOM headers")
    items: list[ScanItem] = []
    for n, p in enumerate(paths, 1):
        items.append(read_header(p))
        if n % 16 == 0 or n == total:
            progress.report(n, total, "Reading DICOM headers")
    return items


def scan_folder(folder: str | Path, progress: Progress | None = None) -> ScanResult:
    """List the series in ``folder`` (searched recursively), largest CT series first."""
    progress = progress or no_progress()
    root = Path(folder)
    if not root.exists():
        raise SeriesError(f"'{root}' does not exist.")
    if not root.is_dir():
        raise SeriesError(f"'{root}' is not a folder.")
    paths = list(_iter_files(root))
    items = _read_headers(paths, progress)
    skipped = [(i.path, i.skipped_reason) for i in items if i.skipped_reason]
    groups: dict[str, list[ScanItem]] = {}
    for item in items:
        if item.images:
            groups.setdefault(item.images[0].series_uid, []).append(item)
    series = [_series_info(root, uid, its) for uid, its in groups.items()]
    series.sort(key=lambda s: (not s.is_ct, -s.n_images, s.series_number))
    return ScanResult(root, series, [(p, r or "") for p, r in skipped], len(paths))


def _series_info(root: Path, uid: str, items: list[ScanItem]) -> SeriesInfo:
    images = tuple(img for it in items for img in it.images)
    first = images[0]
    thickness = Counter(i.slice_thickness_mm for i in images if i.slice_thickness_mm)
    patient = read_patient_info(first.path, first.raw_dataset)
    modalities = Counter(i.modality for i in images)
    return SeriesInfo(
        series_uid=uid,
        study_uid=first.study_uid,
        modality=modalities.most_common(1)[0][0],
        description=first.series_description,
        n_images=len(images),
        slice_thickness_mm=thickness.most_common(1)[0][0] if thickness else None,
        series_number=first.series_number,
        patient=patient,
        folder=root,
        files=tuple(sorted({it.path for it in items})),
        images=images,
    )


def load_dicom_folder(
    folder: str | Path, series_uid: str | None = None, progress: Progress | None = None
) -> Volume:
    """Load one series of a folder: ``series_uid``, or else the largest CT series."""
    progress = progress or no_progress()
    scan = scan_folder(folder, progress)
    if not scan.series:
        broken = [(p, reason) for p, reason in scan.skipped if "unreadable" in reason]
        if broken:
            path, reason = broken[0]
            detail = (f" ({scan.n_files} file(s) looked at; {len(broken)} damaged, e.g. "
                      f"'{path.name}': {reason})")
        elif scan.n_files:
            detail = f" ({scan.n_files} file(s) looked at, none is a DICOM image)"
        else:
            detail = ""
        raise SeriesError(f"No DICOM images found in '{scan.folder}'{detail}.")
    warnings: list[str] = []
    if series_uid is not None:
        chosen = [s for s in scan.series if s.series_uid == series_uid]
        if not chosen:
            raise SeriesError(f"'{scan.folder}' holds no series with UID {series_uid}.")
        info = chosen[0]
    else:
        info = scan.series[0]
        if len(scan.series) > 1:
            label = info.description or f"series {info.series_number}"
            warnings.append(
                f"The folder holds {len(scan.series)} series; the largest CT series "
                f"('{label}', {info.n_images} images) was loaded."
            )
    damaged = [p.name for p, reason in scan.skipped if "unreadable" in reason]
    if damaged:
        names = ", ".join(damaged[:3]) + (" …" if len(damaged) > 3 else "")
        warnings.append(
            f"{len(damaged)} damaged file(s) could not be read and were skipped: {names}."
        )
    # Other non-image files (reports, DICOMDIR-style indexes, ground truth) are normal in
    # DICOM folders: they stay listed in ScanResult.skipped but are not worth a warning,
    # except beside raw datasets, whose folder may hold more files of that kind
    raw = [i for i in info.images if i.raw_dataset]
    if raw:
        not_dicom = sum(1 for _, reason in scan.skipped if reason == "not a DICOM file")
        encodings = " / ".join(sorted({"implicit" if i.transfer_syntax == "1.2.840.10008.1.2"
                                       else "explicit" for i in raw}))
        warnings.append(
            f"{len(raw)} of the {len(info.images)} images have no DICOM preamble or file "
            "meta header (raw datasets, as some older exporters and PACS dumps write them): "
            f"read as {encodings} VR little endian"
            + (f"; {not_dicom} other file(s) are not DICOM and were ignored." if not_dicom
               else ".")
        )
    volume = load_series(info, progress)
    volume.warnings[:0] = warnings
    return volume


def _refuse_non_ct(info: SeriesInfo) -> None:
    where = f"Series '{info.description or info.series_number}' in '{info.folder}'"
    if not info.is_ct:
        raise SeriesError(
            f"{where} is {info.modality or 'of unknown modality'}, not CT: "
            "VertebroPlan plans on CT only."
        )
    colour = [
        i
        for i in info.images
        if i.samples_per_pixel != 1
        or "RGB" in i.photometric
        or "YBR" in i.photometric
        or "PALETTE" in i.photometric
    ]
    if colour:
        raise SeriesError(
            f"{where} has colour (RGB) images, e.g. '{colour[0].path.name}', not CT grey "
            "values (Hounsfield units): it cannot be planned on."
        )


def _unusable_because(image: ImageHeader) -> str:
    """Why an image cannot be placed in the patient or converted to HU ("" if it can)."""
    if image.problem:
        return image.problem
    missing = [name for name, value in (("ImagePositionPatient", image.position_lps),
                                        ("ImageOrientationPatient", image.orientation),
                                        ("PixelSpacing", image.pixel_spacing_mm)) if not value]
    return f"no {'/'.join(missing)}" if missing else ""


def _select_stack(info: SeriesInfo, warnings: list[str]) -> list[ImageHeader]:
    """Drop localizers, images that cannot be used and images whose orientation or size
    differs from the main stack."""
    usable = [i for i in info.images if not _unusable_because(i)]
    if len(usable) < len(info.images):
        bad = next(i for i in info.images if _unusable_because(i))
        example = f"'{bad.path.name}' has {_unusable_because(bad)}"
        if not usable:
            raise SeriesError(
                f"The images in '{info.folder}' cannot be placed in the patient or converted "
                f"to Hounsfield units: {example}."
            )
        warnings.append(
            f"{len(info.images) - len(usable)} image(s) without a usable position, orientation, "
            f"pixel spacing or rescale were ignored ({example})."
        )
    localizers = [i for i in usable if i.is_localizer]
    stack = [i for i in usable if not i.is_localizer]
    if localizers:
        warnings.append(f"{len(localizers)} localizer (scout) image(s) were ignored.")
    if not stack:
        raise SeriesError(f"'{info.folder}' holds only localizer (scout) images, no CT slices.")

    def key(i: ImageHeader) -> tuple[object, ...]:
        assert i.orientation is not None
        return (tuple(np.round(i.orientation, ORIENTATION_DECIMALS)), i.rows, i.columns)

    groups = Counter(key(i) for i in stack)
    main_key, _ = groups.most_common(1)[0]
    odd = [i for i in stack if key(i) != main_key]
    if odd:
        warnings.append(
            f"{len(odd)} image(s) with a different orientation or size (localizer?) were ignored."
        )
    return [i for i in stack if key(i) == main_key]


def _sort_and_dedupe(
    stack: list[ImageHeader], normal: np.ndarray, warnings: list[str]
) -> tuple[list[ImageHeader], np.ndarray]:
    """Sort along the normal; drop images at an already-taken position (first acquisition wins)."""
    stack = sorted(stack, key=lambda i: (i.acquisition_number, i.instance_number, str(i.path)))
    pos = np.array([i.position_lps for i in stack], dtype=np.float64)
    dist = pos @ normal
    order = np.argsort(dist, kind="stable")
    kept: list[int] = []
    for idx in order:
        if kept and abs(dist[idx] - dist[kept[-1]]) < DUPLICATE_TOLERANCE_MM:
            continue
        kept.append(int(idx))
    dropped = len(stack) - len(kept)
    if dropped:
        warnings.append(
            f"{dropped} duplicate image(s) at an already-present position were ignored."
        )
    return [stack[i] for i in kept], pos[kept]


@dataclass(frozen=True)
class SliceGrid:
    """Where each output slice comes from: source indices and interpolation weights."""

    lower: np.ndarray  # index of the source slice below each output slice
    weight: np.ndarray  # weight of the source slice above (0 = exactly on the lower one)
    first_lps: np.ndarray
    step_lps: np.ndarray


def _slice_grid(
    positions: np.ndarray, normal: np.ndarray, info: SeriesInfo, warnings: list[str]
) -> SliceGrid:
    """Uniform slice grid over the sorted positions; fills small gaps, refuses large ones."""
    n = len(positions)
    dist = positions @ normal
    steps = np.diff(dist)
    step = float(np.median(steps))
    if step <= 0:
        raise SeriesError(f"The slices in '{info.folder}' all lie at the same position.")
    # positions must lie on one line (in-plane drift other than a constant tilt is corrupt data)
    line_dir = (positions[-1] - positions[0]) / (dist[-1] - dist[0])
    predicted = positions[0] + np.outer(dist - dist[0], line_dir)
    drift = float(np.max(np.linalg.norm(positions - predicted, axis=1)))
    if drift > max(0.5, 0.25 * step):
        raise SeriesError(
            f"The slice positions in '{info.folder}' do not lie on a straight line "
            f"(up to {drift:.1f} mm off): the series cannot be stacked into a volume."
        )
    uniform = np.all(np.abs(steps - step) <= UNIFORM_TOLERANCE * step + 1e-3)
    if uniform:
        lower = np.arange(n)
        return SliceGrid(lower, np.zeros(n), positions[0], (positions[-1] - positions[0]) / (n - 1))
    big = np.flatnonzero(steps > MAX_GAP_STEPS * step)
    if big.size:
        g = int(big[0])
        raise SeriesError(
            f"Images are missing in '{info.folder}': a gap of {steps[g]:.1f} mm between the "
            f"slices at {dist[g]:.1f} mm and {dist[g + 1]:.1f} mm, where the series' spacing is "
            f"{step:.2f} mm. Re-export the complete series."
        )
    multiples = steps / step
    n_out = round((dist[-1] - dist[0]) / step) + 1
    target = np.linspace(dist[0], dist[-1], n_out)
    lower = np.clip(np.searchsorted(dist, target, side="right") - 1, 0, n - 2)
    weight = np.clip((target - dist[lower]) / (dist[lower + 1] - dist[lower]), 0.0, 1.0)
    if np.allclose(multiples, np.round(multiples), atol=0.05):
        missing = int(np.sum(np.round(multiples) - 1))
        warnings.append(
            f"{missing} slice(s) missing in the series; filled by linear interpolation "
            "between their neighbours — do not plan a needle through the filled slices."
        )
    else:
        warnings.append(
            f"Uneven slice spacing ({steps.min():.2f}–{steps.max():.2f} mm); the series was "
            f"resampled to a uniform {(dist[-1] - dist[0]) / (n_out - 1):.2f} mm."
        )
    step_lps = (positions[-1] - positions[0]) / (n_out - 1)
    return SliceGrid(lower, weight, positions[0], step_lps)


def missing_uid_names(study_uid: str, series_uid: str) -> list[str]:
    """The blank ones, as words: ["Study Instance UID", "Series Instance UID"]."""
    return [f"{name} Instance UID" for name, uid in (("Study", study_uid),
                                                      ("Series", series_uid)) if not uid]


def missing_uid_warning(study_uid: str, series_uid: str) -> str:
    """The load warning for a CT whose Study or Series Instance UID is blank ("" if none).

    Anonymisers leave them so. Said at load, not at the end of a long export: the exports
    then file the plan in a study VertebroPlan creates (`planning.interop.study_uids`).
    """
    names = missing_uid_names(study_uid, series_uid)
    if not names:
        return ""
    return (f"The CT has no {' and '.join(names)} (an anonymiser may have removed "
            f"{'it' if len(names) == 1 else 'them'}): its exports (PDF, SR, SEG, sending) "
            "will be filed in a new study that VertebroPlan creates and keeps in the plan.")


def load_series(info: SeriesInfo, progress: Progress | None = None) -> Volume:
    """Turn one scanned series into a `Volume` (HU, index→LPS affine, UIDs, warnings)."""
    progress = progress or no_progress()
    warnings: list[str] = []
    _refuse_non_ct(info)
    missing = missing_uid_warning(info.study_uid, info.series_uid)
    if missing:
        warnings.append(missing)
    stack = _select_stack(info, warnings)
    first = stack[0]
    assert first.orientation is not None and first.pixel_spacing_mm is not None
    row_dir = np.array(first.orientation[:3])
    col_dir = np.array(first.orientation[3:])
    row_dir /= np.linalg.norm(row_dir)
    col_dir /= np.linalg.norm(col_dir)
    if abs(float(row_dir @ col_dir)) > 1e-3:
        raise SeriesError(
            f"ImageOrientationPatient in '{first.path}' is not orthogonal: the file is corrupt."
        )
    normal = np.cross(row_dir, col_dir)
    stack, positions = _sort_and_dedupe(stack, normal, warnings)
    if len(stack) < 2:
        raise SeriesError(
            f"Series '{info.description or info.series_number}' in '{info.folder}' has only "
            f"{len(stack)} usable image(s); a volume needs at least 2 slices."
        )
    grid = _slice_grid(positions, normal, info, warnings)
    tilt_deg = float(
        np.degrees(
            np.arccos(
                np.clip(abs(grid.step_lps @ normal) / np.linalg.norm(grid.step_lps), -1.0, 1.0)
            )
        )
    )
    if tilt_deg > TILT_WARN_DEG:
        warnings.append(
            f"Gantry tilt of {tilt_deg:.1f}° kept in the geometry (slices are sheared, "
            "not resampled): positions are exact."
        )
    hu, clipped = read_slices(stack, progress, where=f"'{info.folder}'")
    if clipped:
        warnings.append(f"{clipped} pixel(s) outside the 16-bit HU range were clipped.")
    if grid.weight.any() or len(grid.lower) != len(stack):
        lo = hu[grid.lower].astype(np.float32)
        hi = hu[np.minimum(grid.lower + 1, len(stack) - 1)].astype(np.float32)
        w = grid.weight[:, None, None].astype(np.float32)
        hu = np.rint(lo * (1 - w) + hi * w).astype(np.int16)
    affine = affine_from_dicom(
        grid.first_lps, row_dir, col_dir, first.pixel_spacing_mm, grid.step_lps
    )
    patient = info.patient
    instances = dict.fromkeys(  # one per file: the frames of a multi-frame image share it
        SourceInstance(i.sop_class_uid, i.sop_instance_uid) for i in stack if i.sop_instance_uid
    )
    hu.flags.writeable = False  # the patient's CT as read (`planning.io` module doc)
    try:
        return Volume(
            array=hu,
            affine_lps=affine,
            modality="CT",
            study_uid=info.study_uid,
            series_uid=info.series_uid,
            frame_of_reference_uid=first.frame_of_reference_uid,
            patient=patient,
            source=str(info.folder),
            warnings=warnings,
            source_instances=tuple(instances),
        )
    except SeriesError as exc:  # a degenerate grid: say which series it is
        raise SeriesError(
            f"The geometry of series '{info.description or info.series_number}' in "
            f"'{info.folder}' cannot be used ({exc}): its headers are corrupt."
        ) from exc


def source_files(volume: Volume, progress: Progress | None = None) -> list[Path]:
    """The DICOM files of ``volume``'s own images, found again in the folder it came from
    (to send the CT with the plan, so the angio workstation has the images the plan's
    coordinates refer to).

    Raises `SeriesError` naming the folder when the volume did not come from DICOM files
    or its images are no longer all there.
    """
    wanted = {i.sop_instance_uid for i in volume.source_instances}
    if not wanted or not volume.source or not Path(volume.source).is_dir():
        raise SeriesError(f"{volume.source or 'This CT'}: the CT did not come from a DICOM "
                          "folder, so its images cannot be sent.")
    scan = scan_folder(volume.source, progress)
    files = {img.path: img.sop_instance_uid for s in scan.series
             if s.series_uid == volume.series_uid for img in s.images
             if img.sop_instance_uid in wanted}
    missing = len(wanted - set(files.values()))
    if missing:
        raise SeriesError(f"{volume.source}: {missing} of the CT's {len(wanted)} images are no "
                          "longer in the folder; the CT cannot be sent whole.")
    return sorted(files)
