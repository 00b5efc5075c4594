"""Search and retrieval over DIMSE: C-FIND, C-GET, and C-MOVE to our own storage SCP.

Why both retrievals: C-GET brings the images back on the association we opened (no port to
open on the workstation, no entry in the PACS beyond our AE title) but many PACS do not offer
it; C-MOVE is what every PACS offers, and needs the PACS to know this workstation's AE title,
host and port as a destination, where `StorageSCP` listens while the move runs.

Every failure is a `PacsError` naming the node and saying what went wrong; no patient data
and no UIDs go to the log (counts and status codes only).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from functools import partial
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import (
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom import AE, build_role, evt
from pynetdicom.association import Association
from pynetdicom.presentation import build_context
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    CTImageStorage,
    EnhancedCTImageStorage,
    LegacyConvertedEnhancedCTImageStorage,
    SecondaryCaptureImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from planning.errors import Cancelled
from planning.interop.dimse_transport import on_connection_open
from planning.interop.send import RemoteAE, associate, finish, make_ae
from planning.pacs import records
from planning.pacs.cache import InstanceStore
from planning.pacs.node import THIS_WORKSTATION, LocalAE, PacsError, check_uid
from planning.progress import Progress

log = logging.getLogger(__name__)

FIND = StudyRootQueryRetrieveInformationModelFind
GET = StudyRootQueryRetrieveInformationModelGet
MOVE = StudyRootQueryRetrieveInformationModelMove
IMAGE_CLASSES = (CTImageStorage, EnhancedCTImageStorage, LegacyConvertedEnhancedCTImageStorage,
                 SecondaryCaptureImageStorage)
"""What a retrieval accepts: the CT image classes (and secondary captures in a CT series)."""
TRANSFER_SYNTAXES: list[str | UID] = [
    ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian, JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLossless, JPEGLosslessSV1,
    JPEGLSLossless, JPEGLSNearLossless, JPEG2000Lossless, JPEG2000, RLELossless,
]
"""Every syntax the loader decodes: the PACS sends what it stores, nothing is transcoded."""
_PENDING = (0xFF00, 0xFF01)

_FAILURES: dict[int, str] = {
    0xA700: "the PACS is out of resources",
    0xA701: "the PACS is out of resources (could not count the images)",
    0xA702: "the PACS is out of resources (could not send the images)",
    0xA801: "the PACS does not know this workstation as a destination",
    0xA900: "the PACS did not understand the request",
    0xAA00: "none of the images could be sent",
    0xFE00: "the retrieval was cancelled",
}


def _status_words(code: int) -> str:
    if code in _FAILURES:
        return _FAILURES[code]
    if 0xC000 <= code <= 0xCFFF:
        return "the PACS was unable to process the request"
    return f"status 0x{code:04X}"




def _open(remote: RemoteAE, local: LocalAE, timeout_s: float, models: list[str], what: str,
          *, storage_role: bool = False, handlers: list[Any] | None = None) -> Association:
    ae = make_ae(local.ae_title, timeout_s)
    contexts = [build_context(m) for m in models]
    ext_neg = None
    if storage_role:
        contexts += [build_context(cls, TRANSFER_SYNTAXES) for cls in IMAGE_CLASSES]
        ext_neg = [build_role(cls, scp_role=True) for cls in IMAGE_CLASSES]
    return associate(ae, remote, contexts, calling_ae=local.ae_title, timeout_s=timeout_s,
                     what=what, ext_neg=ext_neg, evt_handlers=handlers, error=PacsError)


def _silence(assoc: Association, remote: RemoteAE, what: str, timeout_s: float,
             started: float) -> PacsError:
    """No answer to a request. Long before the timeout, the PACS broke off (it aborts or
    drops a request from a caller it does not allow); otherwise it timed out."""
    if assoc.is_aborted or time.monotonic() - started < 0.9 * timeout_s:
        return PacsError(
            f"{remote.describe()} broke off the {what}: it probably does not allow this "
            f"workstation (AE title '{assoc.requestor.ae_title}') to search or retrieve. Ask "
            "the PACS administrator to add it, with this computer's address.")
    return PacsError(f"{remote.describe()} stopped answering the {what} within {timeout_s:g} "
                     "s; try again (a retrieval fetches only what is still missing).")


def _find(assoc: Association, remote: RemoteAE, identifier: Dataset,
          timeout_s: float) -> Iterator[Dataset]:
    """The identifiers a C-FIND matches; a failure status or silence is a `PacsError`."""
    started = time.monotonic()
    for status, match in assoc.send_c_find(identifier, FIND):
        if "Status" not in status:
            raise _silence(assoc, remote, "search", timeout_s, started)
        code = int(status.Status)
        if code in _PENDING:
            if match is not None:
                yield match
            continue
        if code != 0x0000:
            raise PacsError(f"{remote.describe()} refused the search: {_status_words(code)}.")


def _find_identifier(level: str, keys: dict[str, str]) -> Dataset:
    """A C-FIND identifier at ``level``: each key by its DICOM keyword, an empty value
    asking the PACS to return it."""
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def find_studies(remote: RemoteAE, query: records.StudyQuery, *,
                 local: LocalAE = THIS_WORKSTATION,
                 timeout_s: float = 30) -> list[records.StudyRecord]:
    """C-FIND at study level, then the series of each study (of the query's modality).

    A study whose series include none of the modality is dropped, for PACS that ignore
    Modalities in Study as a key.
    """
    assoc = _open(remote, local, timeout_s, [FIND], "searching (C-FIND)")

    def series_of(study_uid: str) -> list[Dataset]:
        identifier = _find_identifier("SERIES", {
            "StudyInstanceUID": study_uid, "SeriesInstanceUID": "", "Modality": query.modality,
            "SeriesDescription": "", "SeriesNumber": "", "NumberOfSeriesRelatedInstances": ""})
        return list(_find(assoc, remote, identifier, timeout_s))

    try:
        identifier = _find_identifier("STUDY",
                                      {**query.matching_keys(), "StudyDescription": ""})
        found = records.studies_found(list(_find(assoc, remote, identifier, timeout_s)),
                                      series_of, query.modality)
    finally:
        finish(assoc)
    log.info("C-FIND %s: %d studies", remote, len(found))
    return found


def list_instances(remote: RemoteAE, study_uid: str, series_uid: str, *,
                   local: LocalAE = THIS_WORKSTATION, timeout_s: float = 30) -> list[str]:
    """The SOP instance UIDs of one series (C-FIND at image level)."""
    assoc = _open(remote, local, timeout_s, [FIND], "searching (C-FIND)")
    try:
        return _instances(assoc, remote, study_uid, series_uid, timeout_s)
    finally:
        finish(assoc)


def _instances(assoc: Association, remote: RemoteAE, study_uid: str, series_uid: str,
               timeout_s: float) -> list[str]:
    identifier = _find_identifier("IMAGE", {"StudyInstanceUID": study_uid,
                                            "SeriesInstanceUID": series_uid,
                                            "SOPInstanceUID": "", "InstanceNumber": ""})
    return records.instance_uids(_find(assoc, remote, identifier, timeout_s))


class _Receiver:
    """Files each C-STORE sub-operation into the store, counting what arrived.

    Runs on pynetdicom's threads; the caller's progress callback must be thread-safe.
    """

    def __init__(self, store: InstanceStore, expected: int, progress: Progress | None,
                 start: int) -> None:
        self.store = store
        self.expected = expected
        self.progress = progress
        self.received = start
        self.failed = 0
        self.lock = threading.Lock()

    def on_store(self, event: evt.Event) -> int:
        if self.progress is not None and self.progress.cancelled:
            return 0xFE00  # refused: the retrieval is being cancelled
        try:
            ds = event.dataset
            self.store.write_file(str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID),
                                  str(ds.SOPInstanceUID), event.encoded_dataset())
        except (PacsError, AttributeError, OSError) as exc:
            log.warning("a received image could not be filed: %s", type(exc).__name__)
            with self.lock:
                self.failed += 1
            return 0xA700 if isinstance(exc, OSError) else 0xC000
        with self.lock:
            self.received += 1
            done = self.received
        if self.progress is not None and self.progress.callback is not None:
            self.progress.callback(done, self.expected, f"{done} of {self.expected} images")
        return 0x0000


class StorageSCP:
    """This workstation's storage SCP, listening while a C-MOVE runs (a context manager).

    Accepts only associations addressed to its own AE title and only image classes.
    """

    def __init__(self, local: LocalAE, receiver: _Receiver, host: str = "") -> None:
        self.local = local
        self.host = host
        self.receiver = receiver
        self._server: Any = None

    def __enter__(self) -> StorageSCP:
        ae = AE(ae_title=self.local.ae_title)
        ae.require_called_aet = True
        for cls in IMAGE_CLASSES:
            ae.add_supported_context(cls, TRANSFER_SYNTAXES)
        try:
            self._server = ae.start_server(
                (self.host, self.local.port), block=False,
                evt_handlers=[(evt.EVT_C_STORE, self.receiver.on_store),
                              (evt.EVT_CONN_OPEN, on_connection_open)])
        except OSError as exc:
            raise PacsError(
                f"This workstation cannot listen for images on port {self.local.port} "
                f"({exc.strerror or exc}): another program uses it, or it needs "
                "administrator rights. Choose another port in Settings ▸ PACS and tell the "
                "PACS administrator.") from exc
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None


def retrieve_series(remote: RemoteAE, study_uid: str, series_uid: str, store: InstanceStore,
                    *, method: str = "get", local: LocalAE = THIS_WORKSTATION,
                    progress: Progress | None = None, timeout_s: float = 30,
                    scp_host: str = "",
                    only: Sequence[str] | None = None) -> records.RetrieveReport:
    """Bring one series into ``store``: only the images it does not hold yet.

    ``method`` is ``"get"`` (C-GET) or ``"move"`` (C-MOVE to ``local``'s storage SCP, which
    listens on ``scp_host``:``local.port`` for the duration).
    """
    if method not in ("get", "move"):
        raise ValueError(f"method must be 'get' or 'move', got {method!r}")
    study_uid = check_uid(study_uid, "study")
    series_uid = check_uid(series_uid, "series")
    t0 = time.monotonic()
    assoc = _open(remote, local, timeout_s, [FIND], "searching (C-FIND)")
    try:
        expected = _instances(assoc, remote, study_uid, series_uid, timeout_s)
    finally:
        finish(assoc)
    if not expected:
        raise PacsError(f"{remote.describe()} has no images in that series (no match).")
    expected, missing = store.to_fetch(study_uid, series_uid, expected, only)
    already = len(expected) - len(missing)
    receiver = _Receiver(store, len(expected), progress, already)
    if progress is not None:
        progress.report(already, len(expected), f"{already} of {len(expected)} images")
    if missing:
        run = _c_get if method == "get" else _c_move
        scp: AbstractContextManager[object] = (
            StorageSCP(local, receiver, scp_host) if method == "move" else nullcontext())
        with scp:
            try:
                run(remote, local, [_identifier(study_uid, series_uid, missing,
                                                already or only is not None)],
                    receiver, progress, timeout_s, tolerate=False)
                first_failure = None
            except _RequestFailed as exc:
                first_failure = exc
            left = sorted(set(missing) - store.present(study_uid, series_uid))
            if left and first_failure is not None:
                # One unreadable image fails the whole request on some PACS (Orthanc):
                # ask for the rest one by one, so every image that can come does.
                run(remote, local, [_identifier(study_uid, series_uid, [uid], 1)
                                    for uid in left], receiver, progress, timeout_s,
                    tolerate=True)
                if receiver.received == already:  # nothing at all could come
                    raise first_failure.explained(method)
    report = store.report(study_uid, series_uid, expected, already, t0)
    log.info("retrieve (%s) from %s: %d expected, %d present, %d fetched, %d missing, %.1f s",
             method, remote, report.expected, report.already_present, report.fetched,
             len(report.missing), report.seconds)
    return report


def _identifier(study_uid: str, series_uid: str, sop_uids: list[str],
                by_image: int | bool) -> Dataset:
    """The whole series, or (part of it cached, or only some asked) the listed images."""
    identifier = Dataset()
    identifier.StudyInstanceUID = study_uid
    identifier.SeriesInstanceUID = series_uid
    if by_image:
        identifier.QueryRetrieveLevel = "IMAGE"
        identifier.SOPInstanceUID = sop_uids
    else:
        identifier.QueryRetrieveLevel = "SERIES"
    return identifier


class _RequestFailed(PacsError):
    """A C-GET/C-MOVE request ended with a failure status (the association is fine)."""

    def __init__(self, message: str, code: int, remote: RemoteAE, calling_ae: str) -> None:
        super().__init__(message)
        self.code = code
        self.remote = remote
        self.calling_ae = calling_ae

    def explained(self, method: str) -> PacsError:
        """The words for a request that brought nothing: for C-MOVE a processing failure
        most often means the PACS cannot send to us (Orthanc answers C000 for an unknown
        destination, where the standard says A801)."""
        if method == "move" and 0xC000 <= self.code <= 0xCFFF:
            return PacsError(
                f"{self.remote.describe()} could not send any image to this workstation "
                f"(status 0x{self.code:04X}): most often it does not know AE title "
                f"'{self.calling_ae}' as a C-MOVE destination. Ask the PACS administrator to "
                "add it with this computer's address and storage port (Settings ▸ PACS), or "
                "use C-GET.")
        return self


def _follow(responses: Iterator[tuple[Dataset, Dataset | None]], assoc: Association,
            remote: RemoteAE, progress: Progress | None, timeout_s: float, what: str) -> None:
    """Consume a C-GET/C-MOVE's responses. Cancel aborts the association; a failure status
    raises `_RequestFailed` (the caller decides what is missing); a refusal of the
    destination or of the association is a `PacsError`."""
    started = time.monotonic()
    for status, _identifier in responses:
        if progress is not None and progress.cancelled:
            assoc.abort()
            raise Cancelled(records.RETRIEVAL_CANCELLED)
        if "Status" not in status:
            raise _silence(assoc, remote, what, timeout_s, started)
        code = int(status.Status)
        if code in _PENDING:
            continue
        if code in (0x0000, 0xB000):  # B000: some sub-operations failed; counted after
            return
        if code == 0xA801:
            raise PacsError(
                f"{remote.describe()} does not know this workstation as a C-MOVE destination: "
                f"ask the PACS administrator to add AE title '{assoc.requestor.ae_title}' with "
                "this computer's address and storage port (Settings ▸ PACS), or use C-GET.")
        if code == 0xFE00 and progress is not None and progress.cancelled:
            raise Cancelled(records.RETRIEVAL_CANCELLED)
        raise _RequestFailed(f"{remote.describe()} refused the {what}: {_status_words(code)}.",
                             code, remote, assoc.requestor.ae_title)


def _run_all(assoc: Association, remote: RemoteAE,
             requests: list[Callable[[], Iterator[tuple[Dataset, Dataset | None]]]],
             progress: Progress | None, timeout_s: float, what: str, tolerate: bool) -> None:
    for send in requests:
        try:
            _follow(send(), assoc, remote, progress, timeout_s, what)
        except _RequestFailed:
            if not tolerate:
                raise


def _c_get(remote: RemoteAE, local: LocalAE, identifiers: list[Dataset], receiver: _Receiver,
           progress: Progress | None, timeout_s: float, *, tolerate: bool) -> None:
    assoc = _open(remote, local, timeout_s, [FIND, GET], "retrieval (C-GET)", storage_role=True,
                  handlers=[(evt.EVT_C_STORE, receiver.on_store)])
    try:
        if not any(cx.abstract_syntax == GET for cx in assoc.accepted_contexts):
            raise PacsError(f"{remote.describe()} does not offer C-GET: choose C-MOVE for it "
                            "in Settings ▸ PACS.")
        _run_all(assoc, remote, [partial(assoc.send_c_get, i, GET) for i in identifiers],
                 progress, timeout_s, "retrieval (C-GET)", tolerate)
    finally:
        finish(assoc)


def _c_move(remote: RemoteAE, local: LocalAE, identifiers: list[Dataset], _receiver: _Receiver,
            progress: Progress | None, timeout_s: float, *, tolerate: bool) -> None:
    assoc = _open(remote, local, timeout_s, [MOVE], "retrieval (C-MOVE)")
    try:
        _run_all(assoc, remote,
                 [partial(assoc.send_c_move, i, local.ae_title, MOVE) for i in identifiers],
                 progress, timeout_s, "retrieval (C-MOVE)", tolerate)
    finally:
        finish(assoc)
