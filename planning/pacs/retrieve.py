"""One door to a PACS, whatever it speaks: echo, find, retrieve (DIMSE or DICOMweb).

The window, the command line and batch jobs call these; the node's type picks the protocol.
"""

from __future__ import annotations

import time
from pathlib import Path

from planning.interop.send import RemoteAE
from planning.interop.send import echo as dimse_echo
from planning.pacs import dimse, web
from planning.pacs.cache import InstanceStore
from planning.pacs.node import THIS_WORKSTATION, LocalAE, PacsError, PacsNode, WebNode
from planning.pacs.records import RetrieveReport, StudyQuery, StudyRecord
from planning.progress import Progress

METHODS = ("get", "move")


def echo(node: PacsNode, *, local: LocalAE = THIS_WORKSTATION, timeout_s: float = 10) -> float:
    """Is the node there and does it accept us? Seconds of the round trip.

    DIMSE: C-ECHO. DICOMweb: a QIDO-RS search that matches at most one study.
    """
    if isinstance(node, RemoteAE):
        return dimse_echo(node, calling_ae=local.ae_title, timeout_s=timeout_s)
    t0 = time.monotonic()
    web._qido(node, "studies", {"limit": "1"}, [], timeout_s)
    return time.monotonic() - t0


def find_studies(node: PacsNode, query: StudyQuery, *, local: LocalAE = THIS_WORKSTATION,
                 timeout_s: float = 30) -> list[StudyRecord]:
    """Studies matching the query, newest first, each with its series of the modality."""
    if isinstance(node, WebNode):
        return web.find_studies(node, query, timeout_s=timeout_s)
    return dimse.find_studies(node, query, local=local, timeout_s=timeout_s)


def retrieve(node: PacsNode, study_uid: str, store: InstanceStore, *,
             series_uid: str | None = None, modality: str = "CT", method: str = "get",
             local: LocalAE = THIS_WORKSTATION, progress: Progress | None = None,
             timeout_s: float = 30, scp_host: str = "") -> list[RetrieveReport]:
    """Retrieve one series, or every series of ``modality`` in the study, into ``store``.

    Images already in the store are not fetched again; a cancelled or cut-off retrieval is
    completed by calling this again.
    """
    if method not in METHODS:
        raise PacsError(f"Unknown retrieval method '{method}': use one of {', '.join(METHODS)}")
    if series_uid:
        wanted = [series_uid]
    else:
        studies = find_studies(node, StudyQuery(study_uid=study_uid, modality=modality),
                               local=local, timeout_s=timeout_s)
        wanted = [s.series_uid for st in studies if st.study_uid == study_uid
                  for s in st.series if not modality or s.modality == modality]
        if not wanted:
            raise PacsError(f"{node.describe()} has no {modality or ''} series in that study "
                            "(no match).".replace("  ", " "))
    reports = []
    for index, uid in enumerate(wanted):
        part = progress.part(index, 1, len(wanted)) if progress is not None else None
        if isinstance(node, WebNode):
            reports.append(web.retrieve_series(node, study_uid, uid, store, progress=part,
                                               timeout_s=timeout_s))
        else:
            reports.append(dimse.retrieve_series(node, study_uid, uid, store, method=method,
                                                 local=local, progress=part,
                                                 timeout_s=timeout_s, scp_host=scp_host))
    return reports


def middle_image(node: PacsNode, study_uid: str, series_uid: str, store: InstanceStore, *,
                 method: str = "get", local: LocalAE = THIS_WORKSTATION,
                 timeout_s: float = 30, scp_host: str = "") -> Path | None:
    """Retrieve the series' middle image (by instance number) into ``store``, for its
    thumbnail; it then counts as cached, so opening the series does not fetch it again.
    None when the series has no images."""
    if isinstance(node, WebNode):
        uids = web.list_instances(node, study_uid, series_uid, timeout_s=timeout_s)
    else:
        uids = dimse.list_instances(node, study_uid, series_uid, local=local,
                                    timeout_s=timeout_s)
    if not uids:
        return None
    middle = uids[len(uids) // 2]
    if middle not in store.present(study_uid, series_uid):
        if isinstance(node, WebNode):
            web.retrieve_series(node, study_uid, series_uid, store, timeout_s=timeout_s,
                                only=[middle])
        else:
            dimse.retrieve_series(node, study_uid, series_uid, store, method=method,
                                  local=local, timeout_s=timeout_s, scp_host=scp_host,
                                  only=[middle])
    path = store.series_dir(study_uid, series_uid) / f"{middle}.dcm"
    return path if path.exists() else None
