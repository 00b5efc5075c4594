"""Sending plan objects to a PACS: DICOM C-ECHO ("test connection") and C-STORE.

Every failure becomes a `SendError` whose message names the remote (``AET at HOST:PORT``)
and says what went wrong in words a radiographer can act on: the PACS refused us and why,
nothing listens on that port, something listens but never answers, or the PACS refused
one object (with its status code and what the code means).

Patient data is never logged: the log gets SOP class names and status codes only.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.pdu import A_ASSOCIATE_RJ
from pynetdicom.presentation import PresentationContext, build_context

from planning.errors import VertebroPlanError
from planning.interop.dimse_transport import tune_association
from planning.progress import Progress

log = logging.getLogger(__name__)

DEFAULT_CALLING_AE = "VERTEBROPLAN"
VERIFICATION_SOP_CLASS = UID("1.2.840.10008.1.1")
MAX_CONTEXTS = 128  # PS3.8: presentation context IDs are odd numbers 1..255
_UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
_AE_TITLE_CHARS = re.compile(r"^[\x20-\x5b\x5d-\x7e]+$")  # printable ASCII, no backslash


class SendError(VertebroPlanError, OSError):
    """Talking to the PACS failed; the message names the remote and says why.

    ``report`` holds the per-object results when the association got as far as storing.
    """

    def __init__(self, message: str, *, report: SendReport | None = None) -> None:
        super().__init__(message)
        self.report = report

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class RemoteAEError(VertebroPlanError, ValueError):
    """A PACS address (AE title, host, port) is not valid."""


def _check_ae_title(ae_title: str, what: str) -> str:
    title = ae_title.strip(" ")
    if not title:
        raise RemoteAEError(f"The {what} AE title is empty")
    if len(title) > 16:
        raise RemoteAEError(
            f"The {what} AE title '{title}' is {len(title)} characters long; "
            "DICOM allows at most 16"
        )
    if "\\" in title:
        raise RemoteAEError(
            f"The {what} AE title '{title}' contains a backslash, which DICOM forbids"
        )
    if not _AE_TITLE_CHARS.match(title):
        raise RemoteAEError(
            f"The {what} AE title '{title}' may only contain letters, digits, spaces and "
            "ordinary punctuation (ASCII)"
        )
    return title


@dataclass(frozen=True)
class RemoteAE:
    """A DICOM peer: its AE title and where it listens."""

    ae_title: str
    host: str
    port: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "ae_title", _check_ae_title(self.ae_title, "PACS"))
        host = self.host.strip()
        if not host or any(c.isspace() for c in host):
            raise RemoteAEError(f"The PACS host name '{self.host}' is empty or contains spaces")
        object.__setattr__(self, "host", host)
        if isinstance(self.port, bool) or not isinstance(self.port, int):
            raise RemoteAEError(f"The PACS port must be a whole number, got {self.port!r}")
        if not 1 <= self.port <= 65535:
            raise RemoteAEError(f"The PACS port must be between 1 and 65535, got {self.port}")

    @classmethod
    def parse(cls, text: str) -> RemoteAE:
        """Parse ``"AET@HOST:PORT"`` (IPv6 hosts in brackets: ``"AET@[::1]:104"``)."""
        ae_title, at, address = text.strip().partition("@")
        if not at:
            raise RemoteAEError(
                f"'{text}' is not a PACS address: write it as AE_TITLE@HOST:PORT, "
                "e.g. PACS@192.168.1.10:104"
            )
        host, colon, port_text = address.rpartition(":")
        if not colon or not host:
            raise RemoteAEError(
                f"'{text}' has no port: write it as AE_TITLE@HOST:PORT, e.g. PACS@192.168.1.10:104"
            )
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        elif ":" in host:
            raise RemoteAEError(f"'{text}': write an IPv6 address in brackets, e.g. PACS@[::1]:104")
        if not port_text.strip().isdigit():
            raise RemoteAEError(f"'{text}': the port '{port_text}' is not a number")
        return cls(ae_title, host, int(port_text))

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.ae_title}@{host}:{self.port}"

    def describe(self) -> str:
        """How messages name the remote: ``PACS at 10.0.0.5:104``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.ae_title} at {host}:{self.port}"


# ---- statuses --------------------------------------------------------------------------
_STATUS_MEANINGS: dict[int, tuple[str, str]] = {
    0x0000: ("success", "stored"),
    0xB000: ("warning", "stored, but the PACS changed some data elements (coercion)"),
    0xB006: ("warning", "stored, but the PACS discarded some data elements"),
    0xB007: ("warning", "stored, but the PACS says the object does not match its type"),
    0x0107: ("warning", "stored, but the PACS ignored some attributes"),
    0x0116: ("warning", "stored, but some attribute values were out of range"),
    0x0110: ("failure", "the PACS failed to process the object"),
    0x0111: ("failure", "the PACS already has an object with this identifier"),
    0x0117: ("failure", "the PACS says the object's identifier (SOP Instance UID) is invalid"),
    0x0118: ("failure", "the PACS does not know this type of object"),
    0x0122: ("failure", "the PACS does not accept this type of object"),
    0x0124: ("failure", "this workstation is not authorized to store on the PACS"),
    0x0210: ("failure", "the PACS received the object twice at once (duplicate invocation)"),
    0x0211: ("failure", "the PACS did not recognize the request"),
    0x0212: ("failure", "the PACS rejected an argument of the request (mistyped argument)"),
    0x0213: ("failure", "the PACS ran out of resources"),
    0xFE00: ("cancel", "the PACS cancelled the transfer"),
}


def status_meaning(status: int) -> tuple[str, str]:
    """``(category, meaning)`` of a C-STORE status; category is success/warning/failure/cancel.

    From PS3.4 B.2.3 (Storage Service Class) and PS3.7 Annex C.
    """
    if status in _STATUS_MEANINGS:
        return _STATUS_MEANINGS[status]
    if 0xA700 <= status <= 0xA7FF:
        return "failure", "the PACS is out of resources (storage full or busy)"
    if 0xA900 <= status <= 0xA9FF:
        return "failure", "the PACS says the object does not match its type"
    if 0xC000 <= status <= 0xCFFF:
        return "failure", "the PACS could not understand the object"
    if 0xB000 <= status <= 0xBFFF:
        return "warning", "stored, with a warning from the PACS"
    return "failure", "unknown status"


@dataclass(frozen=True)
class StoreResult:
    """What happened to one object. ``status`` is None when it was not sent at all."""

    sop_class_uid: str
    sop_instance_uid: str
    status: int | None
    meaning: str

    @property
    def sop_class_name(self) -> str:
        return UID(self.sop_class_uid).name

    @property
    def category(self) -> str:
        return "not sent" if self.status is None else status_meaning(self.status)[0]

    @property
    def ok(self) -> bool:
        """Stored (possibly with a warning)."""
        return self.category in ("success", "warning")

    def describe(self) -> str:
        code = "not sent" if self.status is None else f"status 0x{self.status:04X}"
        return f"{self.sop_class_name}: {code}, {self.meaning}"


@dataclass(frozen=True)
class SendReport:
    """The outcome of one `send`: one `StoreResult` per object, in the order given."""

    remote: RemoteAE
    results: tuple[StoreResult, ...] = field(default_factory=tuple)
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def stored(self) -> tuple[StoreResult, ...]:
        return tuple(r for r in self.results if r.ok)

    @property
    def failed(self) -> tuple[StoreResult, ...]:
        return tuple(r for r in self.results if not r.ok)

    def __str__(self) -> str:
        """What a user reads: "4 of 4 objects stored by ANGIO at 10.0.0.12:104 (0.3 s)"."""
        r = self.remote
        text = (f"{len(self.stored)} of {len(self.results)} objects stored by {r.ae_title} at "
                f"{r.host}:{r.port} ({self.elapsed_s:.1f} s)")
        if self.failed:
            text += "; refused: " + ", ".join(sorted({f.meaning for f in self.failed}))
        return text


# ---- association -------------------------------------------------------------------------
def make_ae(calling_ae: str, timeout_s: float) -> AE:
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s}")
    ae = AE(ae_title=_check_ae_title(calling_ae, "calling (this workstation's)"))
    ae.acse_timeout = timeout_s
    ae.dimse_timeout = timeout_s
    ae.network_timeout = timeout_s
    ae.connection_timeout = timeout_s
    return ae


_REJECT_REASONS: dict[tuple[int, int], str] = {
    (1, 1): "no reason given",
    (1, 2): "application context name not supported",
    (1, 3): "calling AE title not recognized",
    (1, 7): "called AE title not recognized",
    (2, 1): "no reason given",
    (2, 2): "DICOM protocol version not supported",
    (3, 1): "temporary congestion",
    (3, 2): "local limit exceeded (too many connections)",
}


def _rejection_message(remote: RemoteAE, rejection: tuple[int, int, int], calling_ae: str) -> str:
    """``rejection`` is the A-ASSOCIATE-RJ's (result, source, reason/diagnostic)."""
    result, source, diagnostic = rejection
    reason = _REJECT_REASONS.get((source, diagnostic), f"reason code {source}/{diagnostic}")
    advice = {
        (1, 7): f"The PACS does not call itself '{remote.ae_title}': check the AE title.",
        (1, 3): (
            f"The PACS does not know this workstation's AE title '{calling_ae}': "
            "ask the PACS administrator to add it."
        ),
    }.get(
        (source, diagnostic),
        f"Check that the PACS knows this workstation ('{calling_ae}') and accepts "
        "connections from this computer.",
    )
    transient = " This is temporary: try again in a moment." if result == 2 else ""
    return f"{remote.describe()} refused the association: {reason}. {advice}{transient}"


def _unknown_host(remote: RemoteAE) -> str:
    return (
        f"The PACS host name '{remote.host}' could not be found ({remote.ae_title}). "
        "Check its spelling or use the IP address."
    )


def _connection_failure(remote: RemoteAE, timeout_s: float, elapsed_s: float) -> str:
    """Explain why the TCP connection failed (pynetdicom only logs the OSError)."""
    where = f"{remote.host}:{remote.port}"
    if elapsed_s >= 0.9 * timeout_s:
        return f"No DICOM server answered at {where} within {timeout_s:g} s ({remote.ae_title})."
    try:
        probe = socket.create_connection((remote.host, remote.port), timeout=min(timeout_s, 5.0))
    except ConnectionRefusedError:
        return (
            f"Connection refused by {where}: no DICOM server is listening on port "
            f"{remote.port} there ({remote.ae_title}). Check the port and that the PACS is running."
        )
    except socket.gaierror:
        return _unknown_host(remote)
    except TimeoutError:
        return f"No DICOM server answered at {where} within {timeout_s:g} s ({remote.ae_title})."
    except OSError as exc:
        return f"Cannot reach {remote.describe()}: {exc.strerror or exc}."
    probe.close()
    return f"Could not connect to {remote.describe()}; it is reachable now: try again."


def refuse_unreachable(remote: RemoteAE, timeout_s: float = 5.0) -> None:
    """Raise `SendError` (saying why, as a send would) unless something accepts a
    connection at the remote's address: what an export that only sends checks before it
    renders anything, so "nobody is there" takes a second, not the whole report."""
    t0 = time.monotonic()
    try:
        probe = socket.create_connection((remote.host, remote.port), timeout=timeout_s)
    except OSError:
        raise SendError(_connection_failure(remote, timeout_s, time.monotonic() - t0)
                        ) from None
    probe.close()


def associate(
    ae: AE,
    remote: RemoteAE,
    contexts: list[PresentationContext],
    *,
    calling_ae: str,
    timeout_s: float,
    what: str,
    ext_neg: list[Any] | None = None,
    evt_handlers: list[Any] | None = None,
    error: type[SendError] | None = None,
) -> Association:
    """Open an association or raise `SendError` (or ``error``) explaining why not.

    ``ext_neg`` and ``evt_handlers`` are passed on (C-GET's SCP role selection and the
    C-STORE handler of the images it brings back).
    """
    fail = error or SendError
    seen: dict[str, bool] = {"open": False, "accepted": False}
    rejections: list[tuple[int, int, int]] = []

    def on_open(_event: evt.Event) -> None:
        seen["open"] = True

    def on_accepted(_event: evt.Event) -> None:
        seen["accepted"] = True

    def on_pdu(event: evt.Event) -> None:
        # Kept from the PDU itself: when a peer rejects and closes at once, pynetdicom
        # 3.0 may close the transport before its ACSE reads the reject and then reports
        # an abort instead (seen with storescp --refuse, a few percent of the time).
        pdu = event.pdu
        if isinstance(pdu, A_ASSOCIATE_RJ):
            rejections.append(
                (int(pdu.result or 0), int(pdu.source or 0), int(pdu.reason_diagnostic or 0))
            )

    t0 = time.monotonic()
    try:
        assoc = ae.associate(
            remote.host,
            remote.port,
            contexts,
            ae_title=remote.ae_title,
            evt_handlers=[
                (evt.EVT_CONN_OPEN, on_open),
                (evt.EVT_ACCEPTED, on_accepted),
                (evt.EVT_PDU_RECV, on_pdu),
                *(evt_handlers or []),
            ],
            ext_neg=ext_neg,
        )
    except socket.gaierror as exc:  # pynetdicom resolves the host name before connecting
        raise fail(_unknown_host(remote)) from exc
    elapsed = time.monotonic() - t0
    if assoc.is_established:
        tune_association(assoc)
        return assoc
    if rejections:
        raise fail(_rejection_message(remote, rejections[0], calling_ae))
    if not seen["open"]:
        raise fail(_connection_failure(remote, timeout_s, elapsed))
    if seen["accepted"]:
        raise fail(f"{remote.describe()} accepted the connection but not {what}.")
    if elapsed >= 0.9 * timeout_s:
        raise fail(
            f"No DICOM server answered at {remote.host}:{remote.port} within {timeout_s:g} s "
            f"({remote.ae_title}): something accepts connections there but does not answer "
            "DICOM. Check the port number."
        )
    raise fail(
        f"{remote.describe()} closed the connection without answering the association "
        "request. Check the port number and that the PACS accepts this workstation."
    )


def finish(assoc: Association) -> None:
    if assoc.is_established:
        assoc.release()
    elif assoc.is_alive():
        assoc.abort()


# ---- C-ECHO ------------------------------------------------------------------------------
def echo(remote: RemoteAE, *, calling_ae: str = DEFAULT_CALLING_AE, timeout_s: float = 10) -> float:
    """Verify that the PACS answers (C-ECHO); returns the echo's round trip in seconds.

    The time is that of the C-ECHO request and response alone, not of opening the
    association.
    """
    ae = make_ae(calling_ae, timeout_s)
    assoc = associate(
        ae,
        remote,
        [build_context(VERIFICATION_SOP_CLASS)],
        calling_ae=calling_ae,
        timeout_s=timeout_s,
        what="verification (C-ECHO)",
    )
    try:
        t0 = time.monotonic()
        status = assoc.send_c_echo()
        round_trip_s = time.monotonic() - t0
        if "Status" not in status:
            raise SendError(f"{remote.describe()} did not answer the echo within {timeout_s:g} s.")
        code = int(status.Status)
        if code != 0x0000:
            raise SendError(f"{remote.describe()} answered the echo with status 0x{code:04X}.")
    finally:
        finish(assoc)
    log.info("C-ECHO %s: success in %.1f ms", remote, round_trip_s * 1000)
    return round_trip_s


# ---- C-STORE -----------------------------------------------------------------------------
def _load(item: Dataset | str | os.PathLike[str]) -> Dataset:
    """A dataset ready for C-STORE (with a transfer syntax); never modifies the caller's."""
    if isinstance(item, Dataset):
        ds = item
    else:
        path = Path(item)
        try:
            ds = dcmread(path)
        except InvalidDicomError as exc:
            raise SendError(f"Cannot send {path}: it is not a DICOM file.") from exc
        except OSError as exc:
            raise SendError(f"Cannot send {path}: {exc.strerror or exc}.") from exc
    if "SOPClassUID" not in ds or "SOPInstanceUID" not in ds:
        raise SendError("Cannot send an object without SOP Class and SOP Instance UIDs.")
    meta = getattr(ds, "file_meta", None)
    if meta is None or "TransferSyntaxUID" not in meta:
        ds = copy.copy(ds)  # shallow: only file_meta is replaced
        new_meta = FileMetaDataset()
        if meta is not None:
            new_meta.update(meta)
        new_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta = new_meta
    return ds


def _contexts_for(datasets: list[Dataset]) -> list[PresentationContext]:
    """One presentation context per SOP class: Explicit VR Little Endian first.

    Implicit VR Little Endian (the one every SCP must accept) is offered second, and an
    object's own compressed transfer syntax, if any, last.
    """
    syntaxes: dict[str, list[str | UID]] = {}
    for ds in datasets:
        ts_list = syntaxes.setdefault(str(ds.SOPClassUID), list(_UNCOMPRESSED))
        own = UID(ds.file_meta.TransferSyntaxUID)
        if own not in ts_list:
            ts_list.append(own)
    if len(syntaxes) > MAX_CONTEXTS:
        raise SendError(
            f"Cannot send {len(syntaxes)} different kinds of objects in one go "
            f"(DICOM allows {MAX_CONTEXTS})."
        )
    return [build_context(sop_class, ts) for sop_class, ts in syntaxes.items()]


def send(
    remote: RemoteAE,
    datasets_or_paths: Iterable[Dataset | str | os.PathLike[str]],
    *,
    calling_ae: str = DEFAULT_CALLING_AE,
    timeout_s: float = 30,
    progress: Progress | None = None,
) -> SendReport:
    """Store objects on a PACS (C-STORE), one association for all of them.

    Parameters
    ----------
    remote
        The PACS.
    datasets_or_paths
        Datasets (e.g. the plan SR and the Encapsulated PDF) or DICOM files.
    calling_ae
        This workstation's AE title, as configured on the PACS.
    timeout_s
        For connecting, for the association answer and for each object's confirmation.
    progress
        Reports one step per object; Cancel stops between objects (already stored objects
        stay on the PACS) and raises `planning.errors.Cancelled`.

    Returns
    -------
    SendReport
        Every object stored (some perhaps with a warning status).

    Raises
    ------
    SendError
        If the PACS cannot be reached or refuses the association, stops answering, or
        refuses any object (then ``error.report`` says which were stored).
    """
    progress = progress or Progress()
    datasets = [_load(item) for item in datasets_or_paths]
    if not datasets:
        raise ValueError("send() needs at least one object")
    n = len(datasets)
    contexts = _contexts_for(datasets)
    progress.report(0, n, f"Connecting to {remote.describe()}")
    ae = make_ae(calling_ae, timeout_s)
    t_start = time.monotonic()
    kinds = ", ".join(sorted({UID(str(ds.SOPClassUID)).name for ds in datasets}))
    assoc = associate(ae, remote, contexts, calling_ae=calling_ae, timeout_s=timeout_s, what=kinds)
    results: list[StoreResult] = []
    try:
        accepted = {str(cx.abstract_syntax) for cx in assoc.accepted_contexts}
        for i, ds in enumerate(datasets):
            sop_class = str(ds.SOPClassUID)
            name = UID(sop_class).name
            progress.report(i, n, f"Sending {i + 1} of {n}: {name}")
            result = _store_one(assoc, ds, i + 1, accepted, remote, timeout_s, results)
            log.info("C-STORE %s: %s", name, result.describe())
            results.append(result)
    finally:
        finish(assoc)
    report = SendReport(remote, tuple(results), time.monotonic() - t_start)
    if progress.callback is not None:
        progress.callback(n, n, f"Sent {len(report.stored)} of {n} to {remote.describe()}")
    if not report.ok:
        details = "; ".join(r.describe() for r in report.failed)
        raise SendError(
            f"{remote.describe()} did not store {len(report.failed)} of {n} objects: {details}.",
            report=report,
        )
    return report


def _store_one(
    assoc: Association,
    ds: Dataset,
    msg_id: int,
    accepted: set[str],
    remote: RemoteAE,
    timeout_s: float,
    done: list[StoreResult],
) -> StoreResult:
    sop_class, sop_instance = str(ds.SOPClassUID), str(ds.SOPInstanceUID)
    name = UID(sop_class).name
    if sop_class not in accepted:
        return StoreResult(
            sop_class, sop_instance, None, f"the PACS does not accept {name} objects"
        )
    t0 = time.monotonic()
    try:
        status = assoc.send_c_store(ds, msg_id=msg_id)
    except ValueError as exc:  # no context for its transfer syntax, or cannot encode
        return StoreResult(sop_class, sop_instance, None, f"could not be sent: {exc}")
    if "Status" not in status:
        partial = SendReport(remote, tuple(done), 0.0)
        if time.monotonic() - t0 >= 0.9 * timeout_s:
            raise SendError(
                f"{remote.describe()} did not confirm the {name} within {timeout_s:g} s; "
                "the transfer was stopped.",
                report=partial,
            )
        raise SendError(
            f"{remote.describe()} ended the connection while receiving the {name}.",
            report=partial,
        )
    code = int(status.Status)
    return StoreResult(sop_class, sop_instance, code, status_meaning(code)[1])
