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

WAKE_LIMIT_S = 2.0


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


class _LateWakingCheckpoint(threading.Event):
    """The association thread's pause point, waking only once the next answer is on the
    queue: what a busy machine does to it, made certain.

    pynetdicom's thread marks itself paused before this wait and running after it; waking
    late leaves the mark "paused" while the next request already goes out, and the thread,
    running again as the answer arrives, takes it off the queue before the request waiting
    for it wakes (pynetdicom 3.0 then drops it as "unexpected").
    """

    def __init__(self, assoc: Any) -> None:
        super().__init__()
        self._queue = assoc.dimse.msg_queue
        self.set()

    def wait(self, timeout: float | None = None) -> bool:
        woke = super().wait(timeout)
        deadline = time.monotonic() + WAKE_LIMIT_S
        while self._queue.empty() and time.monotonic() < deadline:
            pass  # busy, as a loaded machine: the waiting request does not get to run
        return woke


def test_an_answer_taken_by_a_late_waking_association_thread_reaches_its_request(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tune = send_module.tune_association
    slowed = []

    def tune_then_slow(assoc):  # type: ignore[no-untyped-def]
        tune(assoc)
        assoc._reactor_checkpoint = _LateWakingCheckpoint(assoc)
        slowed.append(assoc)

    monkeypatch.setattr(send_module, "tune_association", tune_then_slow)
    images = _ct_images(6)
    with storescp_receiver(tmp_path) as receiver:
        report = send_module.send(receiver.remote, images, timeout_s=5)
        stored = receiver.received()
    assert slowed, "the association was not slowed: the test proves nothing"
    assert report.ok and len(report.stored) == 6
    assert len(stored) == 6
    assert report.elapsed_s < 5.0  # no request waited out its timeout


def test_without_the_fix_the_late_waking_thread_loses_an_answer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same send with pynetdicom's own behaviour: the stall the fix removes is real
    (else the test above would pass for the wrong reason)."""

    def slow_only(assoc):  # type: ignore[no-untyped-def]
        assoc._reactor_checkpoint = _LateWakingCheckpoint(assoc)

    monkeypatch.setattr(send_module, "tune_association", slow_only)
    with (storescp_receiver(tmp_path) as receiver,
          pytest.raises(send_module.SendError, match="did not confirm")):
        send_module.send(receiver.remote, _ct_images(6), timeout_s=2)


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
