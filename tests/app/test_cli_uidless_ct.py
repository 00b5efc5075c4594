"""A real DICOM CT whose Study and Series Instance UIDs an anonymiser left blank: warned
about at load (`info`), then exported and sent to a real receiver (storescp) as one new
study that is created once, kept in the plan file, and shared by every later export."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest

from planning.interop.plan_file import load_plan
from tests.app.cli_helpers import demo_series, run_cli
from tests.planning.dicom_receiver import storescp_receiver

pytestmark = pytest.mark.skipif(shutil.which("storescp") is None,
                                reason="DCMTK's storescp is not installed")


@pytest.fixture(scope="module")
def uidless(tmp_path_factory) -> tuple[Path, Path]:
    """The demo CT with blank Study / Series Instance UIDs, and a plan of L1 on it."""
    root = tmp_path_factory.mktemp("uidless")
    ct, plan = root / "ct", root / "plan.vplan.json"
    demo_series(ct)
    for path in sorted(ct.rglob("*.dcm")):
        ds = pydicom.dcmread(path)
        ds.StudyInstanceUID = ""
        ds.SeriesInstanceUID = ""
        ds.save_as(path)
    made = run_cli("plan", str(ct), "--levels", "L1", "--anatomy", "truth", "-o", str(plan))
    assert made.returncode == 0, made.stderr
    return ct, plan


def test_info_warns_at_load(uidless) -> None:
    ct, _ = uidless
    out = run_cli("info", str(ct))
    assert out.returncode == 0, out.stderr
    assert "no Study Instance UID and Series Instance UID" in out.stdout
    assert "new study that VertebroPlan creates and keeps in the plan" in out.stdout


def test_export_and_send_file_everything_in_one_new_study_kept_in_the_plan(uidless,
                                                                          tmp_path) -> None:
    ct, plan_path = uidless
    assert load_plan(plan_path).study_uid == ""
    pdf, sr, seg = tmp_path / "r.pdf", tmp_path / "p-sr.dcm", tmp_path / "p-seg.dcm"
    with storescp_receiver(tmp_path) as receiver:
        r = receiver.remote
        out = run_cli("export", str(ct), str(plan_path), "--pdf", str(pdf), "--sr", str(sr),
                      "--seg", str(seg), "--no-3d", "--no-fluoro",
                      "--send", f"{r.ae_title}@{r.host}:{r.port}", "--send-ct")
        assert out.returncode == 0, out.stderr
        received = [pydicom.dcmread(p, stop_before_pixels=True) for p in receiver.received()]
    plan = load_plan(plan_path)  # the new UIDs were kept in the plan file
    assert plan.study_uid and plan.series_uid
    assert f"filed in study {plan.study_uid}" in out.stdout and "Traceback" not in out.stderr
    # written and sent: SR, SEG, report and every CT image, all in that one study
    classes = sorted({ds.SOPClassUID.name for ds in received})
    assert classes == ["CT Image Storage", "Comprehensive 3D SR Storage",
                       "Encapsulated PDF Storage", "Segmentation Storage"]
    assert {ds.StudyInstanceUID for ds in received} == {plan.study_uid}
    cts = [ds for ds in received if ds.SOPClassUID.name == "CT Image Storage"]
    assert {ds.SeriesInstanceUID for ds in cts} == {plan.series_uid}
    for path in (sr, seg):
        assert pydicom.dcmread(path).StudyInstanceUID == plan.study_uid
    # the SR's evidence names the CT series under the UID the CT was sent with
    evidence = pydicom.dcmread(sr).CurrentRequestedProcedureEvidenceSequence[0]
    assert evidence.StudyInstanceUID == plan.study_uid
    assert evidence.ReferencedSeriesSequence[0].SeriesInstanceUID == plan.series_uid
    # the report says so, with the UIDs
    text = " ".join(subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True,
                                   text=True, check=True).stdout.split())
    assert "VertebroPlan created study" in text and plan.study_uid in text

    # a later export of the same plan: the same study, no new UIDs
    again = tmp_path / "again-sr.dcm"
    out = run_cli("export", str(ct), str(plan_path), "--sr", str(again))
    assert out.returncode == 0, out.stderr
    assert pydicom.dcmread(again).StudyInstanceUID == plan.study_uid
    assert load_plan(plan_path).study_uid == plan.study_uid
