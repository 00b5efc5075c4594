"""The plan as a DICOM Comprehensive 3D SR: real files on the demo DICOM CT, checked by
dicom3tools' dciodvfy and DCMTK's dsrdump, and read back into the same plan."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from planning.anatomy.from_demo import anatomy_from_demo_truth
from planning.assessment.levels import assess_levels
from planning.carm import working_views
from planning.checks import CheckContext, CheckResult, check_plan
from planning.demo import DEMO_PATIENT
from planning.interop.derived_dicom import Authoring
from planning.interop.dicom_codes import LEVEL_CODES
from planning.interop.dicom_sr import SRExportError, write_plan_sr
from planning.interop.plan_file import PlanFormatError
from planning.interop.plan_from_sr import read_plan_sr
from planning.plan import LEVEL_NAMES, FrameOverride, Plan, Side, Trajectory
from planning.vocabulary import DISCLAIMER
from planning.volume import PatientInfo, Volume
from tests.planning.carm_reference import (
    angle_between_deg,
    detector_direction,
    detector_direction_table,
    expected_bulls_eye_detector,
)
from tests.planning.interop.demo_series import demo_series, pedicle_needle

COMPREHENSIVE_3D_SR = "1.2.840.10008.5.1.4.1.1.88.34"
TOLERANCE_MM = 0.01
LEVELS = ("L1", "L2")


@pytest.fixture(scope="module")
def demo():
    """The demo CT as DICOM, loaded with the project's loader (real UIDs)."""
    return demo_series()


@pytest.fixture(scope="module")
def planned(demo, tmp_path_factory: pytest.TempPathFactory):
    """2 levels × 2 sides, checked on the demo anatomy, written as an SR."""
    _, truth, volume = demo
    needles = [pedicle_needle(truth, lv, side) for lv in LEVELS for side in Side]
    needles[0] = replace(needles[0], note="aim for the fracture cleft")
    # One needle pushed 9 mm medially, into the canal: its findings must reach the SR.
    lv = truth.level("L2")
    needles[-1] = needles[-1].translated(lv.left_lps * 9.0)
    plan = Plan(
        study_uid=volume.study_uid,
        series_uid=volume.series_uid,
        frame_of_reference_uid=volume.frame_of_reference_uid,
        trajectories=tuple(needles),
    )
    anatomy = anatomy_from_demo_truth(truth)
    ctx = CheckContext.build(volume, anatomy)
    results = {(r.level, r.side): r for r in check_plan(plan, ctx)}
    path = tmp_path_factory.mktemp("sr") / "plan.dcm"
    # with the level assessment: its groups must pass the validators and not disturb reading
    ASSESSED.update(assess_levels(volume, anatomy, plan.trajectories))
    # L2's name taken as uncertain (as an automatic anatomy without ribs or sacrum says)
    written = write_plan_sr(path, plan, results, volume, assessment=ASSESSED,
                            uncertain_levels={"L2"})
    return plan, results, written


ASSESSED: dict = {}


def _walk(item: Dataset):
    yield item
    for child in item.get("ContentSequence", ()):
        yield from _walk(child)


def _named(ds: Dataset, meaning: str) -> list[Dataset]:
    return [
        i
        for i in _walk(ds)
        if "ConceptNameCodeSequence" in i and i.ConceptNameCodeSequence[0].CodeMeaning == meaning
    ]


def _group(ds: Dataset, label: str) -> Dataset:
    groups = [
        g
        for g in _named(ds, "Measurement Group")
        if any(i.TextValue == label for i in _named(g, "Tracking Identifier"))
    ]
    assert len(groups) == 1, label
    return groups[0]


def _num(group: Dataset, meaning: str) -> float:
    (item,) = _named(group, meaning)
    return float(item.MeasuredValueSequence[0].NumericValue)


def _texts(group: Dataset, meaning: str) -> list[str]:
    return [str(i.TextValue) for i in _named(group, meaning)]


def _assert_same_plan(back: Plan, plan: Plan) -> None:
    assert [t.key for t in back.trajectories] == [t.key for t in plan.trajectories]
    for b, t in zip(back.trajectories, plan.trajectories, strict=True):
        assert np.abs(np.subtract(b.entry_lps, t.entry_lps)).max() < TOLERANCE_MM, t.label
        assert np.abs(np.subtract(b.target_lps, t.target_lps)).max() < TOLERANCE_MM, t.label
        assert b.gauge == t.gauge
        assert b.note == t.note


# ---- validators ------------------------------------------------------------------------


def _tool(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        pytest.skip(f"{name} is not installed")
    return exe


def test_dciodvfy_finds_no_errors(planned) -> None:
    _, _, path = planned
    run = subprocess.run(
        [_tool("dciodvfy"), str(path)], capture_output=True, text=True, check=False
    )
    lines = (run.stdout + run.stderr).splitlines()
    assert "Comprehensive3DSR" in lines[0]
    errors = [line for line in lines if line.startswith("Error")]
    assert errors == []
    # The one expected warning: dciodvfy does not know the declared local coding scheme.
    other = {line for line in lines[1:] if "99VPLAN" not in line}
    assert other == set()


def test_dsrdump_shows_levels_sides_and_coordinates(planned) -> None:
    plan, _, path = planned
    run = subprocess.run(
        [_tool("dsrdump"), "+Pl", "+U8", str(path)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "Comprehensive 3D SR Document" in out
    assert '(66794005,SCT,"L1 vertebra")' in out and '(14293000,SCT,"L2 vertebra")' in out
    assert out.count('(7771000,SCT,"Left")') == 2 and out.count('(24028007,SCT,"Right")') == 2
    assert DISCLAIMER in out
    assert "the needle enters the spinal canal" in out
    # what the image showed: the demo's contrast-filled vessels, the bone around each tip
    assert out.count("Needle clearance to contrast-filled vessel") == len(plan.trajectories)
    assert out.count("Directions from the tip in bone, of 14") == len(plan.trajectories)
    assert '"transpedicular"' in out
    assert out.count("Level name certainty") == len(plan.trajectories)
    # each needle's two working views, in DICOM's own concepts, with the position coded
    n = len(plan.trajectories)
    coded = subprocess.run([_tool("dsrdump"), "+Pl", "+Pc", "+U8", str(path)],
                           capture_output=True, text=True, check=False).stdout
    assert coded.count('NUM:(112011,DCM,"Positioner Primary Angle")') == 2 * n
    assert coded.count('NUM:(112012,DCM,"Positioner Secondary Angle")') == 2 * n
    assert coded.count('(113744,DCM,"Patient Orientation Modifier")=(1240000,SCT,"prone")') \
        == 2 * n
    assert out.count("Detector position in words") == 2 * n
    assert out.count('"uncertain"') == sum(t.level == "L2" for t in plan.trajectories)
    polylines = re.findall(r"SCOORD3D:.*?\(POLYLINE,,([^)]*)\)", out)
    assert len(polylines) == len(plan.trajectories)
    dumped = [
        np.array([[float(v) for v in point.split("/")] for point in line.split(",")])
        for line in polylines
    ]
    for t, points in zip(plan.trajectories, dumped, strict=True):
        np.testing.assert_allclose(points, [t.entry_lps, t.target_lps], atol=1e-3)


# ---- content ---------------------------------------------------------------------------


def test_sr_joins_the_ct_study_and_references_its_series(demo, planned) -> None:
    folder, _, volume = demo
    _, _, path = planned
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == COMPREHENSIVE_3D_SR
    assert ds.Modality == "SR"
    assert ds.StudyInstanceUID == volume.study_uid
    assert ds.SeriesInstanceUID not in (volume.series_uid, "")
    assert ds.PatientID == DEMO_PATIENT.patient_id == volume.patient.patient_id
    assert str(ds.PatientName) == DEMO_PATIENT.name
    assert ds.PatientBirthDate == DEMO_PATIENT.birth_date and ds.PatientSex == "F"
    assert ds.StudyDate == DEMO_PATIENT.study_date and ds.AccessionNumber == "VPDEMO0001"
    ct_instances = {
        str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID)
        for f in folder.glob("IM*.dcm")
    }
    (study,) = ds.CurrentRequestedProcedureEvidenceSequence
    (series,) = study.ReferencedSeriesSequence
    assert series.SeriesInstanceUID == volume.series_uid
    assert {str(i.ReferencedSOPInstanceUID) for i in series.ReferencedSOPSequence} == ct_instances
    frames = {str(i.ReferencedFrameOfReferenceUID) for i in _walk(ds) if "GraphicData" in i}
    assert frames == {volume.frame_of_reference_uid}


def test_each_needle_group_holds_its_measurements(planned) -> None:
    plan, results, path = planned
    ds = pydicom.dcmread(path)
    assert ds.ConceptNameCodeSequence[0].CodeValue == "126000"  # Imaging Measurement Report
    for t in plan.trajectories:
        g = _group(ds, f"{t.label} needle path")
        r: CheckResult = results[t.key]
        (site,) = _named(g, "Finding Site")
        assert site.ConceptCodeSequence[0].CodeValue == LEVEL_CODES[t.level].value
        (lat,) = _named(site, "Laterality")
        assert lat.ConceptCodeSequence[0].CodeMeaning == t.side.value.capitalize()
        assert _num(g, "Length") == pytest.approx(t.length_mm, abs=TOLERANCE_MM)
        assert _num(g, "Needle clearance to spinal canal") == pytest.approx(
            r.canal_clearance_mm, abs=TOLERANCE_MM
        )
        assert _num(g, "Needle medial angle to sagittal plane, + to midline") == pytest.approx(
            r.medial_angle_deg, abs=0.01
        )
        assert _num(g, "Needle tilt to axial plane, + tip towards the feet") == pytest.approx(
            r.craniocaudal_angle_deg, abs=0.01
        )
        assert _num(g, "Needle outer diameter") == 3.05
        assert _texts(g, "Needle Gauge") == ["11G"]
        assert _texts(g, "Safety check status") == [r.status.value]
        assert _texts(g, "Canal breach grade (Gertzbein-Robbins)") == [r.breach_grade]
        assert _texts(g, "Safety check finding") == list(r.reasons)
        _assert_carm_views(g, t, "prone")
        cortex = _named(g, "Tip to anterior cortex distance")
        assert len(cortex) == (r.tip_to_anterior_cortex_mm is not None)
    into_canal = results[("L2", Side.RIGHT)]
    assert into_canal.breach_grade != "A"
    assert _texts(_group(ds, "Left L1 needle path"), "Comment") == ["aim for the fracture cleft"]
    (disclaimer,) = [i.TextValue for i in _named(ds, "Comment") if i.TextValue == DISCLAIMER]
    assert disclaimer == "For research and training — not for clinical use"


def _view_group(g: Dataset, meaning: str) -> Dataset:
    (view,) = [i for i in g.ContentSequence if i.ValueType == "CONTAINER"
               and i.ConceptNameCodeSequence[0].CodeMeaning == meaning]
    return view


def _coded(item: Dataset) -> tuple[str, str, str]:
    c = item.ConceptNameCodeSequence[0]
    return (c.CodingSchemeDesignator, c.CodeValue, c.CodeMeaning)


def _assert_carm_views(g: Dataset, t: Trajectory, position: str) -> None:
    """Each working view a group in the standard's words: DICOM's positioner angles
    (112011 / 112012, UCUM deg), checked against the definition derived independently;
    the patient's position coded; the head-first-supine angles; the detector in words."""
    views = working_views(t, position)  # type: ignore[arg-type]
    for key, meaning in (("bulls_eye", "C-arm bull's-eye working view"),
                         ("progression", "C-arm progression working view")):
        v = _view_group(g, meaning)
        nums = {_coded(i)[1]: i.MeasuredValueSequence[0] for i in v.ContentSequence
                if i.ValueType == "NUM"}
        primary, secondary = nums["112011"], nums["112012"]
        assert primary.MeasurementUnitsCodeSequence[0].CodeValue == "deg"
        assert primary.MeasurementUnitsCodeSequence[0].CodingSchemeDesignator == "UCUM"
        a, b = float(primary.NumericValue), float(secondary.NumericValue)
        detector = detector_direction(a, b)
        if key == "bulls_eye":
            want = expected_bulls_eye_detector(t.entry, t.target, position)
            assert angle_between_deg(detector, want) < 0.02
        else:
            assert abs(float(detector @ t.direction)) < 1e-3
        table = detector_direction_table(float(nums["carm-hfs-primary"].NumericValue),
                                         float(nums["carm-hfs-second"].NumericValue),
                                         position)
        assert angle_between_deg(table, detector) < 0.02
        (orientation,) = [i for i in v.ContentSequence if _coded(i)[1] == "113743"]
        assert orientation.ConceptCodeSequence[0].CodeValue == "102538003"  # recumbent
        (modifier,) = orientation.ContentSequence
        assert modifier.RelationshipType == "HAS CONCEPT MOD"
        assert _coded(modifier)[1] == "113744"
        assert modifier.ConceptCodeSequence[0].CodeMeaning == position
        (relation,) = [i for i in v.ContentSequence if _coded(i)[1] == "113745"]
        assert relation.ConceptCodeSequence[0].CodeMeaning == "headfirst"
        (words,) = [i.TextValue for i in v.ContentSequence if i.ValueType == "TEXT"]
        assert words == views[key].words


def test_supine_angles_are_written_with_their_position(demo, planned, tmp_path: Path) -> None:
    plan, results, _ = planned
    volume = demo[2]
    path = write_plan_sr(tmp_path / "supine.dcm", plan, results, volume, position="supine")
    ds = pydicom.dcmread(path)
    for t in plan.trajectories:
        g = _group(ds, f"{t.label} needle path")
        _assert_carm_views(g, t, "supine")
        written = _view_group(g, "C-arm bull's-eye working view")
        secondary = next(float(i.MeasuredValueSequence[0].NumericValue) for i in
                         written.ContentSequence if _coded(i)[1] == "112012")
        prone = working_views(t, "prone")["bulls_eye"].patient
        # the same line seen from the other side of the table: CRAN and CAUD swap
        assert secondary == pytest.approx(-prone.secondary_deg, abs=0.01)
        assert abs(secondary) > 0.5


def test_the_automatic_canal_s_wall_uncertainty_is_written_per_needle(demo, planned,
                                                                      tmp_path: Path) -> None:
    """On an automatic canal each needle's group says how far to trust the canal where it
    passes (issue 21 §3): the wall's uncertainty in mm and whether the wall is bone or soft
    tissue. An imported canal (the demo truth here) is trusted as drawn: no such items."""
    from planning.canal_margin import CanalMarginAt

    plan, results, path = planned
    assert not _named(pydicom.dcmread(path), "Canal wall uncertainty at the needle")
    first, second = plan.trajectories[0].key, plan.trajectories[1].key
    automatic = dict(results)
    automatic[first] = replace(results[first], canal_margin=CanalMarginAt(
        clearance_mm=4.2, uncertainty_mm=2.7, needed_mm=3.7, soft_wall=True))
    automatic[second] = replace(results[second], canal_margin=CanalMarginAt(
        clearance_mm=5.0, uncertainty_mm=0.5, needed_mm=2.0, soft_wall=False))
    ds = pydicom.dcmread(write_plan_sr(tmp_path / "auto.dcm", plan, automatic, demo[2]))
    soft = _group(ds, f"{plan.trajectories[0].label} needle path")
    bone = _group(ds, f"{plan.trajectories[1].label} needle path")
    assert _num(soft, "Canal wall uncertainty at the needle") == pytest.approx(2.7)
    assert _texts(soft, "Canal wall at the needle") == ["soft tissue"]
    assert _num(bone, "Canal wall uncertainty at the needle") == pytest.approx(0.5)
    assert _texts(bone, "Canal wall at the needle") == ["bone"]
    (unit,) = _named(soft, "Canal wall uncertainty at the needle")
    assert unit.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0].CodeValue == "mm"
    other = _group(ds, f"{plan.trajectories[2].label} needle path")
    assert not _named(other, "Canal wall uncertainty at the needle")


def test_each_planned_level_has_its_assessment_group(planned) -> None:
    plan, _, path = planned
    ds = pydicom.dcmread(path)
    for level in plan.levels:
        a = ASSESSED[level]
        g = _group(ds, f"{level} level assessment")
        (site,) = _named(g, "Finding Site")
        assert site.ConceptCodeSequence[0].CodeValue == LEVEL_CODES[level].value
        h = a.fracture.heights
        assert _num(g, "Vertebral body anterior height") == pytest.approx(h.anterior_mm, abs=0.01)
        assert _num(g, "Genant semiquantitative fracture grade") == a.genant_grade
        assert _num(g, "Vertebral body volume") == pytest.approx(a.body_volume_ml, abs=0.01)
        assert _num(g, "Planned cement volume, high") == pytest.approx(
            a.cement_ml_total[1], abs=0.01)
        assert _num(g, "Left pedicle isthmus width") == pytest.approx(
            a.pedicles[Side.LEFT].width_mm, abs=0.01)
        assert _texts(g, "Comment") == [a.fracture_summary()]
    assert ASSESSED["L1"].genant_grade == 2 and "L1" in plan.levels


def test_every_level_has_a_distinct_snomed_code() -> None:
    assert set(LEVEL_CODES) == set(LEVEL_NAMES)
    assert len({c.value for c in LEVEL_CODES.values()}) == len(LEVEL_NAMES)
    assert {c.scheme_designator for c in LEVEL_CODES.values()} == {"SCT"}
    assert LEVEL_CODES["L1"].value == "66794005" and LEVEL_CODES["T11"].value == "12989004"


# ---- reading back ------------------------------------------------------------------------


def test_round_trip_gives_the_plan_within_a_hundredth_of_a_mm(demo, planned) -> None:
    _, _, volume = demo
    plan, _, path = planned
    back = read_plan_sr(path)
    _assert_same_plan(back, plan)
    assert back.frame_of_reference_uid == volume.frame_of_reference_uid
    assert back.study_uid == volume.study_uid
    assert back.series_uid == volume.series_uid


def test_a_ct_image_is_refused_with_a_clear_message(demo) -> None:
    folder, _, _ = demo
    ct = sorted(folder.glob("IM*.dcm"))[0]
    with pytest.raises(PlanFormatError) as err:
        read_plan_sr(ct)
    assert str(err.value) == (
        f"'{ct}' is a DICOM CT Image Storage, not a needle plan (a Comprehensive 3D SR "
        "written by VertebroPlan)."
    )


def test_other_comprehensive_3d_srs_are_refused(planned, tmp_path: Path) -> None:
    _, _, path = planned
    ds = pydicom.dcmread(path)
    for finding in _named(ds, "Finding"):
        finding.ConceptCodeSequence[0].CodeValue = "4147007"  # a mass, not a needle
    ds.save_as(tmp_path / "masses.dcm")
    with pytest.raises(PlanFormatError, match=r"masses\.dcm': the SR holds no needle paths"):
        read_plan_sr(tmp_path / "masses.dcm")
    ds.ConceptNameCodeSequence[0].CodeValue = "18748-4"  # a diagnostic imaging report
    ds.save_as(tmp_path / "report.dcm")
    with pytest.raises(PlanFormatError, match=r"report\.dcm': the SR is not an Imaging Measure"):
        read_plan_sr(tmp_path / "report.dcm")


def test_files_that_are_not_dicom_name_the_file(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not DICOM")
    with pytest.raises(PlanFormatError, match=r"notes\.txt' is not a DICOM file"):
        read_plan_sr(text)
    with pytest.raises(PlanFormatError, match=r"missing\.dcm' does not exist"):
        read_plan_sr(tmp_path / "missing.dcm")


# ---- geometry as given, volumes without DICOM instances ----------------------------------


def small_volume(affine_lps: np.ndarray) -> Volume:
    """A NIfTI-like volume: no instance UIDs, no patient data, only a Frame of Reference."""
    return Volume(
        array=np.zeros((4, 5, 6), dtype=np.int16),
        affine_lps=affine_lps,
        frame_of_reference_uid="1.2.826.0.1.3680043.8.498.1",
        series_uid="1.2.826.0.1.3680043.8.498.2",
    )


def _oblique_flipped() -> np.ndarray:
    c, s = np.cos(np.radians(20.0)), np.sin(np.radians(20.0))
    a = np.eye(4)
    a[:3, :3] = np.array([[-c, -s, 0.0], [s, -c, 0.0], [0.0, 0.0, -1.0]]) @ np.diag([0.7, 0.8, 2.5])
    a[:3, 3] = (120.0, -80.0, 900.0)
    return a


@pytest.mark.parametrize("affine", [np.eye(4), _oblique_flipped()], ids=["identity", "oblique"])
def test_lps_values_are_written_as_given(tmp_path: Path, affine: np.ndarray) -> None:
    volume = small_volume(affine)
    left = Trajectory("T11", Side.LEFT, (30.0, 60.25, -400.123), (8.5, -12.75, -399.5), "10G")
    right = Trajectory("S1", Side.RIGHT, (-30.0, 61.0, 1234.567), (-8.5, -12.0, -3210.987))
    plan = Plan(frame_of_reference_uid=volume.frame_of_reference_uid, trajectories=(left, right))
    path = write_plan_sr(tmp_path / "sr" / "plan.dcm", plan, {}, volume)
    ds = pydicom.dcmread(path)
    first, second = (
        np.asarray(i.GraphicData, dtype=np.float64).reshape(-1, 3)
        for i in _walk(ds)
        if "GraphicData" in i
    )
    # Patient left is +x: the left needle's entry keeps x = +30, nothing is flipped.
    np.testing.assert_allclose(first, [left.entry_lps, left.target_lps], atol=1e-4)
    np.testing.assert_allclose(second, [right.entry_lps, right.target_lps], atol=1e-3)
    assert "CurrentRequestedProcedureEvidenceSequence" not in ds  # nothing to reference
    assert ds.StudyInstanceUID  # a new study, since the volume had none
    back = read_plan_sr(path)
    _assert_same_plan(back, plan)
    assert back.series_uid == ""  # only known through references to the CT's instances
    assert back.get("S1", "right") is not None and back.get("T11", "left").gauge == "10G"


def test_non_ascii_names_survive(tmp_path: Path) -> None:
    volume = small_volume(np.eye(4))
    volume.patient = PatientInfo(name="Müller^Zoë", patient_id="Ø-7", sex="X")
    plan = Plan(trajectories=(Trajectory("L3", "left", (20, 40, 0), (5, 0, 0), note="côté"),))
    path = write_plan_sr(tmp_path / "plan.dcm", plan, {}, volume)
    ds = pydicom.dcmread(path)
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert str(ds.PatientName) == "Müller^Zoë" and ds.PatientID == "Ø-7"
    assert ds.PatientSex == ""  # not a DICOM value: left empty rather than invented
    assert read_plan_sr(path).trajectories[0].note == "côté"


# ---- refusals, de-identification, atomic writes -----------------------------------------


def test_what_would_mislead_is_refused(tmp_path: Path) -> None:
    volume = small_volume(np.eye(4))
    needle = Trajectory("L1", "left", (20, 40, 0), (5, 0, 0))
    with pytest.raises(SRExportError, match="no needle trajectories"):
        write_plan_sr(tmp_path / "a.dcm", Plan(), {}, volume)
    other = Plan(frame_of_reference_uid="1.2.3.4", trajectories=(needle,))
    with pytest.raises(SRExportError, match=r"made on another CT \(Frame of Reference 1\.2\.3\.4"):
        write_plan_sr(tmp_path / "b.dcm", other, {}, volume)
    overridden = replace(other, frame_override=FrameOverride("1.2.3.4", "x"))
    assert write_plan_sr(tmp_path / "c.dcm", overridden, {}, volume).exists()
    no_frame = small_volume(np.eye(4))
    no_frame.frame_of_reference_uid = ""
    with pytest.raises(SRExportError, match="no Frame of Reference UID"):
        write_plan_sr(tmp_path / "d.dcm", Plan(trajectories=(needle,)), {}, no_frame)
    assert not (tmp_path / "a.dcm").exists() and not (tmp_path / "d.dcm").exists()


def test_results_of_an_older_needle_position_are_refused(demo, planned, tmp_path: Path) -> None:
    _, _, volume = demo
    plan, results, _ = planned
    first = plan.trajectories[0]
    moved = plan.with_trajectory(first.moved(target_lps=first.target + 2.0))
    with pytest.raises(SRExportError, match="Left L1 is for another needle position"):
        write_plan_sr(tmp_path / "plan.dcm", moved, results, volume)


def test_deidentify_with_gets_the_finished_dataset(demo, planned, tmp_path: Path) -> None:
    _, _, volume = demo
    plan, results, _ = planned
    seen: list[Dataset] = []

    def anonymise(ds: Dataset) -> Dataset:
        seen.append(ds)
        assert ds.PatientID == DEMO_PATIENT.patient_id and "ContentSequence" in ds
        ds.PatientName, ds.PatientID = "Anonymous", "ANON-1"
        return ds

    path = write_plan_sr(tmp_path / "plan.dcm", plan, results, volume,
                         authoring=Authoring(deidentify_with=anonymise))
    assert len(seen) == 1
    ds = pydicom.dcmread(path)
    assert (str(ds.PatientName), ds.PatientID) == ("Anonymous", "ANON-1")


def test_a_failed_write_keeps_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    volume = small_volume(np.eye(4))
    plan = Plan(trajectories=(Trajectory("L1", "left", (20, 40, 0), (5, 0, 0)),))
    path = write_plan_sr(tmp_path / "plan.dcm", plan, {}, volume)
    before = path.read_bytes()

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("planning.atomic_file.os.fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_plan_sr(
            path, plan.with_trajectory(plan.trajectories[0].translated([1, 0, 0])), {}, volume
        )
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["plan.dcm"]


def test_the_loader_keeps_the_ct_instances(demo) -> None:
    folder, _, volume = demo
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in sorted(folder.glob("IM*"))]
    by_position = sorted(headers, key=lambda h: float(h.ImagePositionPatient[2]))
    assert [i.sop_instance_uid for i in volume.source_instances] == [
        h.SOPInstanceUID for h in by_position
    ]
    assert {i.sop_class_uid for i in volume.source_instances} == {"1.2.840.10008.5.1.4.1.1.2"}
    assert repr(volume.patient) == "PatientInfo(<hidden>)"
