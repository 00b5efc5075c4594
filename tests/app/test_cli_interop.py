"""Issue 9 end to end, as a user runs it: the plan as DICOM SEG, Slicer markups and meshes
from `vertebroplan export`, markups back in with `vertebroplan import-markups`, and the
whole bundle (SR, SEG, report, optionally the CT) sent to a real DICOM receiver."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

from planning.interop.plan_file import load_plan
from planning.plan import Side
from tests.app.cli_helpers import demo_case, run_cli
from tests.planning.dicom_receiver import storescp_receiver


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> tuple[Path, Path]:
    """The demo CT written as DICOM and a plan of L1 and L2 proposed on it."""
    return demo_case(tmp_path_factory.mktemp("interop"))


def _ct_datasets(ct: Path) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(ct.rglob("*"))
            if p.is_file() and p.suffix.lower() in ("", ".dcm")]


def _scoord_frames(sr: pydicom.Dataset) -> set[str]:
    found: set[str] = set()

    def walk(items) -> None:
        for item in items:
            if getattr(item, "ValueType", "") == "SCOORD3D":
                found.add(item.ReferencedFrameOfReferenceUID)
            walk(getattr(item, "ContentSequence", []))

    walk(sr.ContentSequence)
    return found


def test_export_seg_markups_and_meshes_then_markups_back(case, tmp_path) -> None:
    ct, plan_path = case
    seg, mrk, stl = tmp_path / "plan-seg.dcm", tmp_path / "plan.mrk.json", tmp_path / "stl"
    out = run_cli("export", str(ct), str(plan_path), "--seg", str(seg), "--markups", str(mrk),
                  "--stl", str(stl))
    assert out.returncode == 0, out.stderr
    assert f"Written: {seg}" in out.stdout and f"Written: {mrk}" in out.stdout
    plan = load_plan(plan_path)
    ct_ds = _ct_datasets(ct)[0]

    validator = subprocess.run(["dciodvfy", str(seg)], capture_output=True, text=True)
    errors = [ln for ln in (validator.stdout + validator.stderr).splitlines()
              if ln.startswith("Error")]
    assert errors == []
    ds = pydicom.dcmread(seg)
    assert ds.FrameOfReferenceUID == ct_ds.FrameOfReferenceUID
    assert ds.StudyInstanceUID == ct_ds.StudyInstanceUID
    labels = [s.SegmentLabel for s in ds.SegmentSequence]
    for t in plan.trajectories:
        assert any(t.level in x and t.side.value in x.lower() and "needle" in x.lower()
                   for x in labels), (t.label, labels)
    assert any("canal" in x.lower() for x in labels)

    markups = json.loads(mrk.read_text())
    lines = [m for m in markups["markups"] if m["type"] == "Line"]
    assert len(lines) == len(plan.trajectories)
    assert all(m["coordinateSystem"] == "LPS" for m in lines)

    names = {p.name for p in stl.iterdir()}
    assert {"bone.stl", "canal.stl", "L1.stl", "needle_L1_left.stl", "README.txt"} <= names
    assert "LPS" in (stl / "README.txt").read_text()

    back = tmp_path / "back.vplan.json"
    imported = run_cli("import-markups", str(ct), str(mrk), "-o", str(back))
    assert imported.returncode == 0, imported.stderr
    again = load_plan(back)
    assert again.frame_of_reference_uid == plan.frame_of_reference_uid
    assert [t.key for t in again.trajectories] == [t.key for t in plan.trajectories]
    for a, b in zip(again.trajectories, plan.trajectories, strict=True):
        assert np.abs(a.entry - b.entry).max() < 1e-6
        assert np.abs(a.target - b.target).max() < 1e-6
        assert a.gauge == b.gauge
    left = again.get("L1", Side.LEFT)
    right = again.get("L1", Side.RIGHT)
    assert left.entry[0] > right.entry[0]  # LPS: +x is the patient's left
    checked = run_cli("check", str(ct), str(back))
    assert checked.returncode == 0 and checked.stdout.count("SAFE") == 4


def test_markups_in_ras_from_slicer_are_imported_in_lps(case, tmp_path) -> None:
    """A line placed in Slicer (RAS coordinates) lands where Slicer showed it."""
    ct, plan_path = case
    t = load_plan(plan_path).get("L2", Side.LEFT)
    ras = lambda p: [-float(p[0]), -float(p[1]), float(p[2])]  # noqa: E731
    doc = {"@schema": "https://raw.githubusercontent.com/slicer/slicer/master/Modules/"
                      "Loadable/Markups/Resources/Schema/markups-schema-v1.0.3.json#",
           "markups": [{"type": "Line", "name": "L2 left", "coordinateSystem": "RAS",
                        "coordinateUnits": "mm",
                        "controlPoints": [{"label": "entry", "position": ras(t.entry)},
                                          {"label": "tip", "position": ras(t.target)}]}]}
    src = tmp_path / "slicer.mrk.json"
    src.write_text(json.dumps(doc))
    out = tmp_path / "from-slicer.vplan.json"
    r = run_cli("import-markups", str(ct), str(src), "-o", str(out), "--gauge", "13G")
    assert r.returncode == 0, r.stderr
    got = load_plan(out).get("L2", Side.LEFT)
    assert np.abs(got.entry - t.entry).max() < 1e-6 and got.gauge == "13G"
    bad = tmp_path / "bad.mrk.json"
    bad.write_text("{ not json")
    r = run_cli("import-markups", str(ct), str(bad), "-o", str(out))
    assert r.returncode == 1 and "bad.mrk.json" in r.stderr and "Traceback" not in r.stderr


def test_the_bundle_arrives_in_one_study_and_frame(case, tmp_path) -> None:
    """SR, SEG, report and the CT itself, sent in one go: one study, one frame of
    reference, and the SEG's and SR's references point at the CT images that arrived."""
    ct, plan_path = case
    with storescp_receiver(tmp_path) as receiver:
        r = receiver.remote
        out = run_cli("export", str(ct), str(plan_path), "--no-3d", "--no-fluoro",
                      "--send", f"{r.ae_title}@{r.host}:{r.port}", "--send-ct")
        assert out.returncode == 0, out.stderr
        received = [pydicom.dcmread(p, stop_before_pixels=True) for p in receiver.received()]
    n_ct = len(_ct_datasets(ct))
    by_class: dict[str, list[pydicom.Dataset]] = {}
    for ds in received:
        by_class.setdefault(ds.SOPClassUID.name, []).append(ds)
    assert len(by_class.pop("CT Image Storage")) == n_ct
    assert sorted((k, len(v)) for k, v in by_class.items()) == [
        ("Comprehensive 3D SR Storage", 1), ("Encapsulated PDF Storage", 1),
        ("Segmentation Storage", 1)]
    assert len({ds.StudyInstanceUID for ds in received}) == 1
    cts = [ds for ds in received if ds.Modality == "CT"]
    frame = {ds.FrameOfReferenceUID for ds in cts}
    assert len(frame) == 1
    seg = next(ds for ds in received if ds.Modality == "SEG")
    sr = next(ds for ds in received if ds.Modality == "SR")
    assert {seg.FrameOfReferenceUID} == frame and _scoord_frames(sr) == frame
    ct_uids = {ds.SOPInstanceUID for ds in cts}
    seg_refs = {ref.ReferencedSOPInstanceUID for s in seg.ReferencedSeriesSequence
                for ref in s.ReferencedInstanceSequence}
    assert seg_refs and seg_refs <= ct_uids


def test_a_deidentified_bundle_keeps_its_references(case, tmp_path) -> None:
    """De-identified, the CT, the SEG and the SR get the same new UIDs, so the SEG still
    points at the CT images that arrived, and no original identifier arrives."""
    ct, plan_path = case
    original = _ct_datasets(ct)[0]
    with storescp_receiver(tmp_path) as receiver:
        r = receiver.remote
        out = run_cli("export", str(ct), str(plan_path), "--no-3d", "--no-fluoro",
                      "--deidentify", "--send", f"{r.ae_title}@{r.host}:{r.port}",
                      "--send-ct")
        assert out.returncode == 0, out.stderr
        received = [pydicom.dcmread(p, stop_before_pixels=True) for p in receiver.received()]
    assert len({ds.StudyInstanceUID for ds in received}) == 1
    assert received[0].StudyInstanceUID != original.StudyInstanceUID
    for ds in received:
        assert ds.PatientID != original.PatientID
        assert str(ds.PatientName) != str(original.PatientName)
        assert ds.get("PatientBirthDate", "") in ("", None)
    cts = [ds for ds in received if ds.Modality == "CT"]
    seg = next(ds for ds in received if ds.Modality == "SEG")
    assert seg.FrameOfReferenceUID == cts[0].FrameOfReferenceUID != \
        original.FrameOfReferenceUID
    seg_refs = {ref.ReferencedSOPInstanceUID for s in seg.ReferencedSeriesSequence
                for ref in s.ReferencedInstanceSequence}
    assert seg_refs <= {ds.SOPInstanceUID for ds in cts}
