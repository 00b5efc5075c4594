"""Search and retrieval over DICOMweb: QIDO-RS and WADO-RS (dicomweb-client).

QIDO-RS requests are built here, not by dicomweb-client, for one reason: it (and requests)
percent-encode the wildcard ``*`` and the name separator ``^``, and servers differ in whether
they decode them (Orthanc's DICOMweb plugin 1.7 does not, so ``PatientName=DOE*`` matched
nothing). We send ``* ? ^`` as they are, with urllib, which sends a URL as written (requests'
urllib3 re-encodes it); every server reads them so.

WADO-RS goes through dicomweb-client, streaming the multipart answer image by image into the
store, asking for the stored transfer syntax (``transfer-syntax=*``) so nothing is
transcoded.
"""

from __future__ import annotations

import json
import logging
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset

from planning.errors import Cancelled
from planning.pacs import records
from planning.pacs.cache import InstanceStore
from planning.pacs.node import PacsError, WebNode, check_uid
from planning.progress import Progress

log = logging.getLogger(__name__)
_ANY_SYNTAX = (("application/dicom", "*"),)
T = TypeVar("T")


def _explain(node: WebNode, exc: Exception, timeout_s: float) -> PacsError:
    """A transport failure in words (never the URL's query, which may hold a name)."""
    code = None
    if isinstance(exc, urllib.error.HTTPError):
        code = exc.code
    elif isinstance(exc, requests.exceptions.HTTPError) and exc.response is not None:
        code = exc.response.status_code
    if code in (401, 403):
        return PacsError(f"{node.describe()} refused access (HTTP {code}): it needs a "
                         "login this workstation does not have.")
    if code == 404:
        return PacsError(f"{node.describe()} has no DICOMweb service at that path (HTTP "
                         "404): the address usually ends in /dicom-web.")
    if code is not None:
        return PacsError(f"{node.describe()} answered with an error (HTTP {code}).")
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError | socket.timeout | requests.exceptions.Timeout):
        return PacsError(f"{node.describe()} did not answer within {timeout_s:g} s.")
    if isinstance(reason, OSError | requests.exceptions.ConnectionError):
        return PacsError(f"Nothing answers at {node.describe()}: check the address and that "
                         "the server is running.")
    return PacsError(f"{node.describe()} failed: {type(exc).__name__}.")


def _guarded(node: WebNode, timeout_s: float, call: Callable[[], T]) -> T:
    try:
        return call()
    except (requests.exceptions.RequestException, OSError) as exc:
        raise _explain(node, exc, timeout_s) from exc
    except json.JSONDecodeError as exc:
        raise PacsError(f"{node.describe()} answered with something that is not DICOM "
                        "JSON: is it a DICOMweb service?") from exc


def _qido(node: WebNode, path: str, keys: dict[str, str],
          fields: list[str], timeout_s: float) -> list[Dataset]:
    query = [f"{k}={quote(v, safe='*?^-., ')}".replace(" ", "%20") for k, v in keys.items() if v]
    query += [f"includefield={f}" for f in fields]
    url = f"{node.url}/{path}" + ("?" + "&".join(query) if query else "")

    def call() -> list[Dataset]:
        request = urllib.request.Request(url, headers={"Accept": "application/dicom+json"})
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            body = answer.read()
        if not body.strip():
            return []
        return [Dataset.from_json(item) for item in json.loads(body)]

    return _guarded(node, timeout_s, call)




def find_studies(node: WebNode, query: records.StudyQuery, *,
                 timeout_s: float = 30) -> list[records.StudyRecord]:
    """QIDO-RS: studies, then each study's series of the query's modality."""

    def series_of(study_uid: str) -> list[Dataset]:
        return _qido(node, f"studies/{check_uid(study_uid, 'study')}/series",
                     {"Modality": query.modality},
                     ["SeriesDescription", "NumberOfSeriesRelatedInstances"], timeout_s)

    matches = _qido(node, "studies", query.matching_keys(),
                    ["StudyDescription", "ModalitiesInStudy", "PatientBirthDate"], timeout_s)
    found = records.studies_found(matches, series_of, query.modality)
    log.info("QIDO-RS: %d studies", len(found))
    return found


def list_instances(node: WebNode, study_uid: str, series_uid: str, *,
                   timeout_s: float = 30) -> list[str]:
    """The SOP instance UIDs of one series (QIDO-RS at instance level)."""
    path = (f"studies/{check_uid(study_uid, 'study')}/series/"
            f"{check_uid(series_uid, 'series')}/instances")
    return records.instance_uids(_qido(node, path, {}, ["InstanceNumber"], timeout_s))


def retrieve_series(node: WebNode, study_uid: str, series_uid: str, store: InstanceStore, *,
                    progress: Progress | None = None, timeout_s: float = 30,
                    session: requests.Session | None = None,
                    only: Sequence[str] | None = None) -> records.RetrieveReport:
    """WADO-RS: the whole series in one streamed answer when none of it is cached, else
    the missing images one by one."""
    study_uid = check_uid(study_uid, "study")
    series_uid = check_uid(series_uid, "series")
    session = session or requests.Session()
    t0 = time.monotonic()
    expected = list_instances(node, study_uid, series_uid, timeout_s=timeout_s)
    if not expected:
        raise PacsError(f"{node.describe()} has no images in that series (no match).")
    expected, missing = store.to_fetch(study_uid, series_uid, expected, only)
    already = len(expected) - len(missing)
    client = DICOMwebClient(node.url, session=session, timeout=timeout_s)
    done = already

    def arrived(ds: Dataset) -> None:
        nonlocal done
        store.write_dataset(ds)
        done += 1
        if progress is not None:
            progress.report(done, len(expected), f"{done} of {len(expected)} images")

    if progress is not None:
        progress.report(done, len(expected), f"{done} of {len(expected)} images")
    try:
        first_failure = None
        if missing and not already and only is None:
            try:
                stream: Iterator[Dataset] = _guarded(node, timeout_s, lambda: client.iter_series(
                    study_uid, series_uid, media_types=_ANY_SYNTAX))
                for ds in _stream(node, timeout_s, stream):
                    arrived(ds)
            except PacsError as exc:  # one unreadable image fails the stream: go one by one
                first_failure = exc
            missing = sorted(set(missing) - store.present(study_uid, series_uid))
        if missing and (already or only is not None or first_failure is not None):
            for sop_uid in missing:
                def one(uid: str = sop_uid) -> Dataset:
                    return client.retrieve_instance(study_uid, series_uid, uid,
                                                    media_types=_ANY_SYNTAX)
                try:
                    arrived(_guarded(node, timeout_s, one))
                except PacsError as exc:
                    first_failure = first_failure or exc
                    log.warning("WADO-RS: one image failed (%s)", type(exc).__name__)
            if done == already and first_failure is not None:
                raise first_failure
    except Cancelled:
        raise Cancelled(records.RETRIEVAL_CANCELLED) from None
    report = store.report(study_uid, series_uid, expected, already, t0)
    log.info("WADO-RS: %d expected, %d present, %d fetched, %d missing, %.1f s",
             report.expected, report.already_present, report.fetched, len(report.missing),
             report.seconds)
    return report


def _stream(node: WebNode, timeout_s: float, items: Iterator[Any]) -> Iterator[Any]:
    """Iterate a streamed answer, turning transport failures mid-stream into `PacsError`."""
    while True:
        try:
            item = next(items)
        except StopIteration:
            return
        except requests.exceptions.RequestException as exc:
            raise _explain(node, exc, timeout_s) from exc
        yield item
