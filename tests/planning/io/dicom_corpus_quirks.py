"""More of the DICOM corpus (`dicom_corpus`): Enhanced multi-frame CT, broken and odd
files, dcmtk's codecs, DICOMDIRs and pixel words with stray bits.

Why a module of its own: these build the quirks, `dicom_corpus` the plain series they
start from; each stays small enough to read.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
from numpy.typing import ArrayLike
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    generate_uid,
)

from tests.planning.io.dicom_corpus import (
    AXIAL_IOP,
    COLS,
    ENHANCED_CT_IMAGE_STORAGE,
    JPEG_XL_UID,
    PIXEL_SPACING,
    ROWS,
    SeriesUIDs,
    _common_attributes,
    _file_dataset,
    ct_slice_dataset,
    ds_str,
    save,
    stored_from_hu,
)

_MPEG2_MPML_UID = "1.2.840.10008.1.2.4.100"  # as long as JPEG XL's UID


# ---- Enhanced (multi-frame) CT ------------------------------------------------------------
def write_enhanced_ct(
    path: str | Path,
    hu_kji: ArrayLike,
    positions: Sequence[ArrayLike],
    iop: Sequence[float] = AXIAL_IOP,
    pixel_spacing: Sequence[float] = PIXEL_SPACING,
    *,
    uids: SeriesUIDs | None = None,
    slope: float = 1.0,
    intercept: float | Sequence[float] = -1024.0,
    slice_thickness: float = 2.0,
) -> Path:
    """One Enhanced CT Image Storage file, frames in the given order.

    Orientation, pixel measures and (for a single ``intercept``) the rescale sit in the
    SharedFunctionalGroupsSequence; positions in the PerFrameFunctionalGroupsSequence. One
    intercept per frame puts PixelValueTransformationSequence per frame (as some vendors do).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    hu = np.asarray(hu_kji)
    nk = hu.shape[0]
    uids = uids or SeriesUIDs.new()
    per_frame_rescale = isinstance(intercept, Sequence)
    intercepts = [float(v) for v in intercept] if per_frame_rescale else [float(intercept)] * nk
    stored = np.stack(
        [stored_from_hu(hu[k], slope, intercepts[k], signed=False) for k in range(nk)]
    )
    ds = _file_dataset(path, ENHANCED_CT_IMAGE_STORAGE, generate_uid(), ExplicitVRLittleEndian)
    _common_attributes(ds, uids, "CT", 3, "Enhanced spine")
    ds.ImageType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
    ds.PixelPresentation = "MONOCHROME"
    ds.VolumetricProperties = "VOLUME"
    ds.VolumeBasedCalculationTechnique = "NONE"
    ds.DeviceSerialNumber = "0001"
    ds.SoftwareVersions = "1.0"
    ds.InstanceNumber = 1
    ds.ContentQualification = "PRODUCT"
    ds.AcquisitionDateTime = "20240314092653"
    ds.AcquisitionNumber = 1
    ds.BurnedInAnnotation = "NO"
    ds.PresentationLUTShape = "IDENTITY"
    ds.LossyImageCompression = "00"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = int(hu.shape[1]), int(hu.shape[2])
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.NumberOfFrames = nk

    dim_org_uid = generate_uid()
    org = Dataset()
    org.DimensionOrganizationUID = dim_org_uid
    ds.DimensionOrganizationSequence = DicomSequence([org])
    index = Dataset()
    index.DimensionOrganizationUID = dim_org_uid
    index.DimensionIndexPointer = pydicom.tag.Tag("ImagePositionPatient")
    index.FunctionalGroupPointer = pydicom.tag.Tag("PlanePositionSequence")
    index.DimensionDescriptionLabel = "Image Position"
    ds.DimensionIndexSequence = DicomSequence([index])

    def rescale_item(icpt: float) -> Dataset:
        t = Dataset()
        t.RescaleIntercept = ds_str(icpt)
        t.RescaleSlope = ds_str(slope)
        t.RescaleType = "HU"
        return t

    shared = Dataset()
    orient = Dataset()
    orient.ImageOrientationPatient = [ds_str(v) for v in iop]
    shared.PlaneOrientationSequence = DicomSequence([orient])
    measures = Dataset()
    measures.PixelSpacing = [ds_str(v) for v in pixel_spacing]
    measures.SliceThickness = ds_str(slice_thickness)
    shared.PixelMeasuresSequence = DicomSequence([measures])
    frame_type = Dataset()
    frame_type.FrameType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
    frame_type.PixelPresentation = "MONOCHROME"
    frame_type.VolumetricProperties = "VOLUME"
    frame_type.VolumeBasedCalculationTechnique = "NONE"
    shared.CTImageFrameTypeSequence = DicomSequence([frame_type])
    if not per_frame_rescale:
        shared.PixelValueTransformationSequence = DicomSequence([rescale_item(intercepts[0])])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])

    frames = []
    for k in range(nk):
        item = Dataset()
        content = Dataset()
        content.FrameAcquisitionNumber = 1
        content.DimensionIndexValues = [k + 1]
        item.FrameContentSequence = DicomSequence([content])
        pos = Dataset()
        pos.ImagePositionPatient = [ds_str(v) for v in np.asarray(positions[k], dtype=float)]
        item.PlanePositionSequence = DicomSequence([pos])
        if per_frame_rescale:
            item.PixelValueTransformationSequence = DicomSequence([rescale_item(intercepts[k])])
        frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(frames)
    ds.PixelData = np.ascontiguousarray(stored).tobytes()
    return save(ds, path)


# ---- broken and odd files -----------------------------------------------------------------
def write_non_dicom_files(folder: str | Path, rng: np.random.Generator) -> list[Path]:
    """Files that end up in a DICOM export folder but are not DICOM."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    readme = out / "README.TXT"
    readme.write_text("Exported by PACS viewer. Not for diagnostic use.\n")
    png = out / "screenshot.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(rng.integers(0, 256, 200, dtype=np.uint8)))
    noise = out / "IM_noise"
    noise.write_bytes(bytes(rng.integers(0, 256, 1000, dtype=np.uint8)))
    return [readme, png, noise]


def pixel_data_offset(path: Path) -> int:
    """Byte offset of the (7FE0,0010) Pixel Data tag in an explicit VR little endian file."""
    data = path.read_bytes()
    offset = data.rfind(b"\xe0\x7f\x10\x00")
    if offset < 0:
        raise ValueError(f"{path.name} has no Pixel Data element")
    return offset


def truncate_header(path: Path) -> Path:
    """Cut the file in the middle of its data set header (an interrupted copy)."""
    cut = pixel_data_offset(path) // 2
    path.write_bytes(path.read_bytes()[:cut])
    return path


def truncate_pixels(path: Path) -> Path:
    """Keep the header whole but cut the pixel data in half."""
    data = path.read_bytes()
    start = pixel_data_offset(path) + 12  # tag, VR, 2 reserved bytes, 4-byte length
    cut = start + (len(data) - start) // 2
    path.write_bytes(data[:cut])
    return path


def write_encapsulated_unknown(
    path: Path, transfer_syntax: str, uids: SeriesUIDs, ipp: ArrayLike, instance_number: int
) -> Path:
    """A CT image whose encapsulated pixel data uses a transfer syntax nothing here decodes.

    pydicom 3.0 refuses to write UIDs it does not know, so a JPEG XL file is written as
    MPEG-2 (a UID of the same length) and the UID bytes are swapped in the meta header.
    A private UID is written directly (explicit VR little endian data set).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    hu = np.zeros((ROWS, COLS), dtype=np.int16)
    ds = ct_slice_dataset(path, hu, ipp, uids=uids, instance_number=instance_number)
    fake_codestream = b"\xff\x0a" + bytes(range(256)) * 4
    ds.PixelData = encapsulate([fake_codestream])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    if transfer_syntax == JPEG_XL_UID:
        ds.file_meta.TransferSyntaxUID = UID(_MPEG2_MPML_UID)
        ds.save_as(path, enforce_file_format=True)
        old = _MPEG2_MPML_UID.encode() + b"\0"
        new = JPEG_XL_UID.encode() + b"\0"
        data = path.read_bytes()
        if data.count(old) != 1:
            raise RuntimeError("cannot patch the transfer syntax UID")
        path.write_bytes(data.replace(old, new))
    else:
        ds.file_meta.TransferSyntaxUID = UID(transfer_syntax)
        ds.save_as(path, enforce_file_format=True, implicit_vr=False, little_endian=True)
    return path


# ---- dcmtk --------------------------------------------------------------------------------
def dcmtk_convert(tool: str, args: Sequence[str], src: Path, dst: Path) -> Path:
    """Run one dcmtk converter (dcmcjpeg, dcmcjpls, dcmcrle, dcmconv) on one file."""
    exe = shutil.which(tool)
    if exe is None:
        raise FileNotFoundError(f"{tool} is not installed")
    dst.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [exe, *args, str(src), str(dst)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{tool} failed on {src.name}: {proc.stderr.strip()}")
    return dst


def transfer_syntax_of(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)



# ---- patient CDs and odd pixel words ----------------------------------------------------
def write_dicomdir(folder: Path, paths: Sequence[Path]) -> Path:
    """A DICOMDIR next to the images, as on a patient CD (dcmtk's dcmmkdir)."""
    exe = shutil.which("dcmmkdir")
    if exe is None:
        raise FileNotFoundError("dcmmkdir is not installed")
    out = folder / "DICOMDIR"
    proc = subprocess.run(
        [exe, "+id", str(folder), "+D", str(out), *[p.name for p in paths]],
        capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"dcmmkdir failed: {proc.stderr.strip()}")
    return out


def rewrite_stored_bits(path: Path, transform: object) -> Path:
    """Replace the 16-bit pixel words of a native file by ``transform(words_uint16)``.

    Used to put garbage above HighBit (old overlay bits) or to drop the sign extension of
    signed 12-bit data: both are legal, since readers must ignore bits outside BitsStored.
    """
    ds = pydicom.dcmread(path)
    words = np.frombuffer(ds.PixelData, dtype="<u2")
    ds.PixelData = np.asarray(transform(words), dtype="<u2").tobytes()  # type: ignore[operator]
    ds.save_as(path, enforce_file_format=True)
    return path
