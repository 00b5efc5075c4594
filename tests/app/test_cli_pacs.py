"""``vertebroplan pacs echo|find|get`` and ``open --pacs`` against a real Orthanc."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pydicom
from cli_helpers import run_cli, run_cli_process


def _identity(filled) -> list[str]:
    return ["--ae-title", filled.pacs.local.ae_title, "--port", str(filled.pacs.local.port)]


def test_echo_both_kinds(filled_pacs) -> None:
    for node in (str(filled_pacs.pacs.dimse), str(filled_pacs.pacs.web)):
        result = run_cli("pacs", "echo", node, *_identity(filled_pacs))
        assert result.returncode == 0, result.stderr
        assert "answers" in result.stdout


def test_find_json_has_the_issue_shape(filled_pacs) -> None:
    for node in (str(filled_pacs.pacs.dimse), str(filled_pacs.pacs.web)):
        result = run_cli("pacs", "find", node, "--patient-name", "DOE*", "--study-date",
                         "20230101-20241231", "--json", *_identity(filled_pacs))
        assert result.returncode == 0, result.stderr
        studies = json.loads(result.stdout)["studies"]
        assert [s["patient_id"] for s in studies] == ["P001", "P002"]
        john = studies[0]
        assert {k: john[k] for k in ("study_uid", "patient_name", "study_date",
                                     "description")} == {
            "study_uid": filled_pacs.john_study, "patient_name": "DOE^JOHN",
            "study_date": "20240310", "description": "CT spine"}
        assert john["series"] == [{"series_uid": filled_pacs.john_ct, "modality": "CT",
                                   "images": 14, "description": "CT spine 2 mm",
                                   "number": 2}]
    by_accession = run_cli("pacs", "find", str(filled_pacs.pacs.dimse), "--accession", "ACC2",
                           *_identity(filled_pacs))
    assert "P002" in by_accession.stdout and "P001" not in by_accession.stdout


def test_get_by_move_then_again_fetches_nothing(filled_pacs, tmp_path) -> None:
    args = ("pacs", "get", str(filled_pacs.pacs.dimse), filled_pacs.john_study, "-o",
            str(tmp_path / "out"), "--method", "move", "--json", *_identity(filled_pacs))
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    series = json.loads(first.stdout)["series"]
    assert [(s["series_uid"], s["fetched"], s["missing"]) for s in series] == [
        (filled_pacs.john_ct, 14, [])]
    files = sorted(Path(series[0]["folder"]).glob("*.dcm"))
    assert len(files) == 14 and pydicom.dcmread(files[0]).StudyInstanceUID == \
        filled_pacs.john_study
    again = json.loads(run_cli(*args).stdout)["series"][0]
    assert (again["fetched"], again["already_present"]) == (0, 14)


def test_errors_are_one_line(filled_pacs, tmp_path) -> None:
    bad_node = run_cli("pacs", "find", "pacs.example:104", "--patient-id", "1")
    assert bad_node.returncode == 1 and "AE_TITLE@HOST:PORT" in bad_node.stderr
    assert "Traceback" not in bad_node.stderr
    bad_date = run_cli("pacs", "find", str(filled_pacs.pacs.dimse), "--study-date", "2024",
                       *_identity(filled_pacs))
    assert bad_date.returncode == 1 and "not a date or range" in bad_date.stderr
    no_study = run_cli("pacs", "get", str(filled_pacs.pacs.web), "1.2.3.4", "-o",
                       str(tmp_path), *_identity(filled_pacs))
    assert no_study.returncode == 1 and "no CT series in that study (no match)" in \
        no_study.stderr
    open_without_study = run_cli_process("open", "--pacs", str(filled_pacs.pacs.dimse))
    assert open_without_study.returncode == 1
    assert "needs --study UID" in open_without_study.stderr


def test_open_from_pacs_retrieves_into_the_cache_and_opens(filled_pacs, tmp_path,
                                                           monkeypatch) -> None:
    monkeypatch.setenv("VERTEBROPLAN_CACHE", str(tmp_path / "cache"))
    shot = tmp_path / "shot.png"
    env_ok = os.environ.get("DISPLAY") or os.environ.get("QT_QPA_PLATFORM")
    assert env_ok, "the GUI tests run under Xvfb (pytest-xvfb)"
    result = run_cli_process("open", "--pacs", str(filled_pacs.pacs.web), "--study",
                             filled_pacs.john_study, "--screenshot", str(shot),
                             *_identity(filled_pacs), timeout=120)
    assert result.returncode == 0, result.stderr
    assert shot.exists()
    cached = tmp_path / "cache" / filled_pacs.john_study / filled_pacs.john_ct
    assert len(list(cached.glob("*.dcm"))) == 14
