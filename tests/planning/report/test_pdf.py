"""The PDF report on the demo CT: every number a surgeon needs is in its text, the pages
carry pictures, and a de-identified report names nobody.

Text is read back with poppler's ``pdftotext`` and pages are rendered with ``pdftoppm``
(poppler-utils), as a reader's PDF viewer would.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from planning.assessment.levels import assess_levels
from planning.carm import working_views
from planning.checks import CheckResult, Status
from planning.demo import DEMO_PATIENT
from planning.errors import Cancelled
from planning.plan import Side, Trajectory
from planning.progress import Progress
from planning.report.model import PlanReport
from planning.report.pdf import write_pdf_report
from planning.report.report_images import ReportFileError, level_images
from planning.vocabulary import (
    DISCLAIMER,
    STATUS_COLORS,
    STATUS_WORDS,
    format_lps,
    format_number,
    format_person_name,
)
from planning.volume import Volume
from tests.planning.carm_reference import (
    angle_between_deg,
    detector_direction,
    detector_direction_table,
    expected_bulls_eye_detector,
    parse_label,
)
from tests.planning.report.demo_report import (
    LEVELS,
    PLANNER,
    VERSION,
    WARNING,
    DemoPlan,
    stand_in_snapshot,
)
from tests.planning.report.poppler import NEEDS_POPPLER, pdf_pages, pdf_text

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"

pytestmark = NEEDS_POPPLER


@pytest.fixture(scope="module")
def report(demo_report_plan: DemoPlan, tmp_path_factory: pytest.TempPathFactory):
    volume, anatomy, plan, results = demo_report_plan
    assert results[("L2", Side.RIGHT)].status is Status.UNSAFE
    assert results[("L2", Side.RIGHT)].canal_clearance_mm < 0.0

    folder = tmp_path_factory.mktemp("report")
    start = time.perf_counter()
    images = {level: level_images(volume, plan, results, anatomy, level) for level in LEVELS}
    assessment = assess_levels(volume, anatomy, plan.trajectories)
    ASSESSED.update(assessment)
    path = write_pdf_report(folder / "plan report.pdf", PlanReport(
        plan, results, volume, images, snapshots={"L1": stand_in_snapshot()},
        planner=PLANNER, software_version=VERSION, warnings=[WARNING],
        assessment=assessment))
    seconds = time.perf_counter() - start
    deidentified = write_pdf_report(folder / "deidentified.pdf", PlanReport(
        plan, results, volume, images, planner=PLANNER, software_version=VERSION,
        deidentify=True, fluoroscopy=None))
    IMAGES.update(images)
    return plan, results, path, deidentified, seconds


def test_every_number_and_verdict_is_in_the_text(report) -> None:
    plan, results, path, _, seconds = report
    text = pdf_text(path)
    assert DISCLAIMER in text
    assert text.count(DISCLAIMER) >= 1 + len(LEVELS)  # on every page
    assert WARNING in text
    assert plan.frame_of_reference_uid and plan.frame_of_reference_uid in text
    assert "DICOM patient LPS" in text
    assert PLANNER in text and VERSION in text
    for t in plan.trajectories:
        r: CheckResult = results[t.key]
        assert t.level in text and t.gauge in text
        assert t.side.value.capitalize() in text
        assert format_lps(t.entry_lps) in text, (t.label, format_lps(t.entry_lps))
        assert format_lps(t.target_lps) in text, (t.label, format_lps(t.target_lps))
        for v in (*t.entry_lps, *t.target_lps):
            assert format_number(v) in text
        assert format_number(r.canal_clearance_mm) in text
        assert STATUS_WORDS[r.status] in text
        flat = " ".join(text.split())  # (a table cell may wrap)
        _assert_carm_lines(flat, t)
    unsafe = results[("L2", Side.RIGHT)]
    assert format_number(unsafe.canal_clearance_mm).startswith("\u2212")  # a true minus
    assert "enters the spinal canal" in text
    print(f"\nreport (images, DRRs, PDF) for {len(LEVELS)} levels: {seconds:.2f} s")


def test_fluoroscopy_pages_give_each_needles_c_arm_views(report) -> None:
    """Each level's DRR page, with the views' C-arm angles for the patient's position and
    the geometry they assume, as the angio team sets the C-arm from it."""
    plan, _, path, deidentified, _ = report
    flat = " ".join(pdf_text(path).split())
    assert flat.count("Simulated fluoroscopy (DRR)") == len(LEVELS)
    assert "Simulated fluoroscopy (DRR)" not in pdf_text(deidentified)
    assert "Source–detector 1200 mm, source–isocentre 800 mm" in flat
    # the C-arm at 0°/0° with the tube under a prone patient: the beam enters the front
    assert "AP: detector over the patient's back" in flat
    assert "Lateral: detector at the patient's right" in flat
    for heading in ("C-arm display, patient registered head-first supine",
                    "DICOM, patient-referenced", "Detector position (no convention needed)"):
        assert heading in flat
    # the short labels under the images are spelt out on the page
    assert ("How is the patient registered on the C-arm? Always head-first supine" in flat
            and "head-first supine (“C-arm HFS”)" in flat
            and "DICOM, patient-referenced (“DICOM patient” under the images)" in flat)
    for t in plan.trajectories:
        side = t.side.value.capitalize()
        for key, name in (("bulls_eye", "bull's-eye"), ("progression", "progression")):
            view = working_views(t, "prone")[key]
            assert f"{side} {t.level} — {name}, patient prone" in flat
            # and in the page's table, both conventions with the words
            row = [f"{side} {name}", view.table.label(), view.patient.label(), view.words]
            assert " ".join(row) in flat
        _assert_carm_lines(flat, t)


def _assert_carm_lines(flat: str, t: Trajectory) -> None:
    """Both conventions and the words of each working view are printed in a row of a table
    whose headings name the conventions, and the numbers printed put the detector where
    DICOM's definition (derived independently) says the bull's-eye view needs it."""
    views = working_views(t, "prone")
    side = t.side.value.capitalize()
    for key, name in (("bulls_eye", "bull's-eye"), ("progression", "progression")):
        v = views[key]
        assert f"{side} {name} {v.table.label()} {v.patient.label()} {v.words}" in flat
    want = expected_bulls_eye_detector(t.entry, t.target, "prone")
    eye = views["bulls_eye"]
    a, b = parse_label(eye.patient.label())
    assert angle_between_deg(detector_direction(a, b), want) < 1.0
    a, b = parse_label(eye.table.label())
    assert angle_between_deg(detector_direction_table(a, b, "prone"), want) < 1.0
    for heading in ("C-arm display, patient registered head-first supine",
                    "DICOM, patient-referenced", "Detector position (no convention needed)"):
        assert heading in flat


def test_cancelling_the_report_writes_nothing(shared_demo_ct, report, tmp_path: Path) -> None:
    """The DRRs take seconds: Cancel during them stops the report and leaves no file."""
    plan, results, _, _, _ = report
    volume, _ = shared_demo_ct
    progress = Progress()
    seen: list[str] = []

    def listen(done: int, total: int, message: str) -> None:
        seen.append(message)
        if done >= 3:
            progress.cancel()

    progress.callback = listen
    target = tmp_path / "cancelled.pdf"
    with pytest.raises(Cancelled):
        write_pdf_report(target, PlanReport(plan, results, volume, IMAGES,
                                            software_version=VERSION), progress=progress)
    assert not target.exists() and list(tmp_path.iterdir()) == []
    assert any("Simulated fluoroscopy" in m for m in seen)


ASSESSED: dict = {}
IMAGES: dict = {}  # the report fixture's level images, for the tests that write again


def test_levels_section_and_cards_give_the_assessment(report) -> None:
    """Fractured level first in the summary's Levels table; each level page has its card
    with heights, body and cement volumes, pedicles and the leakage risks."""
    plan, _, path, deidentified, _ = report
    flat = " ".join(pdf_text(path).split())
    assert "Levels" in flat and "Genant" in flat
    l1 = ASSESSED["L1"]
    assert l1.fractured and "Moderate (Genant 2) wedge fracture" in l1.fracture_summary()
    levels_at = flat.index("Level Fracture Body")
    assert flat.index("L1", levels_at) < flat.index("T12", levels_at)  # fractured first
    for level in plan.levels:
        a = ASSESSED[level]
        assert f"{level} assessment" in flat
        assert a.fracture_summary() in flat
        assert f"body {a.body_volume_ml:.1f} ml" in flat
        lo, hi = a.cement_ml_total
        assert f"{lo:.1f}–{hi:.1f} ml in all" in flat
        p = a.pedicles[Side.LEFT]
        assert f"{p.width_mm:.1f} × {p.height_mm:.1f} mm" in flat
    assert "assessment" not in pdf_text(deidentified).lower()


def test_header_names_the_patient_and_deidentified_report_does_not(report) -> None:
    _, _, path, deidentified, _ = report
    text = pdf_text(path)
    name = format_person_name(DEMO_PATIENT.name)
    assert name == "VertebroPlan, Demo"
    assert name in text and DEMO_PATIENT.patient_id in text
    assert "1950-01-01" in text and DEMO_PATIENT.accession_number in text
    anonymous = pdf_text(deidentified)
    assert "De-identified" in anonymous and DISCLAIMER in anonymous
    for secret in (name, "VertebroPlan^Demo", DEMO_PATIENT.patient_id, "1950-01-01",
                   "19500101", DEMO_PATIENT.accession_number, "VertebroPlan, "):
        assert secret not in anonymous, secret


def test_pages_are_one_summary_and_two_per_level_with_pictures(report, tmp_path: Path) -> None:
    """Summary, then per level its CT page and its simulated fluoroscopy page; the
    de-identified copy was written without fluoroscopy: one page a level."""
    _, _, path, deidentified, _ = report
    pages = pdf_pages(path, tmp_path, 60)
    # the summary (with the Levels table) takes one or two pages
    extra = len(pages) - (1 + 2 * len(LEVELS))
    assert extra in (0, 1), len(pages)
    pages = [pages[0], *pages[1 + extra:]]
    # one page a level, and one for every needle's C-arm views (the DRR pages give them)
    assert len(pdf_pages(deidentified, tmp_path, 30, "count")) == 1 + 1 + len(LEVELS)
    red = np.array([int(STATUS_COLORS[Status.UNSAFE][i:i + 2], 16) for i in (1, 3, 5)])

    def pixels(page: Path) -> np.ndarray:
        return np.asarray(Image.open(page).convert("RGB"), dtype=float)

    def red_pixels(page: Path) -> int:
        return int((np.linalg.norm(pixels(page) - red, axis=-1) < 12).sum())

    for page in pages[1:]:  # the image half of each level and fluoroscopy page is not blank
        image_band = pixels(page)[int(0.15 * 702):int(0.48 * 702)].mean(axis=-1)
        assert image_band.var() > 500.0, page.name
    assert red_pixels(pages[0]) > 30  # the unsafe status in the summary table
    assert red_pixels(pages[5]) > 30  # L2's page
    assert red_pixels(pages[6]) > 30  # L2's fluoroscopy: the unsafe needle's shadow
    assert red_pixels(pages[1]) == 0  # T12: two safe needles, nothing red
    assert red_pixels(pages[2]) == 0  # nor in its fluoroscopy
    # full-size copies for a human to look at
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for n, page in enumerate(pdf_pages(path, tmp_path, 110, "big"), start=1):
        shutil.copy(page, ARTIFACTS / f"report_page{n}.png")
    first = pdf_pages(deidentified, tmp_path, 110, "deid")[0]
    shutil.copy(first, ARTIFACTS / "report_page1_deidentified.png")


def test_write_is_atomic_and_errors_name_the_file(report, tmp_path: Path) -> None:
    plan, results, _, _, _ = report
    target = tmp_path / "out.pdf"
    target.write_bytes(b"old report")
    volume_like = Volume(np.zeros((2, 2, 2), np.int16), np.eye(4), patient=DEMO_PATIENT)
    # (a CT without a frame of reference UID: nothing to compare the plan's with)
    on_volume_like = PlanReport(plan, results, volume_like, IMAGES, software_version=VERSION)
    written = write_pdf_report(target, on_volume_like)
    assert written == target and target.read_bytes().startswith(b"%PDF")
    assert [p.name for p in tmp_path.iterdir()] == ["out.pdf"]  # no temporary file left
    folder_in_the_way = tmp_path / "a folder.pdf"
    folder_in_the_way.mkdir()
    with pytest.raises(ReportFileError, match=r"a folder\.pdf"):
        write_pdf_report(folder_in_the_way, on_volume_like)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a folder.pdf", "out.pdf"]


def test_person_names() -> None:
    assert format_person_name("DOE^JOHN") == "DOE, John"
    assert format_person_name("DOE^JOHN^PAUL^^") == "DOE, John Paul"
    assert format_person_name("Doe^Jane") == "Doe, Jane"
    assert format_person_name("ANONYMOUS") == "ANONYMOUS"
    assert format_person_name("") == ""
