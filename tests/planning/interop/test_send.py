"""C-ECHO and C-STORE against real DICOM peers (DCMTK storescp / dcmqrscp) and broken ones."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import pydicom
import pytest
from pynetdicom import AE, evt
from pynetdicom.sop_class import EncapsulatedPDFStorage

from planning.errors import Cancelled
from planning.interop.encapsulated_pdf import (
    ENCAPSULATED_PDF_STORAGE,
    encapsulate_pdf,
    pdf_bytes_of,
    write_dataset,
)
from planning.interop.send import (
    RemoteAE,
    RemoteAEError,
    SendError,
    StoreResult,
    echo,
    send,
    status_meaning,
)
from planning.progress import Progress
from tests.planning.dicom_receiver import (
    COMPREHENSIVE_3D_SR,
    dcmqrscp_receiver,
    free_port,
    needs_dcmtk,
    sample_sr,
    sample_volume,
    silent_listener,
    storescp_receiver,
    tiny_pdf,
)


# ---- RemoteAE ---------------------------------------------------------------------------------
def test_parse_remote_ae() -> None:
    remote = RemoteAE.parse(" PACS_1@192.168.1.10:104 ")
    assert remote == RemoteAE("PACS_1", "192.168.1.10", 104)
    assert str(remote) == "PACS_1@192.168.1.10:104"
    assert RemoteAE.parse("ARCH@[::1]:11112") == RemoteAE("ARCH", "::1", 11112)
    assert str(RemoteAE("ARCH", "::1", 11112)) == "ARCH@[::1]:11112"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("PACS", "AE_TITLE@HOST:PORT"),
        ("PACS@host", "no port"),
        ("PACS@host:abc", "'abc' is not a number"),
        ("PACS@host:0", "between 1 and 65535"),
        ("PACS@host:65536", "between 1 and 65535"),
        ("ABCDEFGHIJKLMNOPQ@host:104", "17 characters long; DICOM allows at most 16"),
        ("PA\\CS@host:104", "backslash"),
        ("@host:104", "AE title is empty"),
        ("PACS@:104", "no port"),
        ("PACS@::1:104", "IPv6 address in brackets"),
    ],
)
def test_parse_remote_ae_refuses_bad_addresses(text: str, fragment: str) -> None:
    with pytest.raises(RemoteAEError, match=re.escape(fragment)) as info:
        RemoteAE.parse(text)
    assert isinstance(info.value, ValueError)


def test_calling_ae_title_is_validated() -> None:
    with pytest.raises(RemoteAEError, match="at most 16"):
        echo(RemoteAE("PACS", "127.0.0.1", 104), calling_ae="X" * 17)


@pytest.mark.parametrize(
    ("status", "category", "fragment"),
    [
        (0x0000, "success", "stored"),
        (0xB000, "warning", "coercion"),
        (0xA700, "failure", "out of resources"),
        (0xA7FF, "failure", "out of resources"),
        (0xA900, "failure", "does not match"),
        (0xC123, "failure", "could not understand"),
        (0x0122, "failure", "does not accept this type"),
        (0x0124, "failure", "not authorized"),
    ],
)
def test_status_meanings(status: int, category: str, fragment: str) -> None:
    got_category, meaning = status_meaning(status)
    assert got_category == category
    assert fragment in meaning
    result = StoreResult(ENCAPSULATED_PDF_STORAGE, "1.2.3", status, meaning)
    assert f"0x{status:04X}" in result.describe()
    assert "Encapsulated PDF Storage" in result.describe()


# ---- against storescp -----------------------------------------------------------------------
@needs_dcmtk
def test_echo_returns_round_trip(tmp_path: Path) -> None:
    with storescp_receiver(tmp_path) as receiver:
        seconds = echo(receiver.remote, timeout_s=5)
    assert 0.0 < seconds < 5.0


@needs_dcmtk
def test_sr_and_pdf_arrive_intact(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    volume = sample_volume()
    sr = sample_sr(volume)
    pdf = tiny_pdf()
    doc = encapsulate_pdf(pdf, volume)
    sr_path = write_dataset(sr, tmp_path / "plan_sr.dcm")  # one as a file, one in memory
    steps: list[tuple[int, int, str]] = []
    with (
        caplog.at_level(logging.INFO, logger="planning.interop.send"),
        storescp_receiver(tmp_path) as receiver,
    ):
        report = send(
            receiver.remote,
            [sr_path, doc],
            progress=Progress(lambda d, t, m: steps.append((d, t, m))),
        )
        files = receiver.received()
    assert report.ok
    assert [r.status for r in report.results] == [0x0000, 0x0000]
    assert [r.sop_class_uid for r in report.results] == [
        COMPREHENSIVE_3D_SR,
        ENCAPSULATED_PDF_STORAGE,
    ]
    assert len(files) == 2
    received = {str(d.SOPInstanceUID): d for d in (pydicom.dcmread(f) for f in files)}
    assert set(received) == {str(sr.SOPInstanceUID), str(doc.SOPInstanceUID)}
    got_doc = received[str(doc.SOPInstanceUID)]
    assert pdf_bytes_of(got_doc) == pdf
    assert got_doc.StudyInstanceUID == volume.study_uid
    assert got_doc.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    got_sr = received[str(sr.SOPInstanceUID)]
    assert got_sr.ContentSequence[1].TextValue == sr.ContentSequence[1].TextValue
    assert steps[0][:2] == (0, 2) and steps[-1][:2] == (2, 2)
    # the log names SOP classes and statuses, never the patient
    log_text = caplog.text
    assert "Encapsulated PDF Storage" in log_text
    for secret in ("Müller", "PID-0042", "ACC777", str(doc.SOPInstanceUID)):
        assert secret not in log_text


@needs_dcmtk
def test_refused_association_names_remote_and_reason(tmp_path: Path) -> None:
    with (
        storescp_receiver(tmp_path, extra_args=("--refuse",)) as receiver,
        pytest.raises(SendError) as info,
    ):
        echo(receiver.remote, timeout_s=5)
    message = str(info.value)
    assert "TESTPACS at 127.0.0.1:" in message
    assert "refused the association" in message


@needs_dcmtk
def test_wrong_called_ae_title_is_reported(tmp_path: Path) -> None:
    # storescp 3.6.7 answers to any called AE title; dcmqrscp checks it
    sr = sample_sr(sample_volume())
    with dcmqrscp_receiver(tmp_path, ae_title="ARCHIVE") as archive:
        assert echo(archive.remote, timeout_s=5) > 0
        wrong = RemoteAE("NOTARCHIVE", archive.remote.host, archive.remote.port)
        with pytest.raises(SendError) as info:
            send(wrong, [sr], timeout_s=5)
    message = str(info.value)
    assert f"NOTARCHIVE at 127.0.0.1:{wrong.port} refused the association" in message
    assert "called AE title not recognized" in message
    assert isinstance(info.value, OSError)


def test_nothing_listening_is_connection_refused() -> None:
    port = free_port()
    t0 = time.monotonic()
    with pytest.raises(SendError) as info:
        echo(RemoteAE("NOBODY", "127.0.0.1", port), timeout_s=5)
    assert time.monotonic() - t0 < 3
    message = str(info.value)
    assert f"Connection refused by 127.0.0.1:{port}" in message
    assert "no DICOM server is listening" in message


def test_server_that_never_answers_times_out() -> None:
    sr = sample_sr(sample_volume())
    with silent_listener() as remote:
        t0 = time.monotonic()
        with pytest.raises(SendError) as info:
            send(remote, [sr], timeout_s=1.0)
        elapsed = time.monotonic() - t0
    assert 0.9 <= elapsed < 4.0
    assert f"No DICOM server answered at 127.0.0.1:{remote.port} within 1 s" in str(info.value)


def test_unknown_host_name() -> None:
    with pytest.raises(SendError, match=r"host name 'no-such-pacs\.invalid' could not be found"):
        echo(RemoteAE("PACS", "no-such-pacs.invalid", 104), timeout_s=5)


@needs_dcmtk
def test_cancel_between_objects(tmp_path: Path) -> None:
    volume = sample_volume()
    objects = [sample_sr(volume) for _ in range(3)]
    progress = Progress()

    def cancel_after_first(done: int, total: int, message: str) -> None:
        if done == 1:  # the first object is stored; stop before the second
            progress.cancel()

    progress.callback = cancel_after_first
    with storescp_receiver(tmp_path) as receiver:
        with pytest.raises(Cancelled):
            send(receiver.remote, objects, progress=progress)
        received = [pydicom.dcmread(f).SOPInstanceUID for f in receiver.received()]
        assert echo(receiver.remote, timeout_s=5) > 0  # the association was released cleanly
    assert received == [objects[0].SOPInstanceUID]


@needs_dcmtk
def test_cancel_before_connecting_sends_nothing(tmp_path: Path) -> None:
    progress = Progress()
    progress.cancel()
    with storescp_receiver(tmp_path) as receiver:
        with pytest.raises(Cancelled):
            send(receiver.remote, [sample_sr(sample_volume())], progress=progress)
        assert receiver.received() == []


@needs_dcmtk
def test_unsupported_sop_class_is_a_failure_with_report(tmp_path: Path) -> None:
    sr = sample_sr(sample_volume())
    odd = sample_sr(sample_volume())
    odd.SOPClassUID = "1.2.826.0.1.3680043.10.1389.77.1"  # a private class storescp does not know
    odd.file_meta.MediaStorageSOPClassUID = odd.SOPClassUID
    with storescp_receiver(tmp_path) as receiver:
        with pytest.raises(SendError) as info:
            send(receiver.remote, [sr, odd], timeout_s=5)
        assert len(receiver.received()) == 1
    report = info.value.report
    assert report is not None
    assert [r.ok for r in report.results] == [True, False]
    assert "did not store 1 of 2 objects" in str(info.value)
    assert "does not accept" in str(info.value)


def test_store_failure_status_is_reported() -> None:
    """A PACS that answers C-STORE with a failure status (pynetdicom as the SCP)."""

    def out_of_resources(event: evt.Event) -> int:
        return 0xA700

    scp = AE(ae_title="FULLPACS")
    scp.add_supported_context(EncapsulatedPDFStorage, pydicom.uid.ExplicitVRLittleEndian)
    port = free_port()
    server = scp.start_server(
        ("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, out_of_resources)]
    )
    try:
        doc = encapsulate_pdf(tiny_pdf(), sample_volume())
        with pytest.raises(SendError) as info:
            send(RemoteAE("FULLPACS", "127.0.0.1", port), [doc], timeout_s=5)
    finally:
        server.shutdown()
    message = str(info.value)
    assert f"FULLPACS at 127.0.0.1:{port} did not store 1 of 1 objects" in message
    assert "Encapsulated PDF Storage: status 0xA700" in message
    assert "out of resources" in message


def test_not_a_dicom_file_is_refused_before_connecting(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    with pytest.raises(SendError, match=r"notes\.txt: it is not a DICOM file"):
        send(RemoteAE("PACS", "127.0.0.1", free_port()), [bad])
