"""Cement-leakage flags: each one made to appear on an edited copy of the demo CT, and
absent on the intact demo and at the other levels."""

from __future__ import annotations

import json

import numpy as np
import pytest

from planning.anatomy import Anatomy
from planning.assessment.fracture import FractureAssessment, assess_fractures
from planning.assessment.leakage import (
    BASIVERTEBRAL_TIP_MM,
    KIND_BASIVERTEBRAL,
    KIND_CLEFT,
    KIND_CORTICAL,
    KIND_ENDPLATE,
    KIND_POSTERIOR_WALL,
    KIND_SEGMENTAL,
    KINDS,
    LeakageFlag,
    lateral_wall_distance_mm,
    leakage_flags,
    present_flags,
)
from planning.demo import DemoTruth
from planning.plan import Trajectory
from planning.volume import Volume
from tests.planning.assessment.edited_demo import (
    editable_copy,
    gas_pocket,
    notched,
    paint_ct,
    retropulsed,
)


def _flags_reassessed(volume: Volume, anatomy: Anatomy) -> dict[str, list[LeakageFlag]]:
    """The leakage flags of an edited copy, its fractures assessed again on the copy (the
    edit is what the assessment must see)."""
    return leakage_flags(volume, anatomy, assess_fractures(volume, anatomy))


def _flag(flags: dict[str, list[LeakageFlag]], level: str, kind: str) -> LeakageFlag:
    return next(f for f in flags[level] if f.kind == kind)


def _levels_with(flags: dict[str, list[LeakageFlag]], kind: str) -> list[str]:
    return [f.level for f in present_flags(flags) if f.kind == kind]


def _present_only_at(flags: dict[str, list[LeakageFlag]], level: str, kind: str
                     ) -> LeakageFlag:
    """The ``kind`` flag of ``level``, asserted present there and at no other level."""
    f = _flag(flags, level, kind)
    assert f.present, f.why
    assert _levels_with(flags, kind) == [level]
    return f


def _needle(anatomy: Anatomy, level: str, tip_lps: np.ndarray, side: str = "left"
            ) -> Trajectory:
    """A needle reaching ``tip_lps`` from 45 mm behind it along the level's axis."""
    geo = anatomy.levels[level]
    entry = tip_lps - 45.0 * geo.anterior_lps + (15.0 if side == "left" else -15.0) * geo.left_lps
    return Trajectory(level, side, tuple(entry), tuple(tip_lps))


def test_intact_demo_has_no_flags(demo: tuple[Volume, DemoTruth, Anatomy],
                                  assessed: dict[str, FractureAssessment]) -> None:
    flags = leakage_flags(demo[0], demo[2], assessed)
    assert set(flags) == set(assessed)
    for level, fl in flags.items():
        assert {f.kind for f in fl} == {KIND_CORTICAL, KIND_POSTERIOR_WALL, KIND_CLEFT,
                                        KIND_ENDPLATE}, level  # no needles: no tip flags
        assert not any(f.present for f in fl), [f.why for f in fl if f.present]
    cortical = _flag(flags, "L2", KIND_CORTICAL)
    assert cortical.evidence["rays_judged"] > 150  # the shell was looked at, not skipped
    assert cortical.evidence["gap_arc_mm"] < 2.0


def test_flag_json_and_sources(demo: tuple[Volume, DemoTruth, Anatomy],
                               assessed: dict[str, FractureAssessment]) -> None:
    flags = leakage_flags(demo[0], demo[2], {"L1": assessed["L1"]})
    for f in flags["L1"]:
        d = json.loads(json.dumps(f.to_json()))
        assert d["kind"] in KINDS and d["level"] == "L1"
        assert d["confidence"] in {"low", "moderate", "high"}
        assert any(ch.isdigit() for ch in d["why"])  # the sentence carries its number
        assert d["source"] and d["route"] in {"B", "S", "C", "D"}


def test_cortical_hole_appears_at_l3_only(demo: tuple[Volume, DemoTruth, Anatomy],
                                          assessed: dict[str, FractureAssessment]) -> None:
    volume, anatomy, box, local = editable_copy(demo, "L3")
    a = assessed["L3"]
    s_c = float(anatomy.levels["L3"].to_local(a.body_centre_lps)[2])
    hole = ((local[..., 1] > a.anterior_wall_mm - 3.0) & (np.abs(local[..., 0]) < 5.0)
            & (np.abs(local[..., 2] - s_c) < 5.0) & anatomy.bodies[box])
    paint_ct(volume, anatomy, box, hole, 190.0)  # cancellous bone where the cortex was
    f = _present_only_at(leakage_flags(volume, anatomy, assessed), "L3", KIND_CORTICAL)
    assert f.evidence["gap_arc_mm"] >= 6.0
    assert f.point_lps is not None
    assert float(anatomy.levels["L3"].to_local(f.point_lps)[1]) > a.anterior_wall_mm - 3.0


def test_cleft_flag(demo: tuple[Volume, DemoTruth, Anatomy]) -> None:
    volume, anatomy = gas_pocket(demo, "L2")
    f = _present_only_at(_flags_reassessed(volume, anatomy), "L2", KIND_CLEFT)
    assert f.confidence == "high"
    assert f.evidence["volume_ml"] > 0.15


def test_endplate_break_flag(demo: tuple[Volume, DemoTruth, Anatomy],
                             assessed: dict[str, FractureAssessment]) -> None:
    volume, anatomy = notched(demo, assessed["L4"], 5.0)
    f = _present_only_at(_flags_reassessed(volume, anatomy), "L4", KIND_ENDPLATE)
    assert f.route == "D"
    assert f.evidence["superior_step_mm"] >= 3.0


def test_posterior_wall_flag(demo: tuple[Volume, DemoTruth, Anatomy],
                             assessed: dict[str, FractureAssessment]) -> None:
    volume, anatomy = retropulsed(demo, assessed["L2"], 5.0)
    f = _present_only_at(_flags_reassessed(volume, anatomy), "L2", KIND_POSTERIOR_WALL)
    assert f.evidence["retropulsion_mm"] >= 3.5


def test_basivertebral_tip(demo: tuple[Volume, DemoTruth, Anatomy],
                           assessed: dict[str, FractureAssessment]) -> None:
    volume, _, anatomy = demo
    a = assessed["L1"]
    geo = anatomy.levels["L1"]
    near = a.foramen_lps + 5.0 * geo.anterior_lps + 2.0 * geo.left_lps
    depth = a.anterior_wall_mm - a.posterior_wall_mm
    far_local = np.array([4.0, a.anterior_wall_mm - depth / 6.0, 0.0])  # anterior third
    far = geo.centroid_lps + far_local @ geo.frame_rows
    flags = leakage_flags(volume, anatomy, {"L1": a}, [_needle(anatomy, "L1", near)])
    f = _flag(flags, "L1", KIND_BASIVERTEBRAL)
    assert f.present
    assert f.evidence["tip_to_foramen_mm"] == pytest.approx(np.hypot(5.0, 2.0), abs=0.01)
    flags = leakage_flags(volume, anatomy, {"L1": a}, [_needle(anatomy, "L1", far)])
    f = _flag(flags, "L1", KIND_BASIVERTEBRAL)
    assert not f.present
    assert f.evidence["tip_to_foramen_mm"] > BASIVERTEBRAL_TIP_MM


def test_foramen_is_on_the_posterior_midline(demo: tuple[Volume, DemoTruth, Anatomy],
                                             assessed: dict[str, FractureAssessment]) -> None:
    """The demo paints its basivertebral channel at the body centre's height, midline."""
    _, truth, anatomy = demo
    for name in ("L2", "L3"):
        local = anatomy.levels[name].to_local(assessed[name].foramen_lps)
        assert abs(local[0]) < 0.5 and abs(local[2]) < 1.5, (name, local)
        half_depth = 0.5 * truth.level(name).body_depth_mm
        assert local[1] == pytest.approx(-half_depth + 3.0, abs=1.5)  # 3 mm midline notch


def test_segmental_vein_tip(demo: tuple[Volume, DemoTruth, Anatomy],
                            assessed: dict[str, FractureAssessment]) -> None:
    volume, _, anatomy = demo
    a = assessed["L3"]
    geo = anatomy.levels["L3"]
    centre = geo.to_local(a.body_centre_lps)
    mid = 0.5 * (a.anterior_wall_mm + a.posterior_wall_mm)
    inner = geo.centroid_lps + np.array([8.0, mid, centre[2]]) @ geo.frame_rows
    to_wall = lateral_wall_distance_mm(anatomy, "L3", inner)
    assert 8.0 < to_wall < 20.0
    lateral = inner + (to_wall - 2.5) * geo.left_lps
    assert lateral_wall_distance_mm(anatomy, "L3", lateral) == pytest.approx(2.5, abs=0.5)
    flags = leakage_flags(volume, anatomy, {"L3": a}, [_needle(anatomy, "L3", lateral)])
    f = _flag(flags, "L3", KIND_SEGMENTAL)
    assert f.present and f.route == "S"
    flags = leakage_flags(volume, anatomy, {"L3": a}, [_needle(anatomy, "L3", inner)])
    assert not _flag(flags, "L3", KIND_SEGMENTAL).present


def test_right_side_tip_measures_to_the_right_wall(demo: tuple[Volume, DemoTruth, Anatomy],
                                                   assessed: dict[str, FractureAssessment]
                                                   ) -> None:
    _, _, anatomy = demo
    a = assessed["L3"]
    geo = anatomy.levels["L3"]
    mid = 0.5 * (a.anterior_wall_mm + a.posterior_wall_mm)
    c = geo.to_local(a.body_centre_lps)

    def at(left_mm: float) -> np.ndarray:
        return geo.centroid_lps + np.array([left_mm, mid, c[2]]) @ geo.frame_rows

    left = lateral_wall_distance_mm(anatomy, "L3", at(8.0))
    right = lateral_wall_distance_mm(anatomy, "L3", at(-8.0))
    assert left == pytest.approx(right, abs=1.5)  # the demo body is symmetric
    outside = geo.centroid_lps + 60.0 * geo.left_lps
    assert lateral_wall_distance_mm(anatomy, "L3", outside) == 0.0
