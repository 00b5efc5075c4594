"""`vertebroplan cases` and `vertebroplan train-score` end to end, as a trainee's tutor would
run them: real files in, the score out, exit status 0 pass / 1 fail / 2 cannot score."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from cli_helpers import run_cli

from planning.interop.plan_file import load_plan, save_plan
from planning.plan import Side
from planning.training import builtin_library

SAVED = builtin_library() / "l1-l2-saved"
REFERENCE = SAVED / "reference.vplan.json"


def test_cases_lists_the_builtin_library() -> None:
    out = run_cli("cases", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["library"] == str(builtin_library())
    assert [c["id"] for c in data["cases"]] == ["l3-automatic", "l1-l2-saved", "t12-fluoro"]
    saved = data["cases"][1]
    assert saved["levels"] == ["L1", "L2"] and saved["reference_kind"] == "saved plan"
    assert saved["ct"] == "demo" and saved["reference"] == str(REFERENCE.resolve())
    assert data["cases"][2]["fluoro_only"] is True and data["problems"] == []
    text = run_cli("cases")
    assert text.returncode == 0
    assert "3 cases" in text.stdout and "2 · L1 fracture and L2, bilateral" in text.stdout
    assert "reference: automatic" in text.stdout and "fluoroscopy only" in text.stdout


def test_cases_reports_broken_cases_and_refuses_a_missing_library(tmp_path: Path) -> None:
    shutil.copytree(SAVED, tmp_path / "good")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "case.json").write_text("{not json", encoding="utf-8")
    out = run_cli("cases", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "1 case" in out.stdout and "[good]" in out.stdout
    problem = next(line for line in out.stdout.splitlines() if line.startswith("problem:"))
    assert f"'{tmp_path / 'bad' / 'case.json'}' is not valid JSON" in problem
    missing = run_cli("cases", str(tmp_path / "nowhere"))
    assert missing.returncode == 1 and "is not a folder" in missing.stderr


def test_train_score_passes_the_reference_and_writes_the_report(tmp_path: Path) -> None:
    pdf = tmp_path / "report.pdf"
    out = run_cli("train-score", str(SAVED), str(REFERENCE), "--time-s", "95",
                  "--trainee", "Dr CLI", "--pdf", str(pdf), "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["passed"] is True and data["percent"] == 100.0
    assert data["points"] == data["max_points"] == 400.0
    assert data["time_s"] == 95.0 and data["trainee"] == "Dr CLI"
    assert [(n["level"], n["side"], n["points"]) for n in data["needles"]] == [
        ("L1", "left", 100.0), ("L1", "right", 100.0), ("L2", "left", 100.0),
        ("L2", "right", 100.0)]
    assert data["pdf"] == str(pdf) and pdf.read_bytes().startswith(b"%PDF")
    assert data["rubric"]["pass_percent"] == 70.0 and data["rubric"]["sentences"]


def test_train_score_fails_a_missing_needle_with_status_1(tmp_path: Path) -> None:
    attempt = tmp_path / "attempt.vplan.json"
    save_plan(load_plan(REFERENCE).without("L2", Side.RIGHT), attempt)
    out = run_cli("train-score", str(SAVED), str(attempt), "--time-s", "600")
    assert out.returncode == 1, out.stderr
    assert "FAIL: 300 of 400 points (75 %) in 10 min 00 s" in out.stdout
    assert "failed: Right L2 (not placed)" in out.stdout
    row = next(line for line in out.stdout.splitlines() if line.startswith("Right L2"))
    assert "0.0 / 100" in row and "FAILED (not placed)" in row


@pytest.mark.parametrize("problem", ["no-case", "bad-attempt", "other-frame", "bad-time"])
def test_train_score_cannot_score_with_status_2(tmp_path: Path, problem: str) -> None:
    case, attempt, extra = str(SAVED), str(REFERENCE), []
    if problem == "no-case":
        case = str(tmp_path / "no-case")
    elif problem == "bad-attempt":
        attempt = str(tmp_path / "broken.vplan.json")
        Path(attempt).write_text("{", encoding="utf-8")
    elif problem == "other-frame":
        attempt = str(tmp_path / "other.vplan.json")
        save_plan(replace(load_plan(REFERENCE), frame_of_reference_uid="1.2.3"), attempt)
    else:
        extra = ["--time-s", "-5"]
    out = run_cli("train-score", case, attempt, *extra)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert out.stdout == ""
    message = out.stderr.strip().splitlines()[-1]
    expected = {"no-case": f"'{tmp_path / 'no-case'}' is not a folder",
                "bad-attempt": "broken.vplan.json' is not valid JSON (line 1",
                "other-frame": "other.vplan.json' is not a plan on this case's CT",
                "bad-time": "argument --time-s: '-5' is not a number of seconds ≥ 0"}[problem]
    assert expected in message, message
