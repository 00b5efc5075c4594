"""Reading the headers of DICOM files into small, picklable per-image records.

Scanning a folder parses each file's header exactly once; the records keep what loading
needs (geometry, rescale, pixel layout and the byte offset of uncompressed pixel data), so
loading a series never parses a header again.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID

from planning.volume import PatientInfo

ENHANCED_CT = "1.2.840.10008.5.1.4.1.1.2.1"
LEGACY_ENHANCED_CT = "1.2.840.10008.5.1.4.1.1.2.2"
CT_SOP_CLASSES = {"1.2.840.10008.5.1.4.1.1.2", ENHANCED_CT, LEGACY_ENHANCED_CT}
PIXEL_DATA_TAG = 0x7FE00010
_TEXT_VRS = {"CS", "DS", "IS", "UI", "LO", "SH", "DA", "TM", "PN", "ST", "LT"}
_KEYWORDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "StudyDescription",
    "SeriesDescription",
    "AccessionNumber",
    "ReferringPhysicianName",
    "StudyID",
    "InstitutionName",
    "SOPClassUID",
    "SOPInstanceUID",
    "SeriesInstanceUID",
    "StudyInstanceUID",
    "FrameOfReferenceUID",
    "Modality",
    "SeriesNumber",
    "InstanceNumber",
    "AcquisitionNumber",
    "ImageType",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "SliceThickness",
    "Rows",
    "Columns",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "BitsAllocated",
    "BitsStored",
    "PixelRepresentation",
    "RescaleSlope",
    "RescaleIntercept",
    "NumberOfFrames",
)
_TAGS = {k: int(tag_for_keyword(k) or 0) for k in _KEYWORDS}
_IMPLICIT_VR = {k: dictionary_VR(_TAGS[k]) for k in _KEYWORDS}

# What pydicom raises on damaged files (truncated, garbage lengths, wrong VRs).
PARSE_ERRORS = (
    ValueError,
    EOFError,
    struct.error,
    KeyError,
    TypeError,
    AttributeError,
    IndexError,
    NotImplementedError,
    OverflowError,
    UnicodeDecodeError,
    MemoryError,
)
NATIVE_LITTLE_ENDIAN = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}


@dataclass(frozen=True)
class ImageHeader:
    """What loading needs from one image: a single-frame file, or one frame of a multi-frame.

    Positions and directions are DICOM patient coordinates (LPS, mm).
    """

    path: Path
    frame: int | None
    sop_class_uid: str
    series_uid: str
    study_uid: str
    frame_of_reference_uid: str
    modality: str
    series_description: str
    series_number: int
    instance_number: int
    acquisition_number: int
    image_type: tuple[str, ...]
    position_lps: tuple[float, float, float] | None
    orientation: tuple[float, float, float, float, float, float] | None
    pixel_spacing_mm: tuple[float, float] | None  # (between rows, between columns)
    slice_thickness_mm: float | None
    rows: int
    columns: int
    samples_per_pixel: int
    photometric: str
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    rescale_slope: float
    rescale_intercept: float
    transfer_syntax: str
    pixel_offset: int | None  # byte offset of raw native pixel data, None if not native
    number_of_frames: int
    sop_instance_uid: str = ""  # shared by every frame of a multi-frame image

    @property
    def is_localizer(self) -> bool:
        """Scout/topogram images that share a series with the axial stack."""
        words = {w.upper() for w in self.image_type}
        return bool(words & {"LOCALIZER", "SCOUT", "TOPOGRAM"})


@dataclass(frozen=True)
class ScanItem:
    """The result of reading one file: its images, or why it was skipped."""

    path: Path
    images: tuple[ImageHeader, ...] = ()
    skipped_reason: str | None = None


def _raw_value(ds: Any, keyword: str) -> Any:
    """The value of a top-level element, decoding plain text and US values ourselves.

    pydicom converts values through a general hook chain that costs more than the whole
    parse for a CT header; for the few text and US elements a series needs, decoding the
    raw bytes directly is exact and several times faster. Anything unusual falls back to
    pydicom's own conversion.
    """
    tag = _TAGS[keyword]
    raw = ds._dict.get(tag)
    if raw is None:
        return None
    if isinstance(raw, RawDataElement) and ds.is_little_endian and raw.value is not None:
        vr = raw.VR or _IMPLICIT_VR.get(keyword)
        if vr in _TEXT_VRS:
            text = raw.value.decode("latin-1").strip(" \0")
            parts = [t.strip(" \0") for t in text.split("\\")]
            return parts if len(parts) > 1 else parts[0]
        if vr == "US" and len(raw.value) == 2:
            return struct.unpack("<H", raw.value)[0]
    return ds.get(keyword)


def _str(ds: Any, keyword: str, default: str = "") -> str:
    value = _raw_value(ds, keyword)
    if value is None:
        return default
    return "\\".join(str(v) for v in value) if isinstance(value, list) else str(value)


def _int(ds: Any, keyword: str, default: int = 0) -> int:
    value = _raw_value(ds, keyword)
    try:
        return int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


def _float(value: Any, default: float | None = None) -> float | None:
    try:
        return float(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


def _floats(value: Any, n: int) -> tuple[float, ...] | None:
    if value is None:
        return None
    if isinstance(value, str | bytes | int | float):
        value = [value]
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return out if len(out) == n else None


def _image_type(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def patient_info(ds: Any) -> PatientInfo:
    """The identifying and descriptive attributes a report or the SR will need later.

    Read through pydicom's own conversion so that SpecificCharacterSet is honoured.
    """

    def text(keyword: str) -> str:
        value = ds.get(keyword)
        return "" if value is None else str(value)

    return PatientInfo(
        name=text("PatientName"),
        patient_id=text("PatientID"),
        birth_date=text("PatientBirthDate"),
        sex=text("PatientSex"),
        study_date=text("StudyDate"),
        study_time=text("StudyTime"),
        study_description=text("StudyDescription"),
        series_description=text("SeriesDescription"),
        accession_number=text("AccessionNumber"),
        referring_physician=text("ReferringPhysicianName"),
        study_id=text("StudyID"),
        institution=text("InstitutionName"),
    )


def read_patient_info(path: Path) -> PatientInfo:
    """Patient and study attributes of one file (read once per series, not per image)."""
    try:
        return patient_info(pydicom.dcmread(path, stop_before_pixels=True))
    except (OSError, InvalidDicomError, *PARSE_ERRORS):
        return PatientInfo()


def _native_pixel_offset(fp: Any, ts: str, expected_bytes: int) -> int | None:
    """Byte offset of uncompressed pixel data, read from the element header at ``fp``.

    pydicom stops *before* the Pixel Data element when asked to, leaving the file position
    at its tag; reading its length here lets loading read the raw bytes directly.
    """
    if ts not in NATIVE_LITTLE_ENDIAN:
        return None
    start = fp.tell()
    head = fp.read(12)
    if len(head) < 8:
        return None
    group, element = struct.unpack("<HH", head[:4])
    if (group << 16 | element) != PIXEL_DATA_TAG:
        return None
    if ts == "1.2.840.10008.1.2":  # implicit VR: tag + 4-byte length
        (length,) = struct.unpack("<I", head[4:8])
        offset = start + 8
    else:  # explicit VR OB/OW: tag + VR + 2 reserved + 4-byte length
        (length,) = struct.unpack("<I", head[8:12])
        offset = start + 12
    if length == 0xFFFFFFFF or length < expected_bytes:
        return None
    return offset


def _frame_headers(ds: Any, base: dict[str, Any]) -> tuple[ImageHeader, ...]:
    """One ImageHeader per frame of an Enhanced (multi-frame) CT image."""
    n = _int(ds, "NumberOfFrames", 1)
    shared = ds.get("SharedFunctionalGroupsSequence")
    shared_item = shared[0] if shared else None
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []

    def group(item: Any, seq: str) -> Any:
        if item is None:
            return None
        s = item.get(seq)
        return s[0] if s else None

    out = []
    for f in range(n):
        frame_item = per_frame[f] if f < len(per_frame) else None

        def pick(seq: str, fi: Any = frame_item) -> Any:
            return group(fi, seq) or group(shared_item, seq)

        pos = pick("PlanePositionSequence")
        ori = pick("PlaneOrientationSequence")
        meas = pick("PixelMeasuresSequence")
        trans = pick("PixelValueTransformationSequence")
        ftype = pick("CTImageFrameTypeSequence")
        image_type = base["image_type"]
        if ftype is not None and ftype.get("FrameType") is not None:
            image_type = tuple(str(v) for v in ftype.FrameType)
        out.append(
            ImageHeader(
                **{
                    **base,
                    "frame": f,
                    "image_type": image_type,
                    "position_lps": _floats(pos.get("ImagePositionPatient") if pos else None, 3),
                    "orientation": _floats(ori.get("ImageOrientationPatient") if ori else None, 6),
                    "pixel_spacing_mm": _floats(meas.get("PixelSpacing") if meas else None, 2),
                    "slice_thickness_mm": _float(meas.get("SliceThickness") if meas else None),
                    "rescale_slope": _float(trans.get("RescaleSlope") if trans else None, 1.0)
                    or 1.0,
                    "rescale_intercept": _float(
                        trans.get("RescaleIntercept") if trans else None, 0.0
                    )
                    or 0.0,
                    "instance_number": f + 1,
                }
            )
        )
    return tuple(out)


def read_header(path: Path) -> ScanItem:
    """Parse one file's header; never raises for bad files, it says why they were skipped."""
    try:
        with open(path, "rb") as fp:
            try:
                ds = pydicom.dcmread(fp, stop_before_pixels=True)
            except InvalidDicomError:
                return ScanItem(path, skipped_reason="not a DICOM file")
            ts = str(ds.file_meta.get("TransferSyntaxUID", "1.2.840.10008.1.2"))
            rows, cols = _int(ds, "Rows"), _int(ds, "Columns")
            spp = _int(ds, "SamplesPerPixel", 1)
            bits = _int(ds, "BitsAllocated", 16)
            n_frames = _int(ds, "NumberOfFrames", 1)
            # pydicom returns a partial dataset for a file cut inside its header, without
            # an error: ending exactly where the parser stopped is how truncation shows.
            deflated = ts == "1.2.840.10008.1.2.1.99"  # fp position is not the dataset's
            at_eof = not deflated and fp.tell() >= os.fstat(fp.fileno()).st_size
            offset = _native_pixel_offset(fp, ts, rows * cols * spp * bits // 8 * n_frames)
    except OSError as exc:
        return ScanItem(path, skipped_reason=f"unreadable ({exc.strerror or exc})")
    except PARSE_ERRORS as exc:
        return ScanItem(
            path, skipped_reason=f"unreadable or truncated DICOM ({type(exc).__name__})"
        )
    sop_class = _str(ds, "SOPClassUID")
    if at_eof:
        return ScanItem(
            path,
            skipped_reason="unreadable or truncated DICOM (the file ends before its pixel data)",
        )
    if rows == 0 or cols == 0:
        name = UID(sop_class).name if sop_class else "unknown object"
        return ScanItem(path, skipped_reason=f"DICOM but not an image ({name})")
    base: dict[str, Any] = {
        "path": path,
        "frame": None,
        "sop_class_uid": sop_class,
        "sop_instance_uid": _str(ds, "SOPInstanceUID"),
        "series_uid": _str(ds, "SeriesInstanceUID"),
        "study_uid": _str(ds, "StudyInstanceUID"),
        "frame_of_reference_uid": _str(ds, "FrameOfReferenceUID"),
        "modality": _str(ds, "Modality").upper(),
        "series_description": _str(ds, "SeriesDescription"),
        "series_number": _int(ds, "SeriesNumber"),
        "instance_number": _int(ds, "InstanceNumber"),
        "acquisition_number": _int(ds, "AcquisitionNumber"),
        "image_type": _image_type(_raw_value(ds, "ImageType")),
        "position_lps": _floats(_raw_value(ds, "ImagePositionPatient"), 3),
        "orientation": _floats(_raw_value(ds, "ImageOrientationPatient"), 6),
        "pixel_spacing_mm": _floats(_raw_value(ds, "PixelSpacing"), 2),
        "slice_thickness_mm": _float(_raw_value(ds, "SliceThickness")),
        "rows": rows,
        "columns": cols,
        "samples_per_pixel": spp,
        "photometric": _str(ds, "PhotometricInterpretation", "MONOCHROME2").upper(),
        "bits_allocated": bits,
        "bits_stored": _int(ds, "BitsStored", bits),
        "pixel_representation": _int(ds, "PixelRepresentation"),
        "rescale_slope": _float(_raw_value(ds, "RescaleSlope"), 1.0) or 1.0,
        "rescale_intercept": _float(_raw_value(ds, "RescaleIntercept"), 0.0) or 0.0,
        "transfer_syntax": ts,
        "pixel_offset": offset,
        "number_of_frames": n_frames,
    }
    is_multiframe = n_frames > 1 or "PerFrameFunctionalGroupsSequence" in ds
    images = _frame_headers(ds, base) if is_multiframe else (ImageHeader(**base),)
    return ScanItem(path, images=images)
