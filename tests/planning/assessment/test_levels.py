"""One assessment per level for every consumer: the order, the cement, the tip flags."""

from __future__ import annotations

import numpy as np
import pytest

from planning.assessment.levels import assess_levels
from planning.plan import Side, Trajectory


def _needle(truth, level: str, side: Side, reach: float) -> Trajectory:
    p = truth.level(level).pedicle(side)
    length = float(np.linalg.norm(p.anterior_cortex_lps - p.entry_lps))
    return Trajectory(level, side, tuple(p.entry_lps),
                      tuple(p.entry_lps + reach * length * p.direction_lps), "11G")


def test_fractured_first_and_cement_from_the_planned_tips(demo) -> None:
    volume, truth, anatomy = demo
    needles = [_needle(truth, "L2", s, 0.85) for s in Side]
    out = assess_levels(volume, anatomy, needles)
    assert next(iter(out)) == "L1" and out["L1"].fractured and out["L1"].genant_grade == 2
    assert not any(a.fractured for name, a in out.items() if name != "L1")
    l2 = out["L2"]
    assert l2.cement is not None and len(l2.cement.spreads) == 2
    assert out["L3"].cement is None  # no needles there: volumes only
    lo, hi = l2.cement_ml_per_side
    assert hi == pytest.approx(0.30 * l2.body_volume_ml / 2)
    assert l2.cement.volume_ml_range_per_side == pytest.approx((lo, hi))
    assert "Moderate (Genant 2) wedge fracture" in out["L1"].fracture_summary()
    assert l2.to_json()["cement"]["preview"]["approach"] == "bilateral"
    assert not [f for f in l2.present_flags if f.kind == "basivertebral_foramen"]


def test_a_tip_at_the_back_of_the_body_raises_the_foramen_flag(demo) -> None:
    volume, truth, anatomy = demo
    foramen = assess_levels(volume, anatomy)["L2"].fracture.foramen_lps
    entry = _needle(truth, "L2", Side.LEFT, 0.85).entry
    tip = foramen + 5.0 * anatomy.levels["L2"].anterior_lps  # 5 mm in front of it
    a = assess_levels(volume, anatomy, [Trajectory("L2", Side.LEFT, tuple(entry), tuple(tip),
                                                   "11G")])["L2"]
    kinds = {f.kind for f in a.present_flags}
    assert "basivertebral_foramen" in kinds, [f.why for f in a.flags]
    assert any(f["kind"] == "basivertebral_foramen" for f in a.to_json()["flags"])
