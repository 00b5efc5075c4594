"""Retrieving from a real Orthanc: C-GET, C-MOVE to our own storage SCP, WADO-RS; resume,
cancel, partial failure, and the retrieved series opening as the CT it was."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from planning.errors import Cancelled
from planning.io import load_path
from planning.pacs.cache import StudyCache
from planning.pacs.node import LocalAE, PacsError
from planning.pacs.retrieve import retrieve
from planning.progress import Progress

METHODS = [("dimse", "get"), ("dimse", "move"), ("web", "get")]
IDS = ["C-GET", "C-MOVE", "WADO-RS"]


def _node(filled, kind):
    return filled.pacs.dimse if kind == "dimse" else filled.pacs.web


def _get(filled, kind, method, store, **kw):
    return retrieve(_node(filled, kind), filled.john_study, store, method=method,
                    local=filled.pacs.local, scp_host="127.0.0.1", **kw)


@pytest.mark.parametrize("kind, method", METHODS, ids=IDS)
def test_whole_study_arrives_once_and_opens_as_the_sent_ct(filled_pacs, tmp_path, kind,
                                                           method) -> None:
    cache = StudyCache(tmp_path / "cache")
    seen: list[tuple[int, int]] = []
    reports = _get(filled_pacs, kind, method, cache,
                   progress=Progress(lambda d, t, _m: seen.append((d, t))))
    # only the CT series of the study (the OT series stays on the PACS)
    assert [(r.series_uid, r.expected, r.fetched, r.already_present, r.missing)
            for r in reports] == [(filled_pacs.john_ct, 14, 14, 0, ())]
    assert seen and seen[-1][0] == seen[-1][1]  # the bar reached its end
    folder = Path(reports[0].folder)
    assert folder == cache.series_dir(filled_pacs.john_study, filled_pacs.john_ct)
    sent = {pydicom.dcmread(p).SOPInstanceUID: pydicom.dcmread(p) for p in
            filled_pacs.john_files}
    for path in folder.glob("*.dcm"):
        got = pydicom.dcmread(path)
        assert path.stem == got.SOPInstanceUID
        original = sent[got.SOPInstanceUID]
        assert got.PixelData == original.PixelData
        assert got.ImagePositionPatient == original.ImagePositionPatient
    volume = load_path(folder)
    assert volume.array.shape == (14, 48, 48)
    assert volume.study_uid == filled_pacs.john_study
    reference = load_path(filled_pacs.john_files[0].parent)
    assert np.array_equal(volume.array, reference.array)
    assert np.allclose(volume.affine_lps, reference.affine_lps)
    # a second retrieval fetches nothing
    again = _get(filled_pacs, kind, method, cache)
    assert (again[0].fetched, again[0].already_present) == (0, 14)


@pytest.mark.parametrize("kind, method", METHODS, ids=IDS)
def test_half_fetched_series_is_completed_not_fetched_again(filled_pacs, tmp_path, kind,
                                                            method) -> None:
    cache = StudyCache(tmp_path / "cache")
    _get(filled_pacs, kind, method, cache, series_uid=filled_pacs.john_ct)
    folder = cache.series_dir(filled_pacs.john_study, filled_pacs.john_ct)
    kept = sorted(folder.glob("*.dcm"))[:9]
    stamps = {p: p.stat().st_mtime_ns for p in kept}
    for path in sorted(folder.glob("*.dcm"))[9:]:
        path.unlink()
    report = _get(filled_pacs, kind, method, cache, series_uid=filled_pacs.john_ct)[0]
    assert (report.already_present, report.fetched, report.missing) == (9, 5, ())
    assert len(list(folder.glob("*.dcm"))) == 14
    assert all(p.stat().st_mtime_ns == stamp for p, stamp in stamps.items())  # not rewritten


@pytest.mark.parametrize("kind, method", METHODS, ids=IDS)
def test_cancel_keeps_whole_images_and_the_next_retrieval_finishes(filled_pacs, tmp_path,
                                                                   kind, method) -> None:
    cache = StudyCache(tmp_path / "cache")
    progress = Progress()

    def cancel_after_four(done: int, total: int, _message: str) -> None:
        if total and done * 14 >= 4 * total:  # 4 of 14 images, whatever the bar's scale
            progress.cancel()

    progress.callback = cancel_after_four
    with pytest.raises(Cancelled, match=r"next retrieval fetches only the rest|cancelled"):
        _get(filled_pacs, kind, method, cache, series_uid=filled_pacs.john_ct,
             progress=progress)
    folder = cache.series_dir(filled_pacs.john_study, filled_pacs.john_ct)
    got = len(list(folder.glob("*.dcm")))
    assert 4 <= got < 14
    assert all(p.suffix == ".dcm" for p in folder.iterdir())  # no half-written file left
    for path in folder.glob("*.dcm"):
        pydicom.dcmread(path)  # every file kept is whole
    report = _get(filled_pacs, kind, method, cache, series_uid=filled_pacs.john_ct)[0]
    assert (report.already_present, report.fetched, report.complete) == (got, 14 - got, True)


def test_move_to_an_unknown_destination_says_to_add_it(filled_pacs, tmp_path) -> None:
    stranger = LocalAE("STRANGER", filled_pacs.pacs.local.port)
    with pytest.raises(PacsError, match=r"does not know AE title 'STRANGER' as a C-MOVE "
                                        r"destination\. Ask the PACS administrator to add it"):
        retrieve(filled_pacs.pacs.dimse, filled_pacs.john_study, StudyCache(tmp_path),
                 method="move", local=stranger, scp_host="127.0.0.1")


def test_a_pacs_that_does_not_allow_us_is_named_so(tmp_path) -> None:
    from orthanc_pacs import running_orthanc

    with running_orthanc(tmp_path / "strict", allow_unknown_find=False) as strict:
        stranger = LocalAE("STRANGER", strict.local.port)
        with pytest.raises(PacsError, match=r"does not allow this workstation \(AE title "
                                            r"'STRANGER'\) to search"):
            retrieve(strict.dimse, "1.2.3", StudyCache(tmp_path), local=stranger)


def test_unknown_study_is_no_match(filled_pacs, tmp_path) -> None:
    for node in (filled_pacs.pacs.dimse, filled_pacs.pacs.web):
        with pytest.raises(PacsError, match="no match"):
            retrieve(node, "1.2.3.4.5", StudyCache(tmp_path), local=filled_pacs.pacs.local)


def test_a_uid_that_is_not_one_never_becomes_a_path(filled_pacs, tmp_path) -> None:
    with pytest.raises(PacsError, match="not a valid DICOM UID"):
        retrieve(filled_pacs.pacs.dimse, "../../etc", StudyCache(tmp_path),
                 series_uid="1.2", local=filled_pacs.pacs.local)


@pytest.mark.parametrize("kind, method", METHODS, ids=IDS)
def test_an_image_the_pacs_cannot_send_is_named_the_rest_arrive(tmp_path, kind,
                                                                method) -> None:
    """One image's file is gone from the PACS's disk: the retrieval brings the others and
    names the one that failed (Orthanc reports a failed sub-operation, or WADO-RS an error)."""
    from orthanc_pacs import fill, generated_ct, running_orthanc

    from planning.volume import PatientInfo

    with running_orthanc(tmp_path / "pacs") as pacs:
        files = fill(pacs, tmp_path / "ct", generated_ct(PatientInfo(patient_id="P9"), slices=6),
                     "CT")
        lost = pydicom.dcmread(files[2], stop_before_pixels=True)
        found = pacs.rest("/tools/lookup", method="POST", body=str(lost.SOPInstanceUID))
        uuid = pacs.rest(f"/instances/{found[0]['ID']}/attachments/dicom/info")["Uuid"]
        (pacs.folder / "db" / uuid[:2] / uuid[2:4] / uuid).unlink()
        node = pacs.dimse if kind == "dimse" else pacs.web
        cache = StudyCache(tmp_path / "cache")
        if kind == "web":
            # Orthanc reads every file to list a series' instances over QIDO-RS, so the lost
            # file fails the listing itself: said in words, nothing half done
            with pytest.raises(PacsError, match=r"answered with an error \(HTTP 500\)"):
                retrieve(node, str(lost.StudyInstanceUID), cache, local=pacs.local)
            return
        report = retrieve(node, str(lost.StudyInstanceUID), cache, method=method,
                          local=pacs.local, scp_host="127.0.0.1")[0]
    assert report.missing == (str(lost.SOPInstanceUID),)
    assert (report.expected, report.fetched) == (6, 5)
    assert "1 of 6 could not be retrieved" in report.describe()


@pytest.mark.parametrize("kind", ["dimse", "web"])
def test_the_middle_image_makes_the_thumbnail_and_counts_as_cached(filled_pacs, tmp_path,
                                                                  kind) -> None:
    from planning.pacs.retrieve import middle_image
    from planning.pacs.thumbnail import thumbnail

    cache = StudyCache(tmp_path / "cache")
    node = _node(filled_pacs, kind)
    path = middle_image(node, filled_pacs.john_study, filled_pacs.john_ct, cache,
                        local=filled_pacs.pacs.local)
    assert path is not None
    assert int(pydicom.dcmread(path).InstanceNumber) == 8  # the 8th of 14, by number
    grey = thumbnail(path, size=96)
    assert grey is not None and grey.shape == (96, 96) and grey.dtype == np.uint8
    assert grey.max() == 255 and grey[0, 0] == 0  # the bright "spine", the padding
    report = retrieve(node, filled_pacs.john_study, cache, series_uid=filled_pacs.john_ct,
                      local=filled_pacs.pacs.local)[0]
    assert (report.already_present, report.fetched) == (1, 13)
