"""Write a `Volume` as a real single-frame CT Image Storage series.

Used by the demo-CT generator (so the demo exercises the real loader) and by tests that
need series with known geometry: flipped, oblique, tilted. Geometry is written only as
ImagePositionPatient / ImageOrientationPatient / PixelSpacing, as a scanner would.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from planning.errors import SeriesError
from planning.volume import PatientInfo, Volume

# Under pydicom's UID root; derived, so stable across runs and machines.
IMPLEMENTATION_UID = generate_uid(entropy_srcs=["VertebroPlan implementation class"])
SOFTWARE_NAME = "VertebroPlan"


def _ds(value: float) -> str:
    """Format a float as a DICOM Decimal String (at most 16 characters)."""
    s = f"{value:.10g}"
    if len(s) > 16:
        s = f"{value:.6e}"
    return s


def new_uids() -> dict[str, str]:
    """Fresh Study, Series and Frame of Reference UIDs."""
    return {
        "study_uid": generate_uid(),
        "series_uid": generate_uid(),
        "frame_of_reference_uid": generate_uid(),
    }


def write_series(
    volume: Volume,
    out_dir: str | Path,
    *,
    series_description: str = "VertebroPlan series",
    series_number: int = 1,
    instance_order: Sequence[int] | None = None,
    file_prefix: str = "IM",
    rescale_slope: float = 1.0,
    rescale_intercept: float = -1024.0,
) -> list[Path]:
    """Write every slice of ``volume`` as one DICOM file in ``out_dir``.

    The pixel data is stored as unsigned 16-bit with RescaleIntercept -1024 (as most CT
    scanners do), so writing and reading back also exercises the rescale path.
    ``instance_order`` permutes InstanceNumber to prove that the loader does not trust it.
    Returns the written paths in slice order.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    a = volume.affine_lps
    sp = volume.spacing_mm
    row_dir = a[:3, 0] / sp[0]
    col_dir = a[:3, 1] / sp[1]
    if abs(float(np.dot(row_dir, col_dir))) > 1e-6:
        raise SeriesError("cannot write DICOM: the row and column axes are not orthogonal")
    study_uid = volume.study_uid or generate_uid()
    series_uid = volume.series_uid or generate_uid()
    for_uid = volume.frame_of_reference_uid or generate_uid()
    p: PatientInfo = volume.patient
    now = _dt.datetime.now()
    nk = volume.array.shape[0]
    order = list(instance_order) if instance_order is not None else list(range(nk))
    stored = (volume.array.astype(np.float64) - rescale_intercept) / rescale_slope
    stored = np.rint(stored)
    unsigned = stored.min() >= 0 and stored.max() <= 65535
    if not unsigned and (stored.min() < -32768 or stored.max() > 32767):
        raise SeriesError("cannot write DICOM: HU values do not fit 16 bits with this rescale")
    pixel_dtype = np.uint16 if unsigned else np.int16
    stored_px = stored.astype(pixel_dtype)
    paths: list[Path] = []
    for k in range(nk):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        sop_uid = generate_uid()
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = IMPLEMENTATION_UID
        path = out / f"{file_prefix}{k:05d}.dcm"
        ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = sop_uid
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.Modality = volume.modality or "CT"
        ds.Manufacturer = SOFTWARE_NAME
        ds.SoftwareVersions = "0.1"
        ds.PatientName = p.name
        ds.PatientID = p.patient_id
        ds.PatientBirthDate = p.birth_date
        ds.PatientSex = p.sex
        ds.StudyDate = p.study_date or now.strftime("%Y%m%d")
        ds.StudyTime = p.study_time or now.strftime("%H%M%S")
        ds.StudyDescription = p.study_description
        ds.SeriesDescription = series_description
        ds.AccessionNumber = p.accession_number
        ds.ReferringPhysicianName = p.referring_physician
        ds.StudyID = p.study_id or "1"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = for_uid
        ds.PositionReferenceIndicator = ""
        ds.SeriesNumber = series_number
        ds.InstanceNumber = order[k] + 1
        ds.AcquisitionNumber = 1
        ds.KVP = "120"
        position = a[:3, 3] + k * a[:3, 2]
        ds.ImagePositionPatient = [_ds(v) for v in position]
        ds.ImageOrientationPatient = [_ds(v) for v in (*row_dir, *col_dir)]
        ds.PixelSpacing = [_ds(sp[1]), _ds(sp[0])]
        ds.SliceThickness = _ds(float(np.linalg.norm(a[:3, 2])))
        normal = np.cross(row_dir, col_dir)
        ds.SliceLocation = _ds(float(np.dot(position, normal)))
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = int(volume.array.shape[1]), int(volume.array.shape[2])
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 0 if unsigned else 1
        ds.RescaleIntercept = _ds(rescale_intercept)
        ds.RescaleSlope = _ds(rescale_slope)
        ds.RescaleType = "HU"
        ds.WindowCenter = "300"
        ds.WindowWidth = "1500"
        ds.PixelData = np.ascontiguousarray(stored_px[k]).tobytes()
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def read_back_positions(paths: Sequence[Path]) -> np.ndarray:
    """ImagePositionPatient of each file (helper for tests and the round-trip check)."""
    return np.array(
        [
            [float(v) for v in pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient]
            for p in paths
        ]
    )
