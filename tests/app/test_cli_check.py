"""`vertebroplan check` end to end: real files in, JSON out; and the real CT with its labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import ROOT, run_cli

from planning.anatomy import TOTALSEGMENTATOR, anatomy_from_label_map
from planning.checks import CheckContext, Status, check
from planning.demo import demo_ct_path, load_demo_truth
from planning.interop.plan_file import save_plan
from planning.io import load_path
from planning.io.nifti import load_nifti
from planning.plan import Plan, Side, Trajectory

ABDOMEN = ROOT.parent / "shared" / "data" / "ct-abdomen-3mm"
FIELDS = {
    "level",
    "side",
    "status",
    "canal_clearance_mm",
    "breach_grade",
    "tip_in_body",
    "tip_to_anterior_cortex_mm",
    "length_mm",
    "medial_angle_deg",
    "craniocaudal_angle_deg",
    "reasons",
}


@pytest.fixture(scope="module")
def demo_folder() -> Path:
    return demo_ct_path()


def _demo_plan(folder: Path, frame_uid: str) -> Plan:
    truth = load_demo_truth(folder)
    trajectories = []
    for name in ("L1", "L2"):
        lv = truth.level(name)
        for side in (Side.LEFT, Side.RIGHT):
            p = lv.pedicle(side.value)
            reach = float(np.linalg.norm(p.anterior_cortex_lps - p.entry_lps)) - 6.0
            trajectories.append(
                Trajectory(name, side, p.entry_lps, p.entry_lps + reach * p.direction_lps, "13G")
            )
    # one needle pushed medially into the canal
    bad = trajectories[2].translated(-truth.level("L2").left_lps * 12.0)
    trajectories[2] = bad
    return Plan(frame_of_reference_uid=frame_uid, trajectories=tuple(trajectories))


def test_check_demo_plan_json(tmp_path: Path, demo_folder: Path) -> None:
    volume = load_path(demo_folder)
    plan_file = save_plan(
        _demo_plan(demo_folder, volume.frame_of_reference_uid), tmp_path / "demo.vplan.json"
    )
    res = run_cli("check", str(demo_folder), str(plan_file), "--json")
    assert res.returncode == 0, res.stderr  # unsafe trajectories are a result, not an error
    out = json.loads(res.stdout)
    rows = {(t["level"], t["side"]): t for t in out["trajectories"]}
    assert len(rows) == 4
    for row in rows.values():
        assert set(row) >= FIELDS
    assert rows[("L1", "left")]["status"] == "safe"
    assert rows[("L1", "right")]["status"] == "safe"
    bad = rows[("L2", "left")]
    assert bad["status"] == "unsafe" and bad["breach_grade"] in "BCDE"
    assert bad["canal_clearance_mm"] < 0
    assert any(r.startswith("Left L2: the needle enters the spinal canal") for r in bad["reasons"])


def test_plan_from_another_frame_is_refused_unless_forced(tmp_path: Path, demo_folder) -> None:
    plan_file = save_plan(_demo_plan(demo_folder, "1.2.3.4.5"), tmp_path / "other.vplan.json")
    res = run_cli("check", str(demo_folder), str(plan_file), "--json")
    assert res.returncode != 0
    assert "another CT" in res.stderr and "Traceback" not in res.stderr
    forced = run_cli("check", str(demo_folder), str(plan_file), "--json", "--force-other-frame")
    assert forced.returncode == 0, forced.stderr
    out = json.loads(forced.stdout)
    assert out["frame_override"]["plan_frame_uid"] == "1.2.3.4.5"


def test_non_demo_ct_uses_the_automatic_anatomy_and_has_no_truth(tmp_path: Path) -> None:
    if not (ABDOMEN / "ct.nii.gz").exists():
        pytest.skip("shared data absent")
    plan_file = save_plan(Plan(), tmp_path / "empty.vplan.json")
    res = run_cli("check", str(ABDOMEN / "ct.nii.gz"), str(plan_file), "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["trajectories"] == []
    res = run_cli("check", str(ABDOMEN / "ct.nii.gz"), str(plan_file), "--anatomy", "truth")
    assert res.returncode == 1
    assert "not the demo CT" in res.stderr and "--labels" in res.stderr


@pytest.fixture(scope="module")
def real():
    ct = load_path(ABDOMEN / "ct.nii.gz")
    anatomy = anatomy_from_label_map(ct, load_nifti(ABDOMEN / "labels.nii.gz"), TOTALSEGMENTATOR)
    return ct, anatomy, CheckContext.build(ct, anatomy)


@pytest.mark.skipif(not (ABDOMEN / "ct.nii.gz").exists(), reason="shared data absent")
class TestRealAbdomen:
    """ct-abdomen-3mm with its TotalSegmentator labels."""

    def test_straight_path_down_the_canal_at_l3_is_grade_e(self, real) -> None:
        _ct, anatomy, ctx = real
        geo = anatomy.levels["L3"]
        k, j, i = np.nonzero(anatomy.canal)
        canal = anatomy.to_lps(np.stack([i, j, k], 1).astype(float))
        local = geo.to_local(canal)
        centre = canal[np.abs(local[:, 2]) < 4.0].mean(axis=0)  # canal centre at mid-L3
        t = Trajectory(
            "L3", Side.LEFT, centre - 8.0 * geo.superior_lps, centre + 8.0 * geo.superior_lps, "11G"
        )
        res = check(t, ctx)
        assert res.breach_grade == "E" and res.status is Status.UNSAFE
        assert res.canal_clearance_mm < -6.0

    def test_path_outside_the_vertebra_does_not_touch_the_canal(self, real) -> None:
        _ct, anatomy, ctx = real
        geo = anatomy.levels["L3"]
        # lateral to the body, parallel to the spine, 45 mm to the patient's left
        start = geo.centroid_lps + 45.0 * geo.left_lps - 10.0 * geo.superior_lps
        t = Trajectory("L3", Side.LEFT, start, start + 20.0 * geo.superior_lps, "11G")
        res = check(t, ctx)
        assert res.breach_grade == "A" and res.canal_clearance_mm > 20.0
        assert not res.tip_in_body

    def test_cli_with_labels(self, tmp_path: Path, real) -> None:
        ct, anatomy, _ = real
        geo = anatomy.levels["L2"]
        t = Trajectory(
            "L2",
            Side.RIGHT,
            geo.centroid_lps - 40.0 * geo.anterior_lps - 20.0 * geo.left_lps,
            geo.centroid_lps + 8.0 * geo.anterior_lps,
            "11G",
        )
        plan_file = save_plan(
            Plan(frame_of_reference_uid=ct.frame_of_reference_uid, trajectories=(t,)),
            tmp_path / "real.vplan.json",
        )
        res = run_cli(
            "check",
            str(ABDOMEN / "ct.nii.gz"),
            str(plan_file),
            "--labels",
            str(ABDOMEN / "labels.nii.gz"),
            "--label-table",
            "totalsegmentator",
            "--json",
        )
        assert res.returncode == 0, res.stderr
        row = json.loads(res.stdout)["trajectories"][0]
        assert row["level"] == "L2" and row["side"] == "right"
        assert row["status"] in {"safe", "caution", "unsafe"}
        assert isinstance(row["canal_clearance_mm"], float)
