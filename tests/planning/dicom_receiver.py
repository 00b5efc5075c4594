"""Real DICOM peers for the export tests, plus small objects to send to them.

* `storescp_receiver`: DCMTK's ``storescp`` on 127.0.0.1, a free port and an output folder;
  accepts every standard storage SOP class (SR, Encapsulated PDF, images) and writes each
  received object as ``<modality prefix>.<SOP Instance UID>.dcm``.
* `dcmqrscp_receiver`: DCMTK's ``dcmqrscp`` archive, which, unlike ``storescp`` 3.6.7, checks
  the called AE title and rejects unknown ones with "called AE title not recognized".
* `silent_listener`: a TCP socket that accepts connections and never says a word.
* `sample_volume`, `sample_sr`, `tiny_pdf`: a CT with identifying data, a minimal valid
  Comprehensive 3D SR in its study (with nested references), and a one-page PDF.

Each process is started by its own ``Popen`` and stopped through that handle.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from fpdf import FPDF
from orthanc_pacs import free_port, stop_process
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from planning.interop.send import RemoteAE
from planning.volume import PatientInfo, SourceInstance, Volume

COMPREHENSIVE_3D_SR = "1.2.840.10008.5.1.4.1.1.88.34"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
STARTUP_TIMEOUT_S = 10.0

needs_dcmtk = pytest.mark.skipif(
    shutil.which("storescp") is None, reason="DCMTK (storescp) is not installed"
)
needs_dciodvfy = pytest.mark.skipif(
    shutil.which("dciodvfy") is None, reason="dicom3tools (dciodvfy) is not installed"
)


@dataclass
class Receiver:
    """A running DICOM storage SCP and where it puts what it receives."""

    remote: RemoteAE
    out_dir: Path
    log_path: Path

    def received(self) -> list[Path]:
        return sorted(p for p in self.out_dir.rglob("*") if p.is_file() and p.suffix == ".dcm")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _wait_for_port(proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{proc.args!r} exited with {proc.returncode}:\n{log_path.read_text()}"
            )
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{proc.args!r} did not listen on port {port} within {STARTUP_TIMEOUT_S} s")


@contextlib.contextmanager
def _running(cmd: list[str], port: int, log_path: Path) -> Iterator[None]:
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(proc, port, log_path)
        yield
    finally:
        stop_process(proc, grace_s=5)


def storescp_command(ae_title: str, out_dir: Path, port: int, *extra: str) -> list[str]:
    """The storescp command line used by the tests (see the module docstring)."""
    return [
        "storescp",
        "--verbose",
        "--aetitle", ae_title,
        "--output-directory", str(out_dir),
        "--filename-extension", ".dcm",
        "--disable-host-lookup",
        "--acse-timeout", "5",
        "--dimse-timeout", "5",
        *extra,
        str(port),
    ]  # fmt: skip


@contextlib.contextmanager
def storescp_receiver(
    base_dir: Path, *, ae_title: str = "TESTPACS", extra_args: tuple[str, ...] = ()
) -> Iterator[Receiver]:
    """Run ``storescp`` until the block ends; files land in ``base_dir / "received"``."""
    out_dir = base_dir / "received"
    out_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = base_dir / "storescp.log"
    cmd = storescp_command(ae_title, out_dir, port, *extra_args)
    with _running(cmd, port, log_path):
        yield Receiver(RemoteAE(ae_title, "127.0.0.1", port), out_dir, log_path)


@contextlib.contextmanager
def dcmqrscp_receiver(base_dir: Path, *, ae_title: str = "ARCHIVE") -> Iterator[Receiver]:
    """Run a ``dcmqrscp`` archive that knows exactly one called AE title."""
    db = base_dir / "archive"
    db.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = base_dir / "dcmqrscp.cfg"
    config.write_text(
        f"NetworkTCPPort = {port}\nMaxPDUSize = 16384\nMaxAssociations = 4\n"
        "HostTable BEGIN\nHostTable END\nVendorTable BEGIN\nVendorTable END\n"
        f"AETable BEGIN\n{ae_title} {db} RW (10, 64mb) ANY\nAETable END\n"
    )
    log_path = base_dir / "dcmqrscp.log"
    # forks a child per association (--single-process exits after the first one)
    cmd = ["dcmqrscp", "--verbose", "--config", str(config), str(port)]
    with _running(cmd, port, log_path):
        yield Receiver(RemoteAE(ae_title, "127.0.0.1", port), db, log_path)


@contextlib.contextmanager
def silent_listener() -> Iterator[RemoteAE]:
    """A server that accepts TCP connections and then never sends anything."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(0.2)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept_loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(conn)

    thread = threading.Thread(target=accept_loop, name="silent-listener", daemon=True)
    thread.start()
    try:
        yield RemoteAE("SILENT", "127.0.0.1", int(server.getsockname()[1]))
    finally:
        stop.set()
        thread.join(timeout=2)
        for conn in accepted:
            conn.close()
        server.close()


# ---- objects to send ------------------------------------------------------------------------
def sample_volume() -> Volume:
    """A tiny CT carrying every identifying field PatientInfo has."""
    patient = PatientInfo(
        name="Müller^Hans",
        patient_id="PID-0042",
        birth_date="19501224",
        sex="M",
        study_date="20240312",
        study_time="101500",
        study_description="CT lumbar spine",
        series_description="Bone 1.0",
        accession_number="ACC777",
        referring_physician="Dr^Referrer",
        study_id="ST1",
        institution="St. Example Hospital",
    )
    return Volume(
        np.zeros((3, 4, 5), dtype=np.int16),
        np.diag([0.7, 0.7, 1.0, 1.0]),
        study_uid=generate_uid(),
        series_uid=generate_uid(),
        frame_of_reference_uid=generate_uid(),
        patient=patient,
        # the three slices, as if loaded from DICOM
        source_instances=tuple(SourceInstance(CT_IMAGE_STORAGE, generate_uid()) for _ in range(3)),
    )


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _content_item(relationship: str, value_type: str, concept: Dataset) -> Dataset:
    """An SR content item without its value: how it relates to its parent, its value
    type and its concept name (the caller sets the value attribute of that type)."""
    item = Dataset()
    item.RelationshipType = relationship
    item.ValueType = value_type
    item.ConceptNameCodeSequence = [concept]
    return item


def sample_sr(volume: Volume) -> Dataset:
    """A minimal valid Comprehensive 3D SR in the CT's study.

    Content: an observer name (PNAME), a free TEXT, a UIDREF, an IMAGE reference to a CT
    slice (nested ReferencedSOPSequence) and a SCOORD3D point in the CT's frame of reference.
    """
    p = volume.patient
    now = _dt.datetime(2024, 3, 12, 11, 0, 0)
    sop_uid = generate_uid()
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = COMPREHENSIVE_3D_SR
    ds.SOPInstanceUID = sop_uid
    ds.InstanceCreationDate = now.strftime("%Y%m%d")
    ds.InstanceCreationTime = now.strftime("%H%M%S")
    for name, keyword in PatientInfo.dicom_keywords().items():  # every one, to be removed
        setattr(ds, keyword, getattr(p, name))
    ds.StudyInstanceUID = volume.study_uid
    ds.Modality = "SR"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 9001
    ds.SeriesDescription = "Vertebroplasty plan"
    ds.ReferencedPerformedProcedureStepSequence = []
    ds.Manufacturer = "VertebroPlan"
    ds.StationName = "PLANNING-WS-1"
    ds.InstanceNumber = 1
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "UNVERIFIED"
    ds.ContentDate = now.strftime("%Y%m%d")
    ds.ContentTime = now.strftime("%H%M%S")
    ds.PerformedProcedureCodeSequence = []
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = [_code("18748-4", "LN", "Diagnostic imaging report")]
    ds.ContinuityOfContent = "SEPARATE"

    observer = _content_item("HAS OBS CONTEXT", "PNAME",
                             _code("121008", "DCM", "Person Observer Name"))
    observer.PersonName = "Planner^Petra"

    text = _content_item("CONTAINS", "TEXT", _code("121106", "DCM", "Comment"))
    text.TextValue = "L1 left: 11G, clearance to canal 3.2 mm"

    uidref = _content_item("CONTAINS", "UIDREF", _code("112002", "DCM", "Series Instance UID"))
    uidref.UID = volume.series_uid

    ref_sop = Dataset()
    ref_sop.ReferencedSOPClassUID = CT_IMAGE_STORAGE
    ref_sop.ReferencedSOPInstanceUID = volume.source_instances[1].sop_instance_uid
    image = _content_item("CONTAINS", "IMAGE", _code("121112", "DCM", "Source of Measurement"))
    image.ReferencedSOPSequence = [ref_sop]

    point = _content_item("CONTAINS", "SCOORD3D", _code("111010", "DCM", "Center"))
    point.GraphicType = "POINT"
    point.GraphicData = [12.5, -30.0, 101.25]
    point.ReferencedFrameOfReferenceUID = volume.frame_of_reference_uid

    ds.ContentSequence = [observer, text, uidref, image, point]
    evidence = Dataset()
    evidence.StudyInstanceUID = volume.study_uid
    series = Dataset()
    series.SeriesInstanceUID = volume.series_uid
    series_ref = Dataset()
    series_ref.ReferencedSOPClassUID = CT_IMAGE_STORAGE
    series_ref.ReferencedSOPInstanceUID = ref_sop.ReferencedSOPInstanceUID
    series.ReferencedSOPSequence = [series_ref]
    evidence.ReferencedSeriesSequence = [series]
    ds.CurrentRequestedProcedureEvidenceSequence = [evidence]

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = COMPREHENSIVE_3D_SR
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds


def tiny_pdf(text: str = "Vertebroplasty plan - test report") -> bytes:
    """A real one-page PDF written by fpdf2."""
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(text=text)
    return bytes(pdf.output())
