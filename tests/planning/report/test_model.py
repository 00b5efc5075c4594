"""The report model: a session's results that would print a misleading report are refused
with a message naming the needle or the level, and a valid one prints the same report, word
for word, as the writer did before the model existed."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from planning.assessment.levels import assess_levels
from planning.checks import Status
from planning.errors import VertebroPlanError
from planning.plan import FrameOverride, Plan, Side, Trajectory
from planning.report.model import LevelImages, PlanReport, ReportModelError, refuse_unprintable
from planning.report.page import created_text
from planning.report.pdf import write_pdf_report
from planning.report.report_images import level_images
from planning.volume import Volume
from tests.planning.report import demo_report as demo
from tests.planning.report.made_up_results import made_up_result
from tests.planning.report.poppler import NEEDS_POPPLER, pdf_text

FRAME = "1.2.3.4"
CT = Volume(np.zeros((4, 4, 4), np.int16), np.eye(4), frame_of_reference_uid=FRAME)
LEFT_L1 = Trajectory("L1", Side.LEFT, (22.0, 34.0, 0.0), (6.0, -14.0, 0.0))
RIGHT_L1 = Trajectory("L1", Side.RIGHT, (-22.0, 34.0, 0.0), (-6.0, -14.0, 0.0))
LEFT_L2 = Trajectory("L2", Side.LEFT, (22.0, 34.0, -30.0), (6.0, -14.0, -30.0))
PLAN = Plan(frame_of_reference_uid=FRAME, trajectories=(LEFT_L1, RIGHT_L1))
RESULTS = {t.key: made_up_result(t, Status.SAFE, 3.0) for t in PLAN.trajectories}
IMAGES = {"L1": LevelImages(b"axial", b"sagittal", level="L1")}


def _grey_png() -> bytes:
    """A small grey picture: what the PDF needs where a level's slice goes."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (64, 64), 128).save(out, format="PNG")
    return out.getvalue()


IMAGES_PNG = {"L1": LevelImages(_grey_png(), _grey_png(), level="L1")}
# the plan report of the demo case, read back by pdftotext before the model existed
BEFORE_THE_MODEL = Path(__file__).with_name("plan_report_text.txt")


def _report(**changes: object) -> PlanReport:
    """The report of `PLAN` with its checks and pictures, with ``changes`` made."""
    given: dict[str, object] = dict(plan=PLAN, results=RESULTS, volume=CT, images=IMAGES)
    given.update(changes)
    return PlanReport(**given, software_version=demo.VERSION)  # type: ignore[arg-type]


def test_a_checked_plan_with_its_pictures_makes_a_frozen_report() -> None:
    results, images = dict(RESULTS), dict(IMAGES)
    report = _report(results=results, images=images)
    results.clear()
    images.clear()  # what the caller does with its dicts afterwards changes no report
    assert set(report.results) == {LEFT_L1.key, RIGHT_L1.key} and set(report.images) == {"L1"}
    assert report.created.tzinfo is not None  # printed with its UTC offset
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.planner = "someone else"  # type: ignore[misc]


@NEEDS_POPPLER
def test_a_needle_without_its_check_is_printed_as_not_checked(tmp_path) -> None:
    """A needle placed by hand where the spine was not found has no check: the report is
    still written (a hand plan may be documented) and says so by name."""
    assert _report(results={LEFT_L1.key: RESULTS[LEFT_L1.key]}).unchecked == ["Right L1"]
    report = _report(results={})
    assert report.unchecked == ["Left L1", "Right L1"]
    pdf = tmp_path / "unchecked.pdf"
    write_pdf_report(pdf, dataclasses.replace(report, fluoroscopy=None, images=IMAGES_PNG))
    text = " ".join(pdf_text(pdf).split())
    assert "Not checked against the anatomy: Left L1, Right L1." in text


def test_a_result_of_no_needle_of_the_plan_is_refused_by_name() -> None:
    stray = {**RESULTS, LEFT_L2.key: made_up_result(LEFT_L2, Status.SAFE, 3.0)}
    with pytest.raises(ReportModelError, match=r"^The check results of Left L2 belong to no "
                                               r"needle of the plan"):
        _report(results=stray)


def test_a_plan_of_another_frame_of_reference_needs_the_users_override() -> None:
    other = dataclasses.replace(PLAN, frame_of_reference_uid="1.2.3.999")
    with pytest.raises(ReportModelError, match=(
            r"^The plan was made on another CT \(Frame of Reference 1\.2\.3\.999, this CT "
            r"has 1\.2\.3\.4\): its needles would be printed on this CT's images")):
        _report(plan=other)
    overridden = dataclasses.replace(other, frame_override=FrameOverride("1.2.3.999", FRAME))
    assert _report(plan=overridden).plan.frame_override is not None
    # a CT without a frame of reference (NIfTI) has none to compare the plan's with
    nifti = Volume(CT.array, CT.affine_lps)
    assert _report(plan=other, volume=nifti).volume is nifti


def test_a_level_without_its_pictures_is_refused_by_name() -> None:
    plan = PLAN.with_trajectory(LEFT_L2)
    results = {**RESULTS, LEFT_L2.key: made_up_result(LEFT_L2, Status.SAFE, 3.0)}
    with pytest.raises(ReportModelError, match=r"^The report has no pictures of L2: make"):
        _report(plan=plan, results=results)


def test_refusals_are_the_users_errors_and_an_export_can_ask_first() -> None:
    """A `VertebroPlanError` (shown as is) and a `ValueError`; `refuse_unprintable` gives
    the same refusal before any picture is made (the export asks it first)."""
    stray = {**RESULTS, LEFT_L2.key: made_up_result(LEFT_L2, Status.SAFE, 3.0)}
    with pytest.raises(ReportModelError) as made:
        _report(results=stray)
    assert isinstance(made.value, VertebroPlanError) and isinstance(made.value, ValueError)
    with pytest.raises(ReportModelError) as asked:
        refuse_unprintable(PLAN, stray, CT)
    assert str(asked.value) == str(made.value)


@NEEDS_POPPLER
def test_the_report_prints_word_for_word_what_it_printed_before_the_model(
        demo_report_plan: demo.DemoPlan, tmp_path: Path) -> None:
    """The demo case's whole report — summary with the Levels table and a warning, level
    pages with a 3-D picture, fluoroscopy pages, assessment cards — read back as text, is
    the text the 17-argument writer printed (`plan_report_text.txt`, its creation time left
    as "{created}"). When the report's words change on purpose, write that file again from
    the new report."""
    volume, anatomy, plan, results = demo_report_plan
    images = {level: level_images(volume, plan, results, anatomy, level)
              for level in demo.LEVELS}
    report = PlanReport(plan, results, volume, images,
                        snapshots={"L1": demo.stand_in_snapshot()}, planner=demo.PLANNER,
                        software_version=demo.VERSION, warnings=[demo.WARNING],
                        created=datetime(2024, 6, 11, 10, 30, tzinfo=UTC),
                        assessment=assess_levels(volume, anatomy, plan.trajectories))
    text = pdf_text(write_pdf_report(tmp_path / "report.pdf", report))
    before = BEFORE_THE_MODEL.read_text(encoding="utf-8").replace(
        "{created}", created_text(report.created))
    assert " ".join(text.split()) == " ".join(before.split())
