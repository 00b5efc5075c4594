"""`vertebroplan export` as a user runs it: real files, real validators, a real DICOM node."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

from planning.interop.any_plan import load_any_plan
from planning.interop.plan_file import load_plan
from tests.app.cli_helpers import demo_case, run_cli
from tests.planning.dicom_receiver import storescp_receiver


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> tuple[Path, Path]:
    """The demo CT written as DICOM and a plan of L1 and L2 proposed on it."""
    return demo_case(tmp_path_factory.mktemp("export"))


def _text(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout


def test_export_pdf_and_sr_round_trip(case, tmp_path) -> None:
    ct, plan_path = case
    pdf, sr = tmp_path / "report.pdf", tmp_path / "plan.dcm"
    out = run_cli("export", str(ct), str(plan_path), "--pdf", str(pdf), "--sr", str(sr),
                  "--no-3d", "--planner", "Dr Test")
    assert out.returncode == 0, out.stderr
    assert f"Written: {pdf}" in out.stdout and f"Written: {sr}" in out.stdout
    plan = load_plan(plan_path)
    text = _text(pdf)
    assert "For research and training" in text and "Dr Test" in text
    for t in plan.trajectories:
        assert t.level in text
        for v in (*t.entry_lps, *t.target_lps):
            assert f"{v:.1f}".replace("-", "\u2212") in text or f"{v:.1f}" in text
    validator = subprocess.run(["dciodvfy", str(sr)], capture_output=True, text=True)
    assert "Error" not in validator.stdout + validator.stderr
    back = load_any_plan(sr)  # the same reader as `open CT --plan PLAN.dcm` and the GUI
    assert back.frame_of_reference_uid == plan.frame_of_reference_uid
    assert [t.key for t in back.trajectories] == [t.key for t in plan.trajectories]
    for a, b in zip(back.trajectories, plan.trajectories, strict=True):
        assert np.abs(a.entry - b.entry).max() < 0.01
        assert np.abs(a.target - b.target).max() < 0.01
    checked = run_cli("check", str(ct), str(sr))  # an SR is a plan for every command
    assert checked.returncode == 0 and checked.stdout.count("SAFE") == 4


def test_export_deidentified_leaves_no_identifiers(case, tmp_path) -> None:
    ct, plan_path = case
    pdf, sr = tmp_path / "teach.pdf", tmp_path / "teach.dcm"
    out = run_cli("export", str(ct), str(plan_path), "--pdf", str(pdf), "--sr", str(sr),
                  "--no-3d", "--deidentify")
    assert out.returncode == 0, out.stderr
    ds = pydicom.dcmread(sr)
    original = pydicom.dcmread(next(p for p in sorted(ct.rglob("*")) if p.is_file()
                                    and p.suffix.lower() in ("", ".dcm")))
    assert ds.PatientIdentityRemoved == "YES"
    assert str(ds.PatientName) != str(original.PatientName)
    assert ds.PatientID != original.PatientID
    assert ds.StudyInstanceUID != original.StudyInstanceUID
    text = _text(pdf)
    assert original.PatientID not in text
    family, given = str(original.PatientName).split("^")[:2]
    assert f"{family}, {given}" not in text and str(original.PatientName) not in text
    assert "De-identified" in text
    b = str(original.PatientBirthDate)
    assert f"{b[:4]}-{b[4:6]}-{b[6:]}" not in text


def test_export_sends_sr_seg_and_pdf_to_a_dicom_node(case, tmp_path) -> None:
    ct, plan_path = case
    with storescp_receiver(tmp_path) as receiver:
        r = receiver.remote
        out = run_cli("export", str(ct), str(plan_path), "--no-3d",
                      "--send", f"{r.ae_title}@{r.host}:{r.port}")
        assert out.returncode == 0, out.stderr
        received = [pydicom.dcmread(p) for p in receiver.received()]
    classes = sorted(ds.SOPClassUID.name for ds in received)
    assert classes == ["Comprehensive 3D SR Storage", "Encapsulated PDF Storage",
                       "Segmentation Storage"]
    pdf = next(ds for ds in received if ds.Modality == "DOC")
    assert bytes(pdf.EncapsulatedDocument).startswith(b"%PDF")
    assert len({ds.StudyInstanceUID for ds in received}) == 1


def test_export_to_nobody_fails_with_a_clear_message(case, tmp_path) -> None:
    ct, plan_path = case
    out = run_cli("export", str(ct), str(plan_path), "--no-3d", "--send", "PACS@127.0.0.1:9")
    assert out.returncode != 0
    assert "vertebroplan: error:" in out.stderr and "127.0.0.1" in out.stderr
    assert "Traceback" not in out.stderr


def test_export_supine_with_a_custom_c_arm_and_without_fluoroscopy(case, tmp_path) -> None:
    """The C-arm set-up reaches the SR and the report; a set-up that cannot be is refused
    before any work, with the reason."""
    ct, plan_path = case
    pdf, sr = tmp_path / "report.pdf", tmp_path / "plan.dcm"
    out = run_cli("export", str(ct), str(plan_path), "--pdf", str(pdf), "--sr", str(sr),
                  "--no-3d", "--supine", "--source-detector-mm", "1100",
                  "--source-isocentre-mm", "700")
    assert out.returncode == 0, out.stderr
    text = " ".join(_text(pdf).split())
    assert "Source–detector 1100 mm, source–isocentre 700 mm" in text
    assert "Patient supine" in text and "C-arm working views (patient supine)" not in text
    # supine: the detector is above the patient's chest, in the words of every working view
    assert text.count("detector in front of the patient's chest") >= 4
    ds = pydicom.dcmread(sr)

    def items(seq):
        for item in seq:
            yield item
            yield from items(item.get("ContentSequence", []))

    positions = [item.ConceptCodeSequence[0].CodeMeaning for item in items(ds.ContentSequence)
                 if "ConceptCodeSequence" in item and item.ConceptNameCodeSequence[0].CodeMeaning
                 == "Patient Orientation Modifier"]
    assert positions == ["supine"] * 8  # 4 needles, 2 working views each

    plain = tmp_path / "plain.pdf"
    out = run_cli("export", str(ct), str(plan_path), "--pdf", str(plain), "--no-3d",
                  "--no-fluoro")
    assert out.returncode == 0 and "Simulated fluoroscopy" not in _text(plain)
    # without the DRR pages, each level page gives the C-arm views, conventions named
    flat = " ".join(_text(plain).split())
    assert "C-arm working views (patient prone)" in flat
    assert "DICOM, patient-referenced" in flat and "detector over the patient's back" in flat

    bad = run_cli("export", str(ct), str(plan_path), "--pdf", str(tmp_path / "x.pdf"),
                  "--source-detector-mm", "600", "--source-isocentre-mm", "900")
    assert bad.returncode != 0 and "C-arm set-up" in bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "x.pdf").exists()
