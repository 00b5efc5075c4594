"""The trainee's PDF report on the demo CT: the verdict, every level and needle, the rubric
and the disclaimer are in its text; the pictures show the trainee's needle and the reference
in their own styles; the patient is named only when asked.

Read back with poppler's ``pdftotext`` and rendered with ``pdftoppm``, as a viewer would.
"""

from __future__ import annotations

import io
import math
import shutil
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from planning.checks import Status
from planning.demo import DEMO_PATIENT
from planning.plan import Plan, Side
from planning.report.model import ReportModelError, TraineeReport
from planning.report.report_images import ReportFileError, window_to_grey
from planning.report.trainee_images import REFERENCE_RGB, comparison_images, needle_looks
from planning.report.trainee_pdf import write_trainee_report
from planning.reslice import reslice
from planning.training import (
    builtin_library,
    check_attempt,
    load_case,
    open_case,
    score_attempt,
)
from planning.vocabulary import (
    BONE_WINDOW_HU,
    DISCLAIMER,
    STATUS_COLORS,
    format_number,
    format_person_name,
)
from tests.planning.report.poppler import NEEDS_POPPLER, pdf_pages, pdf_text

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
TRAINEE = "Dr Test Trainee"
WHEN = datetime(2024, 6, 11, 10, 30)

pytestmark = NEEDS_POPPLER


@pytest.fixture(scope="module")
def attempt_and_report(tmp_path_factory: pytest.TempPathFactory):
    """A failing attempt at the saved L1–L2 case: Left L1 on the reference, Right L1 off by
    a few millimetres, Left L2 shifted 8 mm into the canal, Right L2 not placed."""
    case = load_case(builtin_library() / "l1-l2-saved")
    opened = open_case(case)
    volume, anatomy, ctx, reference = (opened.volume, opened.anatomy, opened.context,
                                       opened.reference)
    left_l1, right_l1, left_l2 = (reference.get(*k) for k in
                                  (("L1", Side.LEFT), ("L1", Side.RIGHT), ("L2", Side.LEFT)))
    assert left_l1 is not None and right_l1 is not None and left_l2 is not None
    into_canal = left_l2.translated(-anatomy.levels["L2"].left_lps * 8.0)
    attempt = Plan(reference.study_uid, reference.series_uid, reference.frame_of_reference_uid,
                   (left_l1, right_l1.moved(target_lps=right_l1.target + np.array([2.0, 4.0, 3.0])),
                    into_canal))
    results = check_attempt(attempt, ctx)
    assert results[("L2", Side.LEFT)].status is Status.UNSAFE
    score = score_attempt(reference, attempt, results, 312.0)
    folder = tmp_path_factory.mktemp("trainee")
    path = write_trainee_report(folder / "trainee report.pdf", TraineeReport(
        case, score, volume, attempt, reference, anatomy=anatomy, results=results,
        trainee_name=TRAINEE, software_version="0.1.0-test", created=WHEN))
    perfect = score_attempt(reference, reference, check_attempt(reference, ctx), 95.0)
    passed = write_trainee_report(folder / "passed.pdf", TraineeReport(
        case, perfect, volume, reference, reference, anatomy=anatomy, show_patient=True,
        created=WHEN))
    return case, volume, anatomy, reference, attempt, results, score, path, passed


def test_the_text_has_the_verdict_every_needle_and_the_rubric(attempt_and_report) -> None:
    case, _, _, _, _, _, score, path, _ = attempt_and_report
    text = pdf_text(path)
    flat = " ".join(text.split())
    assert not score.passed and "FAIL" in text and "PASS" not in text
    assert text.count(DISCLAIMER) >= 3  # every page: results, L1, L2
    assert case.title in text and TRAINEE in text and "2024-06-11 10:30" in flat
    assert f"{format_number(score.percent)} %" in text
    assert f"{format_number(score.points)} of {format_number(score.max_points, 0)}" in flat
    assert "time taken: 5 min 12 s" in flat
    for level in case.levels:
        assert level in text
    for n in score.needles:
        assert n.label in flat
        assert f"{format_number(n.points)} / 100" in flat
        for value in (n.entry_error_mm, n.tip_error_mm, n.angle_error_deg, n.clearance_mm):
            if value is not None:
                assert format_number(value) in text, (n.label, value)
        for reason in n.reasons:
            assert " ".join(reason.split()) in flat, reason
    assert "Left L2: 0.0 of 100 points: FAILED (canal breach, grade" in flat
    assert "Right L2: 0.0 of 100 points: FAILED (not placed)" in flat
    for sentence in score.rubric.describe():
        assert " ".join(sentence.split()) in flat, sentence
    assert "Reference, dashed white" in text


def test_the_patient_is_named_only_when_asked(attempt_and_report) -> None:
    *_, path, passed = attempt_and_report
    anonymous = pdf_text(path)
    name = format_person_name(DEMO_PATIENT.name)
    for secret in (name, DEMO_PATIENT.name, DEMO_PATIENT.patient_id, "1950-01-01"):
        assert secret not in anonymous, secret
    named = pdf_text(passed)
    assert name in named and DEMO_PATIENT.patient_id in named
    assert "PASS" in named and "FAIL" not in named and "100.0 %" in named


def test_pictures_show_the_trainee_and_the_reference_needles(attempt_and_report) -> None:
    _, volume, anatomy, reference, attempt, results, score, _, _ = attempt_and_report
    images = comparison_images(volume, attempt, reference, needle_looks(score, results),
                               anatomy, "L2")
    axial = np.asarray(Image.open(io.BytesIO(images.axial_png)).convert("RGB"), dtype=float)
    geometry = images.axial_geometry
    ct = window_to_grey(reslice(volume, geometry), *BONE_WINDOW_HU)  # the slice, bare
    red = np.array([int(STATUS_COLORS[Status.UNSAFE][i:i + 2], 16) for i in (1, 3, 5)])

    def around(point_lps, radius_px: float) -> np.ndarray:
        x, y = geometry.lps_to_pixel(point_lps)
        r = math.ceil(radius_px)
        return axial[max(0, int(y) - r):int(y) + r + 1, max(0, int(x) - r):int(x) + r + 1]

    breaching = attempt.get("L2", Side.LEFT)
    assert breaching is not None
    tip_patch = around(breaching.target, 3)  # the trainee's tip: a dot in the unsafe colour
    assert (np.linalg.norm(tip_patch - red, axis=-1) < 40).sum() >= 9
    for side in Side:  # the reference's hollow tip ring: white, around the tip
        t = reference.get("L2", side)
        assert t is not None
        ring = around(t.target, 12)
        assert (np.abs(ring - REFERENCE_RGB).max(axis=-1) < 20).sum() >= 10, side
        x, y = (int(v) for v in geometry.lps_to_pixel(t.target))
        assert ct[y - 12:y + 13, x - 12:x + 13].max() < 235  # the white is not bone
    assert images.axial_letters["left"] == "R" and images.axial_letters["right"] == "L"
    assert images.sagittal_letters["left"] == "A" and images.sagittal_letters["right"] == "P"


def test_pages_are_the_result_and_one_per_level(attempt_and_report, tmp_path: Path) -> None:
    *_, path, passed = attempt_and_report
    pages = pdf_pages(path, tmp_path, 60)
    assert len(pages) == 3
    red = np.array([int(STATUS_COLORS[Status.UNSAFE][i:i + 2], 16) for i in (1, 3, 5)])
    green = np.array([int(STATUS_COLORS[Status.SAFE][i:i + 2], 16) for i in (1, 3, 5)])

    def count(page: Path, colour: np.ndarray) -> int:
        pixels = np.asarray(Image.open(page).convert("RGB"), dtype=float)
        return int((np.linalg.norm(pixels - colour, axis=-1) < 12).sum())

    assert count(pages[0], red) > 500  # the FAIL chip and the failed rows
    assert count(pages[1], red) == 0  # L1: both needles safe and scored
    assert count(pages[2], red) > 100  # L2: failed chips, the needle in the canal
    assert count(pdf_pages(passed, tmp_path, 60, "passed")[0], green) > 500  # the PASS chip
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for n, page in enumerate(pdf_pages(path, tmp_path, 110, "big"), start=1):
        shutil.copy(page, ARTIFACTS / f"trainee_report_page{n}.png")


def test_write_is_atomic_and_errors_name_the_file(attempt_and_report, tmp_path: Path) -> None:
    case, volume, anatomy, reference, attempt, results, score, _, _ = attempt_and_report
    target = tmp_path / "out.pdf"
    target.write_bytes(b"old report")
    written = write_trainee_report(target, TraineeReport(case, score, volume, attempt,
                                                         reference))
    assert written == target and target.read_bytes().startswith(b"%PDF")
    assert [p.name for p in tmp_path.iterdir()] == ["out.pdf"]
    in_the_way = tmp_path / "a folder.pdf"
    in_the_way.mkdir()
    with pytest.raises(ReportFileError, match=r"a folder\.pdf"):
        write_trainee_report(in_the_way, TraineeReport(
            case, score, volume, attempt, reference, anatomy=anatomy, results=results))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a folder.pdf", "out.pdf"]


def test_the_model_refuses_what_would_mislead(attempt_and_report) -> None:
    """A check result of no needle of the attempt, or a plan of another CT, is refused by
    name before anything is drawn."""
    case, volume, _, reference, attempt, results, score, _, _ = attempt_and_report
    stray = {**results, ("L5", Side.LEFT): results[("L2", Side.LEFT)]}
    with pytest.raises(ReportModelError, match="Left L5"):
        TraineeReport(case, score, volume, attempt, reference, results=stray)
    other = replace(reference, frame_of_reference_uid="1.2.3.4")
    with pytest.raises(ReportModelError, match="another CT"):
        TraineeReport(case, score, volume, attempt, other)
    made = TraineeReport(case, score, volume, attempt, reference, trainee_name="  Dr A  ")
    assert made.trainee_name == "Dr A" and made.created.tzinfo is not None
