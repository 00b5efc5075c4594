"""Test helper: a check result made up for a picture or a report, without an anatomy."""

from __future__ import annotations

from planning.checks import CheckResult, Status, breach_grade
from planning.plan import Trajectory


def made_up_result(t: Trajectory, status: Status, clearance_mm: float) -> CheckResult:
    """A check of ``t`` with the verdict ``status`` and the canal clearance ``clearance_mm``
    (its grade follows from it); every other number is plausible and fixed."""
    return CheckResult(
        level=t.level, side=t.side, status=status, canal_clearance_mm=clearance_mm,
        breach_grade=breach_grade(clearance_mm), closest_canal_point_lps=(0.0, 0.0, 0.0),
        wall_breaches=(), tip_in_body=True, tip_level=t.level, tip_to_anterior_cortex_mm=6.0,
        tip_depth_fraction=0.7, tip_to_midline_mm=5.0, crossings=(), pair_distance_mm=10.0,
        length_mm=t.length_mm, skin_to_tip_mm=None, medial_angle_deg=20.0,
        craniocaudal_angle_deg=0.0, medial_angle_vertebra_deg=20.0,
        craniocaudal_angle_vertebra_deg=0.0,
    )
