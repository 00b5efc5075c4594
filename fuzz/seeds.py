"""Small valid inputs, written by the project's own writers, that the fuzzer mutates.

Every seed is deterministic (fixed pixel values, UIDs, dates and times), so that a case —
a recipe of mutations applied to a seed — gives the same bytes in every process and on
every run: a crash found by the long run reproduces in a test.
"""

from __future__ import annotations

import io
import json
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from planning.plan import Plan, Side, Trajectory
from planning.volume import PatientInfo, Volume

CT_SHAPE = (8, 16, 16)  # slices, rows, columns
CT_SPACING_MM = (0.7, 0.8, 2.5)  # along i (column), j (row), k (slice)
ENHANCED_CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2.1"
PATIENT = PatientInfo(name="Fuzz^Case", patient_id="FUZZ-1", birth_date="19500101",
                      sex="F", study_date="20240101", study_time="120000",
                      study_description="fuzz seed")


def uid(*what: str) -> str:
    """A UID derived from ``what``: the same in every process and run."""
    return str(generate_uid(entropy_srcs=["vertebroplan-fuzz", *what]))


STUDY_UID = uid("study")
SERIES_UID = uid("series")
FRAME_UID = uid("frame")


def ct_volume() -> Volume:
    """The seed CT: 8 axial slices of 16 × 16, HU from -1000 to 1500."""
    rng = np.random.default_rng(20240101)
    array = rng.integers(-1000, 1500, size=CT_SHAPE).astype(np.int16)
    affine = np.diag([*CT_SPACING_MM, 1.0])
    affine[:3, 3] = (-5.6, -6.4, 100.0)
    return Volume(array=array, affine_lps=affine, study_uid=STUDY_UID, series_uid=SERIES_UID,
                  frame_of_reference_uid=FRAME_UID, patient=PATIENT)


def _bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _fixed(ds: Dataset) -> Dataset:
    """``ds`` with every UID generated while writing it replaced by a derived one and every
    date and time fixed, recursively (the same old UID always gets the same new one); the
    seed CT's own UIDs are kept."""
    ct = seed_ct()
    keep = [ct.study_uid, ct.series_uid, ct.frame_of_reference_uid,
            *(i.sop_instance_uid for i in ct.source_instances)]
    mapping = {u: u for u in keep}

    def visit(item: Dataset) -> None:
        for elem in item:
            if elem.VR == "SQ":
                for child in elem.value:
                    visit(child)
            elif elem.VR == "UI" and elem.value and not str(elem.value).startswith(
                "1.2.840.10008"
            ):
                old = str(elem.value)
                mapping.setdefault(old, uid("uid", str(len(mapping))))
                elem.value = mapping[old]
            elif elem.VR == "DA" and elem.value:
                elem.value = "20240101"
            elif elem.VR == "TM" and elem.value:
                elem.value = "120000"
            elif elem.VR == "DT" and elem.value:
                elem.value = "20240101120000"

    visit(ds)
    if hasattr(ds, "file_meta"):
        visit(ds.file_meta)
    return ds


@lru_cache(maxsize=1)
def ct_series_files() -> tuple[bytes, ...]:
    """The seed CT as single-frame CT Image Storage files (bytes), in slice order."""
    from planning.io.dicom_write import write_series

    with tempfile.TemporaryDirectory(prefix="vp-fuzz-seed-") as tmp:
        paths = write_series(ct_volume(), tmp, series_description="fuzz seed")
        out = []
        for k, path in enumerate(paths):
            ds = pydicom.dcmread(path)
            ds.SOPInstanceUID = uid("ct image", str(k))
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.InstanceCreationDate, ds.InstanceCreationTime = "20240101", "120000"
            out.append(_bytes(ds))
    return tuple(out)


@lru_cache(maxsize=1)
def enhanced_ct_file() -> bytes:
    """The seed CT as one Enhanced CT Image Storage file (multi-frame, functional groups)."""
    vol = ct_volume()
    stored = (vol.array.astype(np.int32) + 1024).astype(np.uint16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(ENHANCED_CT_STORAGE)
    meta.MediaStorageSOPInstanceUID = UID(uid("enhanced"))
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("enhanced.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = ENHANCED_CT_STORAGE, uid("enhanced")
    ds.Modality = "CT"
    ds.PatientName, ds.PatientID = PATIENT.name, PATIENT.patient_id
    ds.StudyInstanceUID, ds.SeriesInstanceUID = STUDY_UID, uid("enhanced series")
    ds.FrameOfReferenceUID = FRAME_UID
    ds.StudyDate, ds.StudyTime = "20240101", "120000"
    ds.SeriesNumber, ds.InstanceNumber = 2, 1
    ds.ImageType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = CT_SHAPE[1], CT_SHAPE[2]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.NumberOfFrames = CT_SHAPE[0]
    shared = Dataset()
    orientation = Dataset()
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    measures = Dataset()
    measures.PixelSpacing = [CT_SPACING_MM[1], CT_SPACING_MM[0]]
    measures.SliceThickness = CT_SPACING_MM[2]
    rescale = Dataset()
    rescale.RescaleIntercept, rescale.RescaleSlope, rescale.RescaleType = -1024, 1, "HU"
    shared.PlaneOrientationSequence = DicomSequence([orientation])
    shared.PixelMeasuresSequence = DicomSequence([measures])
    shared.PixelValueTransformationSequence = DicomSequence([rescale])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    frames = []
    for k in range(CT_SHAPE[0]):
        position = Dataset()
        position.ImagePositionPatient = [float(v) for v in vol.to_lps((0.0, 0.0, float(k)))]
        item = Dataset()
        item.PlanePositionSequence = DicomSequence([position])
        frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(frames)
    ds.PixelData = stored.tobytes()
    return _bytes(ds)


@lru_cache(maxsize=1)
def seed_ct() -> Volume:
    """The seed CT loaded back from its DICOM files by the project's loader (so it carries
    the instance UIDs a SEG references)."""
    from planning.io import load_path

    with tempfile.TemporaryDirectory(prefix="vp-fuzz-ct-") as tmp:
        for k, data in enumerate(ct_series_files()):
            (Path(tmp) / f"IM{k:05d}.dcm").write_bytes(data)
        volume = load_path(tmp)
    volume.source = ""
    return volume


def seed_plan() -> Plan:
    """Two needles (left and right L1) plus one at L2, inside the seed CT."""
    return Plan(
        study_uid=STUDY_UID, series_uid=SERIES_UID, frame_of_reference_uid=FRAME_UID,
        trajectories=(
            Trajectory("L1", Side.LEFT, (4.5, 3.0, 111.0), (0.5, -2.0, 110.0), "11G"),
            Trajectory("L1", Side.RIGHT, (-4.5, 3.0, 111.0), (-0.5, -2.0, 110.0), "13G",
                       note="côté droit"),
            Trajectory("L2", Side.LEFT, (4.0, 4.0, 104.0), (0.0, -1.5, 103.0)),
        ),
    )


@lru_cache(maxsize=1)
def plan_json() -> str:
    """The seed plan as a ``.vplan.json`` text."""
    from planning.interop.plan_file import plan_to_dict

    return json.dumps(plan_to_dict(seed_plan()), indent=1, ensure_ascii=False)


@lru_cache(maxsize=1)
def markups_json() -> str:
    """The seed plan as a Slicer ``.mrk.json`` text."""
    from planning.interop.slicer_markups import plan_to_markups

    return json.dumps(plan_to_markups(seed_plan()), indent=1, ensure_ascii=False)


@lru_cache(maxsize=1)
def sr_file() -> bytes:
    """The seed plan written by `write_plan_sr` on the seed CT (a Comprehensive 3D SR)."""
    from planning.interop.dicom_sr import write_plan_sr

    with tempfile.TemporaryDirectory(prefix="vp-fuzz-sr-") as tmp:
        path = write_plan_sr(Path(tmp) / "plan.dcm", seed_plan(), {}, seed_ct())
        ds = pydicom.dcmread(path)
    return _bytes(_fixed(ds))


@lru_cache(maxsize=1)
def seg_file() -> bytes:
    """A DICOM SEG of the seed CT by `write_plan_seg`: L1 and L2 as boxes, the canal behind
    them, and one needle."""
    from planning.anatomy.model import Anatomy, VertebraGeometry
    from planning.interop.dicom_seg import write_plan_seg
    ct = seed_ct()
    labels = np.zeros(CT_SHAPE, dtype=np.int16)
    labels[4:8, 3:10, 4:12] = 20  # L1 above (higher z) …
    labels[0:4, 3:10, 4:12] = 21  # … L2
    canal = np.zeros(CT_SHAPE, dtype=bool)
    canal[:, 11:14, 6:10] = True

    def level(name: str, code: int, k: float) -> VertebraGeometry:
        centre = ct.to_lps((8.0, 6.0, k))
        return VertebraGeometry(name, code, centre, np.array([0, 0, 1.0]),
                                np.array([0, -1.0, 0]), np.array([1.0, 0, 0]))

    anatomy = Anatomy(affine_lps=ct.affine_lps, labels=labels, canal=canal,
                      bodies=labels > 0,
                      levels={"L1": level("L1", 20, 5.5), "L2": level("L2", 21, 1.5)})
    entry, tip = ct.to_lps((12.0, 12.0, 6.0)), ct.to_lps((8.0, 5.0, 5.0))
    needle = Trajectory("L1", Side.LEFT, (entry[0], entry[1], entry[2]), (tip[0], tip[1], tip[2]))
    plan = Plan(frame_of_reference_uid=FRAME_UID, trajectories=(needle,))
    with tempfile.TemporaryDirectory(prefix="vp-fuzz-seg-") as tmp:
        path = write_plan_seg(Path(tmp) / "seg.dcm", ct, anatomy, plan)
        ds = pydicom.dcmread(path)
    return _bytes(_fixed(ds))
