"""Pedicle morphometry against the demo CT's designed pedicles, and on a real 3 mm CT."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from planning.anatomy import Anatomy, anatomy_from_demo_truth
from planning.anatomy.pedicles import PedicleError, measure_pedicle, measure_pedicles
from planning.demo import DemoTruth
from planning.plan import Side
from tests.planning.real_cases import abdomen_with_reference
from tests.planning.regrid import regridded

DATA = Path(__file__).parents[3] / ".." / "shared" / "data" / "ct-abdomen-3mm"
CENTRE_TOL_MM, WIDTH_TOL_MM = 2.0, 1.0
AXIS_TOL_DEG = 15.0


@pytest.fixture(scope="module")
def demo(shared_demo_ct) -> tuple[DemoTruth, Anatomy, dict]:
    _, truth = shared_demo_ct
    anatomy = anatomy_from_demo_truth(truth)
    return truth, anatomy, measure_pedicles(anatomy)


def test_every_demo_pedicle_is_measured_close_to_its_design(demo) -> None:
    truth, _, measured = demo
    for lv in truth.levels:
        for side in (Side.LEFT, Side.RIGHT):
            p, m = lv.pedicle(side.value), measured[lv.name][side]
            centre = float(np.linalg.norm(m.isthmus_lps - p.isthmus_lps))
            width = m.isthmus_width_mm - p.isthmus_width_mm
            angle = np.degrees(np.arccos(np.clip(m.axis_lps @ p.direction_lps, -1.0, 1.0)))
            assert centre < CENTRE_TOL_MM, (lv.name, side, centre)
            assert abs(width) < WIDTH_TOL_MM, (lv.name, side, m.isthmus_width_mm)
            assert angle < AXIS_TOL_DEG, (lv.name, side, angle)
            # the isthmus lies on the patient's own side, the entry behind it
            local = m.isthmus_lps - lv.centroid_lps
            assert np.sign(local @ lv.left_lps) == side.lps_sign
            assert (m.entry_lps - m.isthmus_lps) @ lv.anterior_lps < -5.0
            assert (m.anterior_cortex_lps - m.isthmus_lps) @ lv.anterior_lps > 20.0


def test_widths_follow_the_design_from_t10_to_l5(demo) -> None:
    truth, _, measured = demo
    design = [lv.pedicle("left").isthmus_width_mm for lv in truth.levels]
    got = [measured[lv.name][Side.LEFT].isthmus_width_mm for lv in truth.levels]
    assert np.corrcoef(design, got)[0, 1] > 0.95


def test_a_flipped_grid_gives_the_same_pedicles(demo) -> None:
    _, anatomy, measured = demo
    other = regridded(anatomy)
    for level in ("T11", "L3"):
        for side in (Side.LEFT, Side.RIGHT):
            a, b = measured[level][side], measure_pedicle(other, level, side)
            assert np.linalg.norm(a.isthmus_lps - b.isthmus_lps) < 1.0
            assert abs(a.isthmus_width_mm - b.isthmus_width_mm) < 0.5
            assert np.sign((b.isthmus_lps - anatomy.levels[level].centroid_lps)[0]) == (
                side.lps_sign
            )


def test_a_level_missing_from_the_anatomy_says_so(demo) -> None:
    _, anatomy, _ = demo
    with pytest.raises(PedicleError, match="Left C3 pedicle: C3 is not in this CT's anatomy"):
        measure_pedicle(anatomy, "C3", Side.LEFT)


@pytest.mark.skipif(not (DATA / "ct.nii.gz").exists(), reason="shared data absent")
def test_real_ct_pedicle_widths_within_literature_norms() -> None:
    _, anatomy = abdomen_with_reference()
    measured = measure_pedicles(anatomy, ["T12", "L1", "L2", "L3", "L4", "L5"])
    widths = [m.isthmus_width_mm for sides in measured.values() for m in sides.values()]
    assert len(widths) >= 10  # at most a couple of sides unmeasurable on 3 mm voxels
    assert all(4.0 < w < 19.0 for w in widths), widths
    for name, sides in measured.items():
        geo = anatomy.levels[name]
        for side, m in sides.items():
            assert np.sign(geo.to_local(m.isthmus_lps)[0]) == side.lps_sign
