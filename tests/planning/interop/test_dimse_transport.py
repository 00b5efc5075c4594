"""Every association VertebroPlan opens answers without TCP's delays and never loses the
answer a request waits for (`planning.interop.dimse_transport`), against DCMTK's storescp."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

import planning.interop.send as send_module
from planning.interop.send import VERIFICATION_SOP_CLASS, associate, build_context, finish, make_ae
from tests.planning.dicom_receiver import needs_dcmtk, storescp_receiver

pytestmark = needs_dcmtk

LATE_S = 0.3
"""How long the association thread is kept from running once let go: far longer than
storescp takes to answer an image (≤ 0.1 s with Nagle's algorithm)."""


def _ct_images(n: int) -> list[Dataset]:
    study, series = generate_uid(), generate_uid()
    images = []
    for k in range(n):
        ds = Dataset()
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, generate_uid()
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.PatientName, ds.PatientID, ds.Modality, ds.InstanceNumber = "Test^Send", "S1", "CT", k
        ds.Rows = ds.Columns = 64
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit, ds.PixelRepresentation, ds.SamplesPerPixel = 15, 1, 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.PixelData = np.full((64, 64), k, np.int16).tobytes()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        images.append(ds)
    return images


def _late_after_the_gate(gate: Any, assoc: Any, overlaps: list[float], late_s: float) -> None:
    """Keep the association thread from running for a while each time it passes its gate,
    as a busy machine does. An answer that arrives meanwhile belongs to a request sent
    while the thread was not stopped: the thread could take it off the queue (pynetdicom
    3.0 then drops it as "unexpected" and the request waits out its timeout). Each such
    arrival is recorded as it is queued, whoever then takes it."""
    wait = gate.wait
    queue = assoc.dimse.msg_queue
    put = queue.put
    late = threading.Event()

    def recording_put(item: Any, *args: Any, **kwargs: Any) -> None:
        if late.is_set():
            overlaps.append(time.monotonic())
        put(item, *args, **kwargs)

    def late_wait(timeout: float | None = None) -> bool:
        passed = wait(timeout)
        late.set()
        time.sleep(late_s)
        late.clear()
        return passed

    queue.put = recording_put
    gate.wait = late_wait


def _send_with_a_late_thread(monkeypatch: pytest.MonkeyPatch, receiver: Any, *, tuned: bool,
                             timeout_s: float, late_s: float) -> tuple[Any, list[float]]:
    """(the send's report, or the SendError it raised; the overlaps recorded)."""
    tune = send_module.tune_association
    slowed: list[Any] = []
    overlaps: list[float] = []

    def tune_then_slow(assoc: Any) -> None:
        if tuned:
            tune(assoc)
        else:  # pynetdicom's own gate, a threading.Event
            assoc._reactor_checkpoint = threading.Event()
            assoc._reactor_checkpoint.set()
        _late_after_the_gate(assoc._reactor_checkpoint, assoc, overlaps, late_s)
        slowed.append(assoc)

    monkeypatch.setattr(send_module, "tune_association", tune_then_slow)
    try:
        outcome: Any = send_module.send(receiver.remote, _ct_images(5), timeout_s=timeout_s)
    except send_module.SendError as exc:
        outcome = exc
    assert slowed, "the association was not slowed: the test proves nothing"
    return outcome, overlaps


def test_a_request_goes_out_only_once_the_association_thread_has_stopped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with storescp_receiver(tmp_path) as receiver:
        report, overlaps = _send_with_a_late_thread(monkeypatch, receiver, tuned=True,
                                                    timeout_s=5, late_s=LATE_S)
        assert len(receiver.received()) == 5
    assert overlaps == []
    assert report.ok and len(report.stored) == 5
    assert report.elapsed_s < 5.0  # no request waited out its timeout


def test_through_pynetdicoms_own_gate_requests_go_out_while_the_thread_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same send through pynetdicom's gate: answers arrive while the thread runs, each
    one it may take (whether it wins that race varies; a lost answer stalls the send until
    its timeout), so the test above asserts something that can fail."""
    with storescp_receiver(tmp_path) as receiver:
        _, overlaps = _send_with_a_late_thread(monkeypatch, receiver, tuned=False,
                                               timeout_s=5, late_s=LATE_S)
    assert overlaps


def test_associations_send_at_once_and_acknowledge_at_once(tmp_path: Path) -> None:
    with storescp_receiver(tmp_path) as receiver:
        ae = make_ae("VERTEBROPLAN", 5)
        assoc = associate(ae, receiver.remote, [build_context(VERIFICATION_SOP_CLASS)],
                          calling_ae="VERTEBROPLAN", timeout_s=5, what="verification")
        try:
            raw = assoc.dul.socket.socket
            assert raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
            assert assoc.send_c_echo().Status == 0x0000
            if hasattr(socket, "TCP_QUICKACK"):  # re-armed before each read (Linux)
                assert raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK) == 1
        finally:
            finish(assoc)
