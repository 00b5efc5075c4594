"""Reading the headers of DICOM files into small, picklable per-image records.

Scanning a folder parses each file's header exactly once; the records keep what loading
needs (geometry, rescale, pixel layout and the byte offset of uncompressed pixel data), so
loading a series never parses a header again.
"""

from __future__ import annotations

import math
import os
import stat
import struct
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pydicom
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import FileMetaDataset
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

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

# What pydicom raises on damaged files (truncated, garbage lengths, wrong VRs). pydicom
# parses lazily, so these come from reading any element of a damaged file, not only from
# dcmread: every reader catches them around all of its use of the dataset.
PARSE_ERRORS = (
    ValueError,  # also UnicodeDecodeError, numpy's LinAlgError
    EOFError,
    struct.error,
    LookupError,  # KeyError, IndexError, an unknown character set's codec
    TypeError,
    AttributeError,
    NotImplementedError,  # an unknown VR or transfer syntax
    RecursionError,  # sequences nested thousands deep
    ArithmeticError,  # OverflowError, ZeroDivisionError
    MemoryError,
    zlib.error,  # a corrupt deflated data set
    BytesLengthException,  # an element's length does not fit its VR
)
NATIVE_LITTLE_ENDIAN = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}

# Past these, a header value is corruption, not geometry: no patient is a kilometre from
# the scanner's origin, no CT pixel is a metre wide or smaller than a micrometre (micro-CT
# reaches a few), no rescale maps to a million HU.
MAX_COORDINATE_MM = 1e6
MIN_PIXEL_SPACING_MM, MAX_PIXEL_SPACING_MM = 1e-3, 1e3
MAX_RESCALE = 1e6
BITS_ALLOCATED = (8, 16, 32)


def parse_problem(exc: BaseException, detail: bool = False) -> str:
    """Why pydicom could not parse a damaged file, in words (for skip reasons, messages);
    ``detail`` adds the exception's own message where there are no plainer words."""
    if isinstance(exc, RecursionError):
        return "its sequences are nested too deeply"
    if isinstance(exc, zlib.error):
        return "its compressed (deflated) data set is corrupt"
    if isinstance(exc, BytesLengthException):
        return "an element's length does not fit its value type"
    if isinstance(exc, MemoryError):
        return "an element claims more memory than there is"
    text = str(exc).splitlines()[0][:200] if detail and str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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
    problem: str = ""  # why the image cannot be used ("" if it can), for messages
    raw_dataset: bool = False  # no preamble / file meta: read with pydicom's force=True

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


def cut_short_element(ds: Any) -> str | None:
    """The name of a top-level element that the end of the file cut short, or None.

    pydicom reads a file that ends inside an element's value without an error (the value
    is just shorter than its length says): a reader that must not silently lose the rest
    of a file (an SR's last needles, a SEG's last frames) calls this right after dcmread,
    while the elements are still raw.
    """
    for tag, elem in ds._dict.items():
        if (
            isinstance(elem, RawDataElement)
            and elem.value is not None
            and elem.length != 0xFFFFFFFF
            and len(elem.value) < elem.length
        ):
            return str(elem_keyword(tag) or f"element {tag}")
    return None


def read_whole_dicom(path: Path, error: type[Exception], expected: tuple[str, ...],
                     what: str) -> Any:
    """A DICOM file of one of the ``expected`` SOP classes, read whole, else ``error``
    with a message naming the file: missing, unreadable, not DICOM, damaged, another kind
    of object (``what`` says what was expected), or cut short by the end of the file.

    For readers of objects whose every part matters (a plan SR, a SEG): a truncated copy
    must be refused, not read as a smaller plan.
    """
    try:
        ds = pydicom.dcmread(path)
        cut = cut_short_element(ds)
        sop_class = str(ds.get("SOPClassUID", ""))
    except FileNotFoundError as exc:
        raise error(f"'{path}' does not exist.") from exc
    except InvalidDicomError as exc:
        raise error(f"'{path}' is not a DICOM file.") from exc
    except OSError as exc:
        raise error(f"'{path}' cannot be read: {exc.strerror or exc}") from exc
    except PARSE_ERRORS as exc:
        raise error(f"'{path}' is damaged or truncated DICOM ({parse_problem(exc)}).") from exc
    if sop_class not in expected:
        kind = UID(sop_class).name if sop_class else "object of unknown type"
        raise error(f"'{path}' is a DICOM {kind}, not {what}.")
    if cut is not None:
        raise error(f"'{path}' is truncated: the file ends inside its {cut}, so parts may "
                    "be missing; it may be an incomplete copy.")
    return ds


def elem_keyword(tag: int) -> str:
    try:
        return str(keyword_for_tag(tag))
    except (KeyError, ValueError):
        return ""


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

    return PatientInfo(**{name: text(keyword)
                           for name, keyword in PatientInfo.dicom_keywords().items()})


def read_patient_info(path: Path, raw_dataset: bool = False) -> PatientInfo:
    """Patient and study attributes of one file (read once per series, not per image)."""
    try:
        return patient_info(pydicom.dcmread(path, stop_before_pixels=True, force=raw_dataset))
    except (OSError, InvalidDicomError, *PARSE_ERRORS):
        return PatientInfo()


RAW_FIRST_GROUPS = (0x0002, 0x0008)
"""A dataset written without preamble and file meta starts with one of these groups
(identifying attributes, group 0008, come first in every image object)."""


def starts_like_a_raw_dataset(head: bytes) -> bool:
    """Whether ``head`` (a file's first 8 bytes) opens a DICOM data element of a raw
    dataset in little endian: a group-0008 (or 0002) tag, then an explicit VR or a short
    implicit length. Text files, images and archives fail this at once, so pydicom's
    ``force=True`` is only tried where it can succeed."""
    if len(head) < 8:
        return False
    group, element = struct.unpack("<HH", head[:4])
    if group not in RAW_FIRST_GROUPS or element > 0x1000:
        return False
    vr = head[4:6]
    if vr.isalpha() and vr.isupper():
        return True
    (length,) = struct.unpack("<I", head[4:8])
    return length < 0x10000


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


def _text(values: tuple[float, ...]) -> str:
    return "\\".join(f"{v:g}" for v in values)


def _checked(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` of an ImageHeader with values that cannot be real set aside.

    Non-finite, absurd or degenerate geometry becomes None (as if missing, so the image is
    ignored like one without position) and every problem is described in ``problem``, so
    that a series none of whose images is usable is refused with the reason.
    """
    out = dict(fields)
    problems = []
    pos = out["position_lps"]
    if pos is not None and not all(math.isfinite(v) and abs(v) <= MAX_COORDINATE_MM
                                   for v in pos):
        problems.append(f"an ImagePositionPatient of {_text(pos)} (not a position in mm)")
        out["position_lps"] = None
    ori = out["orientation"]
    if ori is not None and not (
        all(math.isfinite(v) and abs(v) <= 2.0 for v in ori)
        and all(0.5 <= math.hypot(*ori[n:n + 3]) <= 1.5 for n in (0, 3))
    ):
        problems.append(f"an ImageOrientationPatient of {_text(ori)} (not two unit vectors)")
        out["orientation"] = None
    spacing = out["pixel_spacing_mm"]
    if spacing is not None and not all(
        math.isfinite(v) and MIN_PIXEL_SPACING_MM <= v <= MAX_PIXEL_SPACING_MM for v in spacing
    ):
        problems.append(f"a PixelSpacing of {_text(spacing)} (not a pixel size in mm)")
        out["pixel_spacing_mm"] = None
    thickness = out["slice_thickness_mm"]
    if thickness is not None and not (math.isfinite(thickness) and 0 < thickness <= 1e4):
        out["slice_thickness_mm"] = None  # only shown in the series list: not worth refusing
    slope, intercept = out["rescale_slope"], out["rescale_intercept"]
    if not (math.isfinite(slope) and abs(slope) <= MAX_RESCALE):
        problems.append(f"a RescaleSlope of {slope:g} (HU cannot be computed)")
    if not (math.isfinite(intercept) and abs(intercept) <= MAX_RESCALE):
        problems.append(f"a RescaleIntercept of {intercept:g} (HU cannot be computed)")
    if out["bits_allocated"] not in BITS_ALLOCATED:
        problems.append(f"BitsAllocated {out['bits_allocated']} (8, 16 or 32 expected)")
    out["problem"] = "; ".join(problems)
    return out


def _frame_headers(ds: Any, base: dict[str, Any], n: int) -> tuple[ImageHeader, ...]:
    """One ImageHeader per frame of an Enhanced (multi-frame) CT image (``n`` frames, each
    described by an item of the PerFrameFunctionalGroupsSequence)."""
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
                **_checked({
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
                })
            )
        )
    return tuple(out)


def read_header(path: Path) -> ScanItem:
    """Parse one file's header; never raises for bad files, it says why they were skipped."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return ScanItem(path, skipped_reason=f"unreadable ({exc.strerror or exc})")
    if not stat.S_ISREG(mode):
        # a pipe would block the scan for ever, a device would be read without end
        return ScanItem(path, skipped_reason="not a regular file (a pipe, device or socket)")
    try:
        with open(path, "rb") as fp:
            try:
                ds = pydicom.dcmread(fp, stop_before_pixels=True)
            except InvalidDicomError:
                fp.seek(0)
                if not starts_like_a_raw_dataset(fp.read(8)):
                    return ScanItem(path, skipped_reason="not a DICOM file")
                fp.seek(0)
                return _raw_scan_item(path, fp)
            return _scan_item(path, fp, ds)
    except OSError as exc:
        return ScanItem(path, skipped_reason=f"unreadable ({exc.strerror or exc})")
    except PARSE_ERRORS as exc:
        return ScanItem(
            path, skipped_reason=f"unreadable or truncated DICOM ({parse_problem(exc)})"
        )


def _raw_scan_item(path: Path, fp: Any) -> ScanItem:
    """A dataset without the 128-byte preamble and file meta (older exporters, PACS dumps):
    read as pydicom infers its encoding, and kept only if it is an image with a SOP class."""
    ds = pydicom.dcmread(fp, stop_before_pixels=True, force=True)
    implicit, little = ds.original_encoding
    if not little or not _str(ds, "SOPClassUID"):
        return ScanItem(path, skipped_reason="not a DICOM file")
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    item = _scan_item(path, fp, ds)
    return replace(item, images=tuple(replace(i, raw_dataset=True) for i in item.images))


def _scan_item(path: Path, fp: Any, ds: Any) -> ScanItem:
    """The images of a parsed header (``fp`` is just past it), or why it was skipped.

    Runs inside `read_header`'s error boundary: pydicom decodes values lazily, so reading
    any element of a damaged file may raise one of `PARSE_ERRORS`.
    """
    ts = str(ds.file_meta.get("TransferSyntaxUID", "1.2.840.10008.1.2"))
    rows, cols = _int(ds, "Rows"), _int(ds, "Columns")
    spp = _int(ds, "SamplesPerPixel", 1)
    bits = _int(ds, "BitsAllocated", 16)
    n_frames = _int(ds, "NumberOfFrames", 1)
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    # pydicom returns a partial dataset for a file cut inside its header, without
    # an error: ending exactly where the parser stopped is how truncation shows.
    deflated = ts == "1.2.840.10008.1.2.1.99"  # fp position is not the dataset's
    at_eof = not deflated and fp.tell() >= os.fstat(fp.fileno()).st_size
    sop_class = _str(ds, "SOPClassUID")
    if at_eof:
        return ScanItem(
            path,
            skipped_reason="unreadable or truncated DICOM (the file ends before its pixel data)",
        )
    if rows == 0 or cols == 0:
        name = UID(sop_class).name if sop_class else "unknown object"
        return ScanItem(path, skipped_reason=f"DICOM but not an image ({name})")
    is_multiframe = n_frames > 1 or per_frame is not None
    if is_multiframe and n_frames != len(per_frame or ()):
        # Each frame's position is in its item: a count that disagrees is corruption, and
        # believing a huge one would build billions of frames.
        return ScanItem(
            path,
            skipped_reason=f"unreadable multi-frame header (NumberOfFrames is {n_frames}, "
            f"but {len(per_frame or ())} frames are described)",
        )
    n_frames = max(n_frames, 1)
    offset = _native_pixel_offset(fp, ts, rows * cols * spp * bits // 8 * n_frames)
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
    if is_multiframe:
        return ScanItem(path, images=_frame_headers(ds, base, n_frames))
    return ScanItem(path, images=(ImageHeader(**_checked(base)),))
