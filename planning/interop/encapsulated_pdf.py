"""The plan report as a DICOM Encapsulated PDF, filed in the CT's study.

A PACS shows an Encapsulated PDF next to the images it was planned on, so the report travels
with the study to the angio suite. The object carries the patient and study modules of the CT
(same StudyInstanceUID), in a new series of its own (Modality DOC), and is built to pass
``dciodvfy`` without errors (PS3.3 A.45.1, Encapsulated PDF IOD).
"""

from __future__ import annotations

import datetime as _dt
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from planning.errors import VertebroPlanError
from planning.io.dicom_write import IMPLEMENTATION_UID, SOFTWARE_NAME
from planning.version import __version__
from planning.volume import Volume

ENCAPSULATED_PDF_STORAGE = UID("1.2.840.10008.5.1.4.1.1.104.1")
SOFTWARE_VERSION = __version__
DEFAULT_SERIES_NUMBER = 9002
"""High enough to sort after the scanner's series in a PACS series list."""

_PDF_MAGIC = b"%PDF-"
_UTF8 = "ISO_IR 192"
"""Specific Character Set for UTF-8, so any patient name the CT carried is encoded as is."""


class EncapsulationError(VertebroPlanError, ValueError):
    """The report cannot be wrapped into a DICOM object (not a PDF, unreadable file)."""


class DicomWriteError(VertebroPlanError, OSError):
    """A DICOM object could not be written to disk."""


def _pdf_bytes(pdf_path_or_bytes: str | os.PathLike[str] | bytes) -> bytes:
    if isinstance(pdf_path_or_bytes, bytes | bytearray | memoryview):
        data = bytes(pdf_path_or_bytes)
        origin = "the report"
    else:
        path = Path(pdf_path_or_bytes)
        origin = str(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise EncapsulationError(
                f"Cannot read the PDF report {path}: {exc.strerror or exc}"
            ) from exc
    if not data.startswith(_PDF_MAGIC):
        raise EncapsulationError(
            f"{origin} is not a PDF file (it does not start with '%PDF-'), "
            "so it cannot be stored as an Encapsulated PDF"
        )
    return data


def _text(obj: object, name: str) -> str:
    """A string field of PatientInfo or Volume, or "" if this version does not have it."""
    value = getattr(obj, name, "")
    return value if isinstance(value, str) else ""


def _source_instances(volume: Volume) -> list[Dataset]:
    """The CT images the report's pictures were resliced from (when loaded from DICOM)."""
    items = []
    for source in getattr(volume, "source_instances", ()):
        class_uid = getattr(source, "sop_class_uid", "")
        instance_uid = getattr(source, "sop_instance_uid", "")
        if class_uid and instance_uid:
            item = Dataset()
            item.ReferencedSOPClassUID = class_uid
            item.ReferencedSOPInstanceUID = instance_uid
            items.append(item)
    return items


def encapsulate_pdf(
    pdf_path_or_bytes: str | os.PathLike[str] | bytes,
    volume: Volume,
    *,
    title: str = "Vertebroplasty plan",
    series_number: int = DEFAULT_SERIES_NUMBER,
    series_description: str = "VertebroPlan report",
    deidentify_with: Callable[[Dataset], Dataset] | None = None,
    now: _dt.datetime | None = None,
) -> Dataset:
    """Wrap a PDF report into an Encapsulated PDF Storage object in the CT's study.

    Parameters
    ----------
    pdf_path_or_bytes
        The PDF file, or its bytes.
    volume
        The CT the plan was made on; its patient, study and StudyInstanceUID are copied so
        the PACS files the report in the same study, and its source images (when loaded
        from DICOM) are listed in the Source Instance Sequence.
    title
        DocumentTitle, what a PACS lists for the object.
    series_number
        SeriesNumber of the new DOC series.
    series_description
        SeriesDescription of the new series.
    deidentify_with
        A `planning.interop.deidentify.Deidentifier` (or any dataset → dataset callable)
        applied to the finished object. The PDF bytes are not inspected: render the report
        from de-identified data when sending it de-identified.
    now
        Content and creation date/time (defaults to the current local time).

    Returns
    -------
    pydicom.Dataset
        With ``file_meta`` (Explicit VR Little Endian), ready for `write_dataset` or
        `planning.interop.send.send`.
    """
    pdf = _pdf_bytes(pdf_path_or_bytes)
    if not 1 <= series_number <= 2**31 - 1:
        raise EncapsulationError(f"series_number must be a positive integer, got {series_number}")
    if not volume.study_uid:
        raise EncapsulationError(
            "The CT has no Study Instance UID, so the report cannot be filed in its study"
        )
    when = now or _dt.datetime.now()
    date, time = when.strftime("%Y%m%d"), when.strftime("%H%M%S")
    patient = volume.patient
    sop_uid = generate_uid()

    ds = Dataset()
    # SOP Common
    ds.SpecificCharacterSet = _UTF8
    ds.SOPClassUID = ENCAPSULATED_PDF_STORAGE
    ds.SOPInstanceUID = sop_uid
    ds.InstanceCreationDate = date
    ds.InstanceCreationTime = time
    ds.InstanceCreatorUID = IMPLEMENTATION_UID
    # Patient
    ds.PatientName = _text(patient, "name")
    ds.PatientID = _text(patient, "patient_id")
    issuer = _text(patient, "issuer_of_patient_id")
    if issuer:
        ds.IssuerOfPatientID = issuer
    ds.PatientBirthDate = _text(patient, "birth_date")
    ds.PatientSex = _text(patient, "sex")
    # General Study
    ds.StudyInstanceUID = volume.study_uid
    ds.StudyDate = _text(patient, "study_date")
    ds.StudyTime = _text(patient, "study_time")
    ds.ReferringPhysicianName = _text(patient, "referring_physician")
    ds.StudyID = _text(patient, "study_id")
    ds.AccessionNumber = _text(patient, "accession_number")
    study_description = _text(patient, "study_description")
    if study_description:
        ds.StudyDescription = study_description
    # Encapsulated Document Series
    ds.Modality = "DOC"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = series_number
    ds.SeriesDate = date
    ds.SeriesTime = time
    if series_description:
        ds.SeriesDescription = series_description
    # General Equipment + SC Equipment
    ds.Manufacturer = SOFTWARE_NAME
    institution = _text(patient, "institution")
    if institution:
        ds.InstitutionName = institution
    ds.SoftwareVersions = SOFTWARE_VERSION
    ds.ConversionType = "WSD"  # workstation
    # Encapsulated Document
    ds.InstanceNumber = 1
    ds.ContentDate = date
    ds.ContentTime = time
    ds.AcquisitionDateTime = date + time
    ds.BurnedInAnnotation = "YES"  # the report prints the patient's name and ID
    ds.RecognizableVisualFeatures = "NO"
    ds.DocumentTitle = title
    ds.ConceptNameCodeSequence = []
    sources = _source_instances(volume)
    if sources:  # type 1C: required when the document is derived from DICOM instances
        ds.SourceInstanceSequence = sources
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = pdf + (b"\0" if len(pdf) % 2 else b"")
    ds.EncapsulatedDocumentLength = len(pdf)

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ENCAPSULATED_PDF_STORAGE
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = IMPLEMENTATION_UID
    meta.ImplementationVersionName = f"{SOFTWARE_NAME}{SOFTWARE_VERSION}"[:16]
    ds.file_meta = meta

    if deidentify_with is not None:
        ds = deidentify_with(ds)
    return ds


def pdf_bytes_of(ds: Dataset) -> bytes:
    """The PDF inside an Encapsulated PDF object, without the padding byte DICOM adds."""
    data = bytes(ds.EncapsulatedDocument)
    length = ds.get("EncapsulatedDocumentLength")
    if length is not None and 0 <= int(length) <= len(data):
        return data[: int(length)]
    # Older writers pad with NUL without recording the length; a PDF never ends with NUL.
    return data[:-1] if data.endswith(b"\0") else data


def write_dataset(ds: Dataset, path: str | os.PathLike[str]) -> Path:
    """Write a dataset as a DICOM Part 10 file, atomically.

    The file appears under its final name only when complete (written next to it, flushed,
    then renamed), so a PACS folder watcher or a crash never sees half a file.
    """
    target = Path(path)
    meta = getattr(ds, "file_meta", None)
    if meta is None or "TransferSyntaxUID" not in meta:
        raise DicomWriteError(f"Cannot write {target}: the dataset has no transfer syntax")
    directory = target.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=directory)
    except OSError as exc:
        raise DicomWriteError(f"Cannot write {target}: {exc.strerror or exc}") from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            ds.save_as(fh, enforce_file_format=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a PACS import folder must read it
        os.replace(tmp, target)
    except OSError as exc:
        raise DicomWriteError(f"Cannot write {target}: {exc.strerror or exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)  # only left over if something failed
    return target
