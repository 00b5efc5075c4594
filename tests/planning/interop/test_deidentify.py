"""The Encapsulated PDF object and the Basic Application Level Confidentiality Profile.

Both objects are checked with dicom3tools' ``dciodvfy`` (zero errors), before and after
de-identification.
"""

from __future__ import annotations

import datetime as _dt
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO

from planning.interop.deidentify import DeidentificationError, Deidentifier
from planning.interop.encapsulated_pdf import (
    ENCAPSULATED_PDF_STORAGE,
    EncapsulationError,
    encapsulate_pdf,
    pdf_bytes_of,
    write_dataset,
)
from planning.volume import Volume
from tests.planning.dicom_receiver import needs_dciodvfy, sample_sr, sample_volume, tiny_pdf

IDENTIFYING = (
    "Müller",
    "Hans",
    "PID-0042",
    "19501224",
    "20240312",
    "ACC777",
    "Referrer",
    "St. Example Hospital",
    "CT lumbar spine",
    "PLANNING-WS-1",
    "Planner",
    "Petra",
)
"""Every identifying string the sample CT, SR and PDF carry."""


def dciodvfy(ds: Dataset, path: Path) -> tuple[list[str], str]:
    """Write ``ds`` and run dciodvfy on it: (error lines, whole output)."""
    write_dataset(ds, path)
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, check=False)
    output = run.stdout + run.stderr
    return [line for line in output.splitlines() if line.startswith("Error")], output


def walk(ds: Dataset) -> Iterator[pydicom.DataElement]:
    """Every element of a dataset, recursing into sequences."""
    for elem in ds:
        yield elem
        if elem.VR == "SQ":
            for item in elem.value:
                yield from walk(item)


def instance_uids(ds: Dataset) -> set[str]:
    """Every UI value that names an instance (not a class, syntax or coding scheme)."""
    out = set()
    for elem in walk(ds):
        if elem.VR != "UI" or elem.value in (None, ""):
            continue
        values = (
            elem.value
            if isinstance(elem.value, list | pydicom.multival.MultiValue)
            else [elem.value]
        )
        out.update(str(v) for v in values if not str(v).startswith("1.2.840.10008."))
    return out


def header_bytes(ds: Dataset) -> bytes:
    """The dataset encoded (without the PDF), to search for any left-over identifier."""
    ds = ds.copy()
    if "EncapsulatedDocument" in ds:
        del ds.EncapsulatedDocument
    fp = DicomBytesIO()
    pydicom.dcmwrite(fp, ds, implicit_vr=False, little_endian=True)
    meta = getattr(ds, "file_meta", None)
    meta_text = "" if meta is None else str(meta)
    return fp.getvalue() + meta_text.encode()


@pytest.fixture
def volume() -> Volume:
    return sample_volume()


# ---- Encapsulated PDF --------------------------------------------------------------------------
def test_encapsulated_pdf_header(volume: Volume) -> None:
    pdf = tiny_pdf()
    ds = encapsulate_pdf(
        pdf, volume, title="Plan L1", series_number=77, now=_dt.datetime(2024, 5, 6, 7, 8, 9)
    )
    assert ds.SOPClassUID == ENCAPSULATED_PDF_STORAGE
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.StudyInstanceUID == volume.study_uid
    assert ds.SeriesInstanceUID not in (volume.series_uid, "")
    assert ds.SOPInstanceUID != ds.SeriesInstanceUID
    assert (ds.Modality, ds.ConversionType, ds.BurnedInAnnotation) == ("DOC", "WSD", "YES")
    assert ds.MIMETypeOfEncapsulatedDocument == "application/pdf"
    assert ds.DocumentTitle == "Plan L1"
    assert ds.SeriesNumber == 77
    assert (ds.ContentDate, ds.ContentTime) == ("20240506", "070809")
    assert str(ds.PatientName) == "Müller^Hans"
    assert (ds.PatientID, ds.AccessionNumber, ds.StudyDate) == ("PID-0042", "ACC777", "20240312")
    assert [i.ReferencedSOPInstanceUID for i in ds.SourceInstanceSequence] == [
        s.sop_instance_uid for s in volume.source_instances
    ]
    assert len(ds.EncapsulatedDocument) % 2 == 0
    assert ds.EncapsulatedDocumentLength == len(pdf)
    assert pdf_bytes_of(ds) == pdf


def test_each_encapsulation_is_a_new_series_and_instance(volume: Volume) -> None:
    a, b = (encapsulate_pdf(tiny_pdf(), volume) for _ in range(2))
    assert a.SOPInstanceUID != b.SOPInstanceUID
    assert a.SeriesInstanceUID != b.SeriesInstanceUID
    assert a.StudyInstanceUID == b.StudyInstanceUID == volume.study_uid


@needs_dciodvfy
def test_encapsulated_pdf_passes_dciodvfy(volume: Volume, tmp_path: Path) -> None:
    errors, output = dciodvfy(encapsulate_pdf(tiny_pdf(), volume), tmp_path / "doc.dcm")
    assert errors == [], output
    assert "EncapsulatedPDF" in output


def test_encapsulated_pdf_round_trips_through_a_file(volume: Volume, tmp_path: Path) -> None:
    pdf = tiny_pdf("odd length!")  # exercises the padding byte
    path = write_dataset(encapsulate_pdf(pdf, volume), tmp_path / "sub" / "doc.dcm")
    assert pdf_bytes_of(pydicom.dcmread(path)) == pdf
    assert [p.name for p in path.parent.iterdir()] == ["doc.dcm"]  # no temporary left over


def test_not_a_pdf_is_refused(volume: Volume, tmp_path: Path) -> None:
    with pytest.raises(EncapsulationError, match="is not a PDF file"):
        encapsulate_pdf(b"GIF89a....", volume)
    with pytest.raises(EncapsulationError, match=r"Cannot read the PDF report .*missing\.pdf"):
        encapsulate_pdf(tmp_path / "missing.pdf", volume)


def test_pdf_from_a_path(volume: Volume, tmp_path: Path) -> None:
    pdf = tiny_pdf()
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    assert pdf_bytes_of(encapsulate_pdf(path, volume)) == pdf


# ---- de-identification -----------------------------------------------------------------------
def test_identifiers_are_gone(volume: Volume) -> None:
    deid = Deidentifier(document_content_deidentified=True)
    sr = sample_sr(volume)
    doc = encapsulate_pdf(tiny_pdf(), volume)
    for original in (sr, doc):
        out = deid(original)
        assert out.PatientName.family_name == "ANONYMOUS"
        assert out.PatientID.startswith("ANON-") and out.PatientID != "PID-0042"
        assert out.PatientBirthDate == ""
        assert out.PatientSex == ""  # Basic profile: Z (see retain_patient_characteristics)
        assert out.AccessionNumber == ""
        assert out.ReferringPhysicianName == ""
        assert out.StudyID == ""
        assert (out.StudyDate, out.StudyTime) == ("", "")
        for gone in ("InstitutionName", "StudyDescription", "SeriesDescription", "StationName"):
            assert gone not in out, gone
        encoded = header_bytes(out)
        for secret in IDENTIFYING:
            assert secret.encode() not in encoded, secret
        # the original is untouched
        assert str(original.PatientName) == "Müller^Hans"


def test_profile_is_declared(volume: Volume) -> None:
    deid = Deidentifier(document_content_deidentified=True)
    sr = deid(sample_sr(volume))
    doc = deid(encapsulate_pdf(tiny_pdf(), volume))
    for out in (sr, doc):
        assert out.PatientIdentityRemoved == "YES"
        first = out.DeidentificationMethodCodeSequence[0]
        assert (first.CodeValue, first.CodingSchemeDesignator) == ("113100", "DCM")
        assert first.CodeMeaning == "Basic Application Confidentiality Profile"
        assert "Basic Application Confidentiality Profile" in out.DeidentificationMethod
        assert out.LongitudinalTemporalInformationModified == "REMOVED"
    sr_codes = [c.CodeValue for c in sr.DeidentificationMethodCodeSequence]
    assert sr_codes == ["113100", "113104"]  # the SR content is kept, cleaned
    assert [c.CodeValue for c in doc.DeidentificationMethodCodeSequence] == ["113100"]


def test_sr_content_is_cleaned_but_kept(volume: Volume) -> None:
    deid = Deidentifier()
    sr = sample_sr(volume)
    out = deid(sr)
    observer, text, uidref, _image, point = out.ContentSequence
    assert observer.PersonName.family_name == "ANONYMOUS"
    assert text.TextValue == sr.ContentSequence[1].TextValue
    assert list(point.GraphicData) == [12.5, -30.0, 101.25]
    assert deid.uid(volume.series_uid) == uidref.UID
    assert point.ReferencedFrameOfReferenceUID == deid.uid(volume.frame_of_reference_uid)
    # type 1 in the SR Document General Module: replaced by a dummy, not removed
    assert (out.ContentDate, out.ContentTime) == ("19000101", "000000")


def test_uids_are_all_replaced_and_mapped_consistently(volume: Volume) -> None:
    deid = Deidentifier(document_content_deidentified=True)
    sr = sample_sr(volume)
    doc = encapsulate_pdf(tiny_pdf(), volume)
    sr_out, doc_out = deid(sr), deid(doc)

    before = instance_uids(sr) | instance_uids(doc)
    after = instance_uids(sr_out) | instance_uids(doc_out)
    assert before and after
    assert before.isdisjoint(after)  # not one original instance UID survives
    assert len(after) == len(before)  # one-to-one
    assert all(u.startswith("2.25.") for u in after)

    # one study, one frame of reference, references still resolve
    assert sr_out.StudyInstanceUID == doc_out.StudyInstanceUID == deid.uid(volume.study_uid)
    evidence = sr_out.CurrentRequestedProcedureEvidenceSequence[0]
    assert evidence.StudyInstanceUID == sr_out.StudyInstanceUID
    series = evidence.ReferencedSeriesSequence[0]
    image = sr_out.ContentSequence[3]
    assert (
        image.ReferencedSOPSequence[0].ReferencedSOPInstanceUID
        == series.ReferencedSOPSequence[0].ReferencedSOPInstanceUID
    )
    assert series.SeriesInstanceUID == sr_out.ContentSequence[2].UID
    assert sr_out.SeriesInstanceUID != doc_out.SeriesInstanceUID
    # the PDF's source images and the SR's image reference: same CT slice, same new UID
    assert (
        doc_out.SourceInstanceSequence[1].ReferencedSOPInstanceUID
        == image.ReferencedSOPSequence[0].ReferencedSOPInstanceUID
    )
    for out in (sr_out, doc_out):
        assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    # classes are kept
    assert (
        image.ReferencedSOPSequence[0].ReferencedSOPClassUID
        == sr.ContentSequence[3].ReferencedSOPSequence[0].ReferencedSOPClassUID
    )
    assert sr_out.SOPClassUID == sr.SOPClassUID
    # de-identifying the same object twice gives the same result
    assert deid(sr).SOPInstanceUID == sr_out.SOPInstanceUID


def test_same_key_same_pseudonym_other_key_other(volume: Volume) -> None:
    key = b"site secret 0123456789"
    a, b, c = Deidentifier(key=key), Deidentifier(key=key), Deidentifier()
    sr = sample_sr(volume)
    assert a(sr).PatientID == b(sr).PatientID != c(sr).PatientID
    assert a.uid(volume.study_uid) == b.uid(volume.study_uid) != c.uid(volume.study_uid)
    assert a.pseudonym("PID-0042") != a.pseudonym("PID-0043")
    with pytest.raises(DeidentificationError, match="at least 16 bytes"):
        Deidentifier(key=b"short")


def test_document_must_be_vouched_for(volume: Volume) -> None:
    doc = encapsulate_pdf(tiny_pdf(), volume)
    with pytest.raises(DeidentificationError, match="may show the patient's name"):
        Deidentifier()(doc)
    with pytest.raises(DeidentificationError):
        encapsulate_pdf(tiny_pdf(), volume, deidentify_with=Deidentifier())


def test_encapsulate_with_deidentifier(volume: Volume) -> None:
    deid = Deidentifier(document_content_deidentified=True)
    pdf = tiny_pdf("ANONYMOUS / ANON-...")
    doc = encapsulate_pdf(pdf, volume, deidentify_with=deid)
    assert doc.PatientIdentityRemoved == "YES"
    assert doc.StudyInstanceUID == deid.uid(volume.study_uid)
    assert pdf_bytes_of(doc) == pdf


def test_date_shift_option(volume: Volume) -> None:
    deid = Deidentifier(date_shift_days=-100, document_content_deidentified=True)
    sr = deid(sample_sr(volume))
    doc = deid(encapsulate_pdf(tiny_pdf(), volume, now=_dt.datetime(2024, 5, 6, 7, 8, 9)))
    assert sr.StudyDate == doc.StudyDate == "20231203"  # 2024-03-12 - 100 days
    assert sr.StudyTime == "101500"
    assert (sr.ContentDate, sr.ContentTime) == ("20231203", "110000")
    assert doc.AcquisitionDateTime == "20240127070809"
    assert sr.PatientBirthDate == ""
    assert sr.LongitudinalTemporalInformationModified == "MODIFIED"
    assert "113107" in [c.CodeValue for c in sr.DeidentificationMethodCodeSequence]


def test_retain_patient_characteristics_option(volume: Volume) -> None:
    out = Deidentifier(retain_patient_characteristics=True)(sample_sr(volume))
    assert out.PatientSex == "M"
    assert "113108" in [c.CodeValue for c in out.DeidentificationMethodCodeSequence]


def test_private_elements_are_removed(volume: Volume) -> None:
    sr = sample_sr(volume)
    block = sr.private_block(0x0099, "SOME VENDOR", create=True)
    block.add_new(0x01, "LO", "Müller secret")
    sr.ContentSequence[1].add_new(0x00991001, "LO", "nested secret")
    out = Deidentifier()(sr)
    assert not any(elem.tag.is_private for elem in walk(out))


def test_patient_info_for_the_report_matches_the_header(volume: Volume) -> None:
    deid = Deidentifier(document_content_deidentified=True)
    info = deid.patient_info(volume.patient)
    doc = deid(encapsulate_pdf(tiny_pdf(), volume))
    assert info.name == str(doc.PatientName)
    assert info.patient_id == doc.PatientID
    assert (info.birth_date, info.accession_number, info.institution, info.sex) == ("", "", "", "")
    assert (info.study_date, info.referring_physician, info.study_description) == ("", "", "")


@needs_dciodvfy
def test_deidentified_objects_pass_dciodvfy(volume: Volume, tmp_path: Path) -> None:
    deid = Deidentifier(document_content_deidentified=True)
    doc = deid(encapsulate_pdf(tiny_pdf(), volume))
    errors, output = dciodvfy(doc, tmp_path / "doc.dcm")
    assert errors == [], output
    sr_errors, sr_output = dciodvfy(deid(sample_sr(volume)), tmp_path / "sr.dcm")
    assert sr_errors == [], sr_output
    shifted = Deidentifier(date_shift_days=3, document_content_deidentified=True)
    errors, output = dciodvfy(shifted(encapsulate_pdf(tiny_pdf(), volume)), tmp_path / "d2.dcm")
    assert errors == [], output


def test_an_item_shared_by_two_sequences_is_mapped_once() -> None:
    """highdicom's SEG puts one referenced-image item object in two sequences: its UID must
    still map to the same new UID as the image it points at (found by sending a
    de-identified CT with its SEG)."""
    ref = Dataset()
    ref.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ref.ReferencedSOPInstanceUID = "1.2.3.4.5"
    ds = Dataset()
    ds.PatientName = "Doe^Jane"
    ds.SOPInstanceUID = "1.2.3.9"
    ds.ReferencedImageSequence = [ref]
    ds.SourceImageSequence = [ref]  # the very same item object
    deid = Deidentifier()
    out = deid(ds)
    want = deid.uid("1.2.3.4.5")
    assert out.ReferencedImageSequence[0].ReferencedSOPInstanceUID == want
    assert out.SourceImageSequence[0].ReferencedSOPInstanceUID == want
    assert ds.SourceImageSequence[0].ReferencedSOPInstanceUID == "1.2.3.4.5"  # untouched
