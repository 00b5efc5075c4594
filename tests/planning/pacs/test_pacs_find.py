"""Searching a real Orthanc by every key, over DIMSE (C-FIND) and DICOMweb (QIDO-RS)."""

from __future__ import annotations

import pytest

from planning.pacs.node import PacsError
from planning.pacs.records import StudyQuery
from planning.pacs.retrieve import echo, find_studies

KINDS = ("dimse", "web")


def _node(filled, kind):
    return filled.pacs.dimse if kind == "dimse" else filled.pacs.web


def _find(filled, kind, **keys):
    return find_studies(_node(filled, kind), StudyQuery(**keys), local=filled.pacs.local)


@pytest.mark.parametrize("kind", KINDS)
def test_echo_answers(filled_pacs, kind) -> None:
    assert echo(_node(filled_pacs, kind), local=filled_pacs.pacs.local) < 5.0


@pytest.mark.parametrize("kind", KINDS)
def test_patient_id_finds_one_study_with_its_ct_series(filled_pacs, kind) -> None:
    studies = _find(filled_pacs, kind, patient_id="P001")
    assert [s.study_uid for s in studies] == [filled_pacs.john_study]
    john = studies[0]
    assert john.patient_name == "DOE^JOHN" and john.accession == "ACC1"
    assert john.study_date == "20240310" and john.description == "CT spine"
    # the OT series of the same study is not a CT: only the CT series is listed
    assert [(s.series_uid, s.modality, s.images, s.description) for s in john.series] == [
        (filled_pacs.john_ct, "CT", 14, "CT spine 2 mm")]


@pytest.mark.parametrize("kind", KINDS)
def test_name_wildcards_match_both_does_newest_first(filled_pacs, kind) -> None:
    studies = _find(filled_pacs, kind, patient_name="DOE*")
    assert [s.patient_id for s in studies] == ["P001", "P002"]
    assert [s.patient_id for s in _find(filled_pacs, kind, patient_name="DOE^JA?E")] == ["P002"]


@pytest.mark.parametrize("kind", KINDS)
def test_dates_accession_and_birth_date(filled_pacs, kind) -> None:
    assert [s.patient_id for s in _find(filled_pacs, kind, study_date="20230101-20231231")] \
        == ["P002"]
    assert [s.patient_id for s in _find(filled_pacs, kind, study_date="20230801-")] == ["P001"]
    assert [s.patient_id for s in _find(filled_pacs, kind, study_date="20240310")] == ["P001"]
    assert [s.patient_id for s in _find(filled_pacs, kind, accession="ACC2")] == ["P002"]
    assert [s.patient_id for s in _find(filled_pacs, kind, birth_date="19600101")] == ["P001"]


@pytest.mark.parametrize("kind", KINDS)
def test_modality_ct_leaves_out_the_mr_study(filled_pacs, kind) -> None:
    assert _find(filled_pacs, kind, patient_id="P003") == []
    mr = _find(filled_pacs, kind, patient_id="P003", modality="MR")
    assert [s.study_uid for s in mr] == [filled_pacs.anna_study]
    assert [s.modality for s in mr[0].series] == ["MR"]


@pytest.mark.parametrize("kind", KINDS)
def test_no_match_is_an_empty_list(filled_pacs, kind) -> None:
    assert _find(filled_pacs, kind, patient_id="NOBODY") == []


def test_json_shape_is_what_the_cli_prints(filled_pacs) -> None:
    study = _find(filled_pacs, "dimse", accession="ACC1")[0].to_json()
    assert set(study) >= {"study_uid", "patient_id", "patient_name", "study_date",
                          "description", "series"}
    assert set(study["series"][0]) >= {"series_uid", "modality", "images", "description"}


@pytest.mark.parametrize("text, words", [
    ("2024", "not a date or range"),
    ("20241301-", None),  # 13th month: the PACS decides; only the shape is checked
    ("20240102-20240101", "ends before it starts"),
])
def test_date_range_shape_is_checked(text, words) -> None:
    if words is None:
        StudyQuery(study_date=text)
        return
    with pytest.raises(PacsError, match=words):
        StudyQuery(study_date=text)
