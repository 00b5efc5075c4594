"""Builders for a corpus of real DICOM and NIfTI files with known geometry and known quirks.

Every builder writes real files (pydicom ``FileDataset`` saved with a file meta header, or
dcmtk's command-line codecs) so the loader under test reads exactly what a scanner or a PACS
export would hand it. Nothing here imports the loader: the expected values are computed by
hand from ImagePositionPatient + ImageOrientationPatient + PixelSpacing.

Conventions (the same as ``planning.volume``):

* HU arrays are ``hu[k, j, i]`` = (slice, row, column) in the order the slices are *given*
  (which is also the order of the files written, not necessarily the spatial order).
* ``iop`` is ImageOrientationPatient: ``iop[0:3]`` is the row direction (i increases),
  ``iop[3:6]`` the column direction (j increases).
* ``pixel_spacing`` is DICOM PixelSpacing: (row spacing = along j, column spacing = along i).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from numpy.typing import ArrayLike, NDArray
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.uid import (
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)

from planning.volume import Volume

ENHANCED_CT_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.2.1")
JPEG_XL_UID = "1.2.840.10008.1.2.4.110"  # JPEG XL, newer than any decoder pydicom 3.0 knows
IMPLEMENTATION_UID = "1.2.826.0.1.3680043.10.1389.99"

AXIAL_IOP: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
CORONAL_IOP: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)
ROWS, COLS, NSLICES = 24, 32, 20
SHAPE = (NSLICES, ROWS, COLS)  # the default series, (slice, row, column)
PIXEL_SPACING: tuple[float, float] = (0.8, 0.6)  # (between rows, between columns), mm

FloatArray = NDArray[np.float64]


# ---- small geometry helpers ---------------------------------------------------------------
def ds_str(value: float) -> str:
    """A float as a DICOM Decimal String (at most 16 characters)."""
    s = f"{value:.10g}"
    if len(s) > 16:
        s = f"{value:.8e}"
    return s


def normal_of(iop: Sequence[float]) -> FloatArray:
    """Unit slice normal = row direction × column direction."""
    r = np.asarray(iop[:3], dtype=np.float64)
    c = np.asarray(iop[3:6], dtype=np.float64)
    n = np.cross(r, c)
    return n / np.linalg.norm(n)


def rotated_iop(axis: str, angle_deg: float) -> tuple[float, ...]:
    """ImageOrientationPatient of an axial image rotated by ``angle_deg`` about the LPS axis."""
    a = np.deg2rad(angle_deg)
    c, s = np.cos(a), np.sin(a)
    if axis == "z":
        rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    elif axis == "x":
        rot = np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
    else:
        raise ValueError(f"axis must be 'x' or 'z', got {axis!r}")
    row = rot @ np.array([1.0, 0.0, 0.0])
    col = rot @ np.array([0.0, 1.0, 0.0])
    return (*row.tolist(), *col.tolist())


def stacked_positions(
    origin_lps: ArrayLike, step_lps: ArrayLike, n: int
) -> list[FloatArray]:
    """ImagePositionPatient of ``n`` slices: ``origin + k * step``."""
    o = np.asarray(origin_lps, dtype=np.float64)
    s = np.asarray(step_lps, dtype=np.float64)
    return [o + k * s for k in range(n)]


def voxel_lps(
    ipp: ArrayLike, iop: Sequence[float], pixel_spacing: Sequence[float], i: float, j: float
) -> FloatArray:
    """LPS mm of pixel (column i, row j) of the slice at ``ipp``, straight from PS3.3 C.7.6.2."""
    p = np.asarray(ipp, dtype=np.float64)
    row_dir = np.asarray(iop[:3], dtype=np.float64)
    col_dir = np.asarray(iop[3:6], dtype=np.float64)
    return p + i * pixel_spacing[1] * row_dir + j * pixel_spacing[0] * col_dir


@dataclass(frozen=True)
class Marker:
    """A voxel given a distinctive HU value: slice index into the *given* slices, row, column."""

    k: int
    j: int
    i: int
    hu: int


DEFAULT_MARKERS: tuple[Marker, ...] = (
    Marker(k=3, j=5, i=7, hu=3001),
    Marker(k=12, j=17, i=25, hu=2802),
    Marker(k=7, j=20, i=3, hu=2603),
    Marker(k=16, j=2, i=29, hu=2404),
)
"""Four markers that are not coplanar in (i, j, k), so together they pin down the affine."""


def marked_hu(
    shape_kji: tuple[int, int, int],
    markers: Sequence[Marker] = DEFAULT_MARKERS,
    background: int = 40,
) -> NDArray[np.int16]:
    """A soft-tissue block with a few marker voxels whose values occur nowhere else."""
    hu = np.full(shape_kji, background, dtype=np.int16)
    for m in markers:
        hu[m.k, m.j, m.i] = m.hu
    return hu


def ramp_hu(z_mm: Sequence[float], rows: int = ROWS, cols: int = COLS) -> NDArray[np.int16]:
    """HU that is linear in position: ``10·z + 2·i + 3·j``, so linear interpolation is exact."""
    z = np.asarray(z_mm, dtype=np.float64)[:, None, None]
    j = np.arange(rows, dtype=np.float64)[None, :, None]
    i = np.arange(cols, dtype=np.float64)[None, None, :]
    return np.rint(10.0 * z + 2.0 * i + 3.0 * j).astype(np.int16)


def ramp_value(z_mm: float, i: int, j: int) -> float:
    """The continuous value of `ramp_hu` at one point."""
    return 10.0 * z_mm + 2.0 * i + 3.0 * j


# ---- series UIDs and patient -------------------------------------------------------------
@dataclass(frozen=True)
class SeriesUIDs:
    study_uid: str
    series_uid: str
    frame_of_reference_uid: str

    @classmethod
    def new(cls, study_uid: str | None = None) -> SeriesUIDs:
        return cls(study_uid or generate_uid(), generate_uid(), generate_uid())


def _file_dataset(path: Path, sop_class: str, sop_uid: str, transfer_syntax: str) -> FileDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = IMPLEMENTATION_UID
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    return ds


def _common_attributes(
    ds: Dataset, uids: SeriesUIDs, modality: str, series_number: int, description: str
) -> None:
    now = _dt.datetime(2024, 3, 14, 9, 26, 53)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.Modality = modality
    ds.Manufacturer = "CorpusScanner"
    ds.ManufacturerModelName = "Test 64"
    ds.InstitutionName = "Test Hospital"
    ds.PatientName = "Test^Patient"
    ds.PatientID = "TP-0001"
    ds.PatientBirthDate = "19500101"
    ds.PatientSex = "F"
    ds.StudyDate = now.strftime("%Y%m%d")
    ds.StudyTime = now.strftime("%H%M%S")
    ds.SeriesDate = ds.StudyDate
    ds.SeriesTime = ds.StudyTime
    ds.ContentDate = ds.StudyDate
    ds.ContentTime = ds.StudyTime
    ds.AccessionNumber = "ACC0001"
    ds.ReferringPhysicianName = ""
    ds.StudyID = "1"
    ds.StudyDescription = "Spine"
    ds.SeriesDescription = description
    ds.StudyInstanceUID = uids.study_uid
    ds.SeriesInstanceUID = uids.series_uid
    ds.FrameOfReferenceUID = uids.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.SeriesNumber = series_number
    ds.PatientPosition = "FFS"
    ds.BodyPartExamined = "SPINE"


def stored_from_hu(
    hu: ArrayLike, slope: float, intercept: float, signed: bool
) -> NDArray[np.integer]:
    """Stored pixel values that give exactly ``hu`` through the rescale (refuses inexact cases)."""
    h = np.asarray(hu, dtype=np.float64)
    stored = (h - intercept) / slope
    if not np.allclose(stored, np.rint(stored), atol=1e-9):
        raise ValueError("these HU cannot be stored exactly with this slope and intercept")
    stored = np.rint(stored)
    dtype = np.int16 if signed else np.uint16
    info = np.iinfo(dtype)
    if stored.min() < info.min or stored.max() > info.max:
        raise ValueError(f"stored values {stored.min()}..{stored.max()} do not fit {dtype}")
    return stored.astype(dtype)


# ---- single-frame series -----------------------------------------------------------------
def ct_slice_dataset(
    path: Path,
    hu_2d: ArrayLike,
    ipp: ArrayLike,
    *,
    iop: Sequence[float] = AXIAL_IOP,
    pixel_spacing: Sequence[float] = PIXEL_SPACING,
    uids: SeriesUIDs,
    instance_number: int = 1,
    slope: float | None = 1.0,
    intercept: float = -1024.0,
    signed: bool = False,
    bits_stored: int = 16,
    modality: str = "CT",
    sop_class: str = CTImageStorage,
    image_type: Sequence[str] = ("ORIGINAL", "PRIMARY", "AXIAL"),
    slice_thickness: float = 2.0,
    series_number: int = 1,
    description: str = "Spine 2.0",
) -> FileDataset:
    """One single-frame CT (or MR) image, not yet saved. ``slope=None`` writes no rescale."""
    sop_uid = generate_uid()
    ds = _file_dataset(path, sop_class, sop_uid, ExplicitVRLittleEndian)
    _common_attributes(ds, uids, modality, series_number, description)
    ds.ImageType = list(image_type)
    ds.InstanceNumber = instance_number
    ds.AcquisitionNumber = 1
    if modality == "CT":
        ds.KVP = "120"
        ds.ConvolutionKernel = "B30f"
    p = np.asarray(ipp, dtype=np.float64)
    ds.ImagePositionPatient = [ds_str(v) for v in p]
    ds.ImageOrientationPatient = [ds_str(v) for v in iop]
    ds.PixelSpacing = [ds_str(v) for v in pixel_spacing]
    ds.SliceThickness = ds_str(slice_thickness)
    ds.SliceLocation = ds_str(float(np.dot(p, normal_of(iop))))
    stored = stored_from_hu(hu_2d, slope if slope is not None else 1.0,
                            intercept if slope is not None else 0.0, signed)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = int(stored.shape[0]), int(stored.shape[1])
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    if slope is not None:
        ds.RescaleIntercept = ds_str(intercept)
        ds.RescaleSlope = ds_str(slope)
        ds.RescaleType = "HU"
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    ds.PixelData = np.ascontiguousarray(stored).tobytes()
    return ds


def save(ds: FileDataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def write_ct_series(
    folder: str | Path,
    hu_kji: ArrayLike,
    positions: Sequence[ArrayLike],
    iop: Sequence[float] = AXIAL_IOP,
    pixel_spacing: Sequence[float] = PIXEL_SPACING,
    *,
    uids: SeriesUIDs | None = None,
    instance_numbers: Sequence[int] | None = None,
    slope: float | None = 1.0,
    intercept: float | Sequence[float] = -1024.0,
    signed: bool = False,
    bits_stored: int = 16,
    modality: str = "CT",
    sop_class: str = CTImageStorage,
    slice_thickness: float | None = None,
    series_number: int = 1,
    description: str = "Spine 2.0",
    prefix: str = "CT",
    extension: str = ".dcm",
) -> list[Path]:
    """Write one file per given slice, in the given order (``{prefix}{n:04d}{extension}``).

    ``intercept`` may be one value per slice. ``slice_thickness`` defaults to the distance
    between the first two positions; pass a wrong value to prove the loader ignores it.
    Returns the paths in the given slice order.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    hu = np.asarray(hu_kji)
    nk = hu.shape[0]
    if len(positions) != nk:
        raise ValueError(f"{nk} slices but {len(positions)} positions")
    uids = uids or SeriesUIDs.new()
    numbers = list(instance_numbers) if instance_numbers is not None else list(range(1, nk + 1))
    intercepts = (
        [float(v) for v in intercept]
        if isinstance(intercept, Sequence)
        else [float(intercept)] * nk
    )
    if slice_thickness is None:
        slice_thickness = (
            float(np.linalg.norm(np.subtract(positions[1], positions[0]))) if nk > 1 else 1.0
        )
    paths = []
    for k in range(nk):
        path = out / f"{prefix}{k:04d}{extension}"
        ds = ct_slice_dataset(
            path, hu[k], positions[k], iop=iop, pixel_spacing=pixel_spacing, uids=uids,
            instance_number=numbers[k], slope=slope, intercept=intercepts[k], signed=signed,
            bits_stored=bits_stored, modality=modality, sop_class=sop_class,
            slice_thickness=slice_thickness, series_number=series_number,
            description=description,
        )
        paths.append(save(ds, path))
    return paths


def write_axial_series(
    folder: str | Path,
    n: int = NSLICES,
    *,
    rows: int = ROWS,
    cols: int = COLS,
    step_mm: float = 2.0,
    origin_lps: Sequence[float] = (-10.0, -8.0, 100.0),
    hu: ArrayLike | None = None,
    **kwargs: object,
) -> tuple[list[Path], NDArray[np.int16], list[FloatArray]]:
    """A plain axial series (rows × cols, ``n`` slices); returns (paths, hu, positions)."""
    positions = stacked_positions(origin_lps, (0.0, 0.0, step_mm), n)
    hu_arr = (
        np.asarray(hu, dtype=np.int16)
        if hu is not None
        else ramp_hu([p[2] for p in positions], rows, cols)
    )
    paths = write_ct_series(folder, hu_arr, positions, **kwargs)  # type: ignore[arg-type]
    return paths, hu_arr, positions


def write_mr_series(folder: str | Path, n: int = 25, **kwargs: object) -> list[Path]:
    """An axial MR series (MR Image Storage, no rescale) of ``n`` slices."""
    positions = stacked_positions((-10.0, -8.0, 80.0), (0.0, 0.0, 3.0), n)
    hu = np.full((n, ROWS, COLS), 300, dtype=np.int16)
    kwargs.setdefault("description", "T2 sag")
    kwargs.setdefault("prefix", "MR")
    return write_ct_series(
        folder, hu, positions, modality="MR", sop_class=MRImageStorage, slope=None,
        **kwargs,  # type: ignore[arg-type]
    )


def copy_with_new_sop_uid(src: Path, dst: Path) -> Path:
    """A copy of an image that a PACS re-sent with a new SOPInstanceUID (same position)."""
    ds = pydicom.dcmread(src)
    uid = generate_uid()
    ds.SOPInstanceUID = uid
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.save_as(dst, enforce_file_format=True)
    return dst


def write_localizer(path: Path, uids: SeriesUIDs, instance_number: int = 99) -> Path:
    """A lateral-ish coronal scout in the same series, ImageType LOCALIZER, its own size."""
    hu = np.full((64, 48), -200, dtype=np.int16)
    ds = ct_slice_dataset(
        path, hu, (-20.0, 0.0, 150.0), iop=CORONAL_IOP, pixel_spacing=(1.5, 1.2), uids=uids,
        instance_number=instance_number, image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"),
        slice_thickness=1.0,
    )
    return save(ds, path)


def write_rgb_series(folder: str | Path, n: int = 4) -> list[Path]:
    """A CT-labelled series of RGB images (e.g. a colour screenshot sent as CT)."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    uids = SeriesUIDs.new()
    paths = []
    for k in range(n):
        path = out / f"RGB{k:04d}.dcm"
        ds = _file_dataset(path, CTImageStorage, generate_uid(), ExplicitVRLittleEndian)
        _common_attributes(ds, uids, "CT", 7, "Colour render")
        ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [ds_str(v) for v in (0.0, 0.0, 2.0 * k)]
        ds.ImageOrientationPatient = [ds_str(v) for v in AXIAL_IOP]
        ds.PixelSpacing = ["0.8", "0.6"]
        ds.SliceThickness = "2"
        ds.SamplesPerPixel = 3
        ds.PlanarConfiguration = 0
        ds.PhotometricInterpretation = "RGB"
        ds.Rows, ds.Columns = ROWS, COLS
        ds.BitsAllocated = 8
        ds.BitsStored = 8
        ds.HighBit = 7
        ds.PixelRepresentation = 0
        rgb = np.zeros((ROWS, COLS, 3), dtype=np.uint8)
        rgb[..., 0] = 200
        rgb[..., 2] = 30 * k
        ds.PixelData = rgb.tobytes()
        paths.append(save(ds, path))
    return paths


# ---- checks shared by the test files ------------------------------------------------------
def assert_markers(
    volume: Volume,
    positions: Sequence[ArrayLike],
    iop: Sequence[float] = AXIAL_IOP,
    pixel_spacing: Sequence[float] = PIXEL_SPACING,
    markers: Sequence[Marker] = DEFAULT_MARKERS,
    tol_mm: float = 1e-3,
) -> None:
    """Each marker occurs exactly once in the volume, at the LPS point computed by hand
    (by default the markers `marked_hu` writes, in a series written with the default
    pixel spacing)."""
    for m in markers:
        hits = np.argwhere(volume.array == m.hu)
        assert len(hits) == 1, f"marker {m.hu} HU found {len(hits)} times, expected once"
        k, j, i = (int(v) for v in hits[0])
        expected = voxel_lps(positions[m.k], iop, pixel_spacing, m.i, m.j)
        got = volume.to_lps([i, j, k])
        assert np.allclose(got, expected, atol=tol_mm), (
            f"marker {m.hu} HU at LPS {got.round(4).tolist()}, "
            f"expected {expected.round(4).tolist()}"
        )
        assert volume.hu_at(expected) == m.hu


def assert_slices_match(
    volume: Volume,
    hu_kji: ArrayLike,
    positions: Sequence[ArrayLike],
    tol_mm: float = 1e-3,
) -> None:
    """Every loaded slice sits at one of the written positions and holds that slice's HU.

    Independent of the order the loader sorts in: slice k is matched to a written slice by
    the LPS position of its first voxel. Every written slice must be used exactly once.
    """
    hu = np.asarray(hu_kji)
    pos = np.asarray(positions, dtype=np.float64)
    assert volume.array.shape == hu.shape, (
        f"volume shape {volume.array.shape}, expected {hu.shape}"
    )
    used: list[int] = []
    for k in range(volume.array.shape[0]):
        origin = volume.to_lps([0.0, 0.0, float(k)])
        d = np.linalg.norm(pos - origin, axis=1)
        src = int(np.argmin(d))
        assert d[src] < tol_mm, f"loaded slice {k} at {origin.round(3).tolist()} was not written"
        np.testing.assert_array_equal(volume.array[k], hu[src], err_msg=f"slice {k}")
        used.append(src)
    assert sorted(used) == list(range(hu.shape[0]))


def assert_marked_series(
    volume: Volume,
    hu_kji: ArrayLike,
    positions: Sequence[ArrayLike],
    iop: Sequence[float] = AXIAL_IOP,
) -> None:
    """A `marked_hu` series written with the default pixel spacing came back whole: every
    slice where it was written (`assert_slices_match`), every marker at its LPS point
    (`assert_markers`)."""
    assert_markers(volume, positions, iop)
    assert_slices_match(volume, hu_kji, positions)


def warning_with(volume: Volume, *fragments: str) -> str:
    """The first warning containing every fragment (case-insensitive); fails if none does."""
    for w in volume.warnings:
        if all(f.lower() in w.lower() for f in fragments):
            return w
    raise AssertionError(f"no warning mentions {fragments}; warnings: {volume.warnings}")


def assert_names(message: str, *paths: Path) -> None:
    """The message names at least one of the given files or folders."""
    assert any(p.name in message for p in paths), (
        f"message does not name any of {[p.name for p in paths]}: {message!r}"
    )
